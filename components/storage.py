"""The DVC remote: one GCS bucket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp


class DvcRemoteArgs(TypedDict):
    project: str
    """Google Cloud project id."""
    bucket_name: str
    """Globally unique bucket name."""
    location: str
    """Bucket location."""
    remote_path: str
    """Path inside the bucket used as the DVC remote."""
    labels: Mapping[str, str]
    """Labels put on the bucket."""
    protect: bool
    """Retain the bucket (and its data) when the stack is destroyed."""
    after: Sequence[pulumi.Resource]
    """Resources that must exist first (the Storage API)."""


class DvcRemote(pulumi.ComponentResource):
    """Bucket with uniform access and public access prevention. It is never force-destroyed:
    deleting a non-empty bucket fails instead of deleting DVC data."""

    bucket: gcp.storage.Bucket
    bucket_name: pulumi.Output[str]
    bucket_url: pulumi.Output[str]
    remote_url: pulumi.Output[str]

    def __init__(self, name: str, args: DvcRemoteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:storage:DvcRemote", name, {}, opts)
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args["project"],
            name=args["bucket_name"],
            location=args["location"],
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,
            labels=dict(args["labels"]),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args["after"]),
                retain_on_delete=args["protect"],
            ),
        )
        self.bucket_name = self.bucket.name
        self.bucket_url = self.bucket.name.apply(lambda bucket: f"gs://{bucket}")
        self.remote_url = self.bucket.name.apply(lambda bucket: f"gs://{bucket}/{args['remote_path']}")
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_url": self.bucket_url, "remote_url": self.remote_url})
