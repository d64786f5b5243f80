"""Where Cloud Storage can keep a bucket: the location codes `mlops-ci:bucketLocation` accepts.

Transcribed from Google's "Bucket locations" page, https://cloud.google.com/storage/docs/locations
("Available locations"; the copy read was last updated 2025-07-31). Not re-read live from this
machine: a region Google opened later is refused until it is added here. Configurable dual-regions
(a multi-region code plus `customPlacementConfig`) are left out: the stack creates no such bucket.
Google takes the codes in either case (`eu`, `EU`) and answers them in upper case.
"""

from __future__ import annotations

MULTI_REGIONS = ("asia", "eu", "us")
"""Large areas holding two or more regions."""

DUAL_REGIONS = ("asia1", "eur4", "eur5", "eur7", "eur8", "nam4")
"""Predefined pairs of regions."""

REGIONS = (
    "africa-south1",
    "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3", "asia-south1", "asia-south2",
    "asia-southeast1", "asia-southeast2", "asia-southeast3",
    "australia-southeast1", "australia-southeast2",
    "europe-central2", "europe-north1", "europe-north2", "europe-southwest1", "europe-west1", "europe-west2",
    "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9", "europe-west10", "europe-west12",
    "me-central1", "me-central2", "me-west1",
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
    "southamerica-east1", "southamerica-west1",
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3", "us-west4",
)  # fmt: skip

LOCATIONS = frozenset(MULTI_REGIONS + DUAL_REGIONS + REGIONS)
"""Every location code, lower case."""
