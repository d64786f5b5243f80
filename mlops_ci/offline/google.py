"""The offline runtime's answers to Google's look-ups of keyless stacks: a project where the stack's
service account does not exist yet, and a shared provider (`mlops-ci:workloadIdentityProvider`)
set up as the stack needs it. Offline, nothing is read from Google: `make check` proves the stack
file, the pre-flight against the real project proves the provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from mlops_ci.platforms import PLATFORMS


def shared_provider(args: Mapping[str, Any], number: Callable[[str], int]) -> dict[str, Any]:
    """The provider `args` names in the stack's project (`number`: its project number): active,
    trusting the stack's platform's issuer, its numeric ids mapped, any audience of its default."""
    project, pool, provider = str(args["project"]), args["workloadIdentityPoolId"], args["workloadIdentityPoolProviderId"]
    platform = PLATFORMS[pulumi.Config("mlops-ci").require("platform")]
    issuer, _ = platform.oidc_issuer(pulumi.Config(platform.name).get("baseUrl"))
    return {
        "name": f"projects/{number(project)}/locations/global/workloadIdentityPools/{pool}/providers/{provider}",
        "state": "ACTIVE",
        "disabled": False,
        "attributeMapping": {f"attribute.{name}": f"assertion.{name}" for name in ("repository_id", "project_id")}
        | {"google.subject": "assertion.sub"},
        "oidcs": [{"issuerUri": issuer, "allowedAudiences": []}],
    }
