"""The DVC remote: the stack's own GCS bucket, or a team's existing one it only grants on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components import google_errors


class DvcRemoteArgs(TypedDict):
    project: str
    """Google Cloud project id."""
    bucket_name: str
    """Globally unique bucket name."""
    existing: bool
    """The team's own bucket (`existingBucket`): no Bucket resource, so the stack never changes or
    deletes it; destroying the stack revokes only its grants."""
    adopt: bool
    """The stack's own bucket, kept by an earlier `pulumi destroy` (`protectBucket`): imported
    instead of created again (which Google would refuse with 409)."""
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

    bucket: gcp.storage.Bucket | None
    bucket_name: pulumi.Output[str]
    bucket_url: pulumi.Output[str]
    remote_url: pulumi.Output[str]

    def __init__(self, name: str, args: DvcRemoteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:storage:DvcRemote", name, {}, opts)
        self.bucket = None
        if args["existing"]:
            self.bucket_name = pulumi.Output.from_input(args["bucket_name"])
        else:
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
                    # A no-op once the bucket is in the stack's state. pulumi-gcp imports a bucket's
                    # labels into effectiveLabels only, so the engine imports it, then updates its
                    # labels to the program's (engines since 2026 update what differs, pulumi/docs#18114).
                    import_=args["bucket_name"] if args["adopt"] else None,
                    hooks=pulumi.ResourceHookBinding(on_error=[google_errors.api_errors(name)]),
                ),
            )
            self.bucket_name = self.bucket.name
        self.bucket_url = self.bucket_name.apply(lambda bucket: f"gs://{bucket}")
        self.remote_url = self.bucket_name.apply(lambda bucket: f"gs://{bucket}/{args['remote_path']}")
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_url": self.bucket_url, "remote_url": self.remote_url})
