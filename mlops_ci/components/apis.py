"""Google APIs the stack needs, enabled and never disabled on destroy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components import google_errors


class GoogleApisArgs(TypedDict):
    project: str
    """Google Cloud project id."""
    services: Sequence[str]
    """Service names, e.g. `storage.googleapis.com`."""


class GoogleApis(pulumi.ComponentResource):
    """Enables each service; destroying the stack leaves them enabled, because other
    workloads of the project may rely on them."""

    services: dict[str, gcp.projects.Service]

    def __init__(self, name: str, args: GoogleApisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:gcp:GoogleApis", name, {}, opts)
        # Cloud Resource Manager off in the deployer's project fails every Service: one clear error.
        on_google_error = pulumi.ResourceHookBinding(on_error=[google_errors.api_errors(name)])
        self.services = {
            service: gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args["project"],
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self, hooks=on_google_error),
            )
            for service in args["services"]
        }
        self.register_outputs({"services": list(self.services)})
