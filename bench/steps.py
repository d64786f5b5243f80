"""The longest chain of dependent resources per platform and auth mode: how many steps `pulumi up`
needs at best (each step waits for the one before), with and without the Google API enablement.

    python bench/steps.py
"""

from __future__ import annotations

import itertools
from typing import cast

import pulumi_gcp as gcp

from mlops_ci.offline.runtime import Evaluation, Registration, evaluate, type_token

API = type_token(gcp.projects.Service)
REPOSITORIES = {"github": "acme-ml/churn-model", "gitlab": "acme-ml/research/churn-model"}


def longest_chain(evaluation: Evaluation, skipped_type: str) -> list[Registration]:
    """The longest path of custom resources, each waiting for the one before, ignoring `skipped_type`."""
    chains: dict[str, list[Registration]] = {}

    def chain(registration: Registration) -> list[Registration]:
        if registration.urn not in chains:
            before = [chain(r) for r in evaluation.waits_for(registration) if r.custom and r.type != skipped_type]
            longest: list[Registration] = max(before, key=len, default=cast(list[Registration], []))
            chains[registration.urn] = [*longest, registration]
        return chains[registration.urn]

    return max((chain(r) for r in evaluation.registrations if r.custom and r.type != skipped_type), key=len)


def main() -> None:
    print("| platform | auth | steps (with API enablement) | chain after API enablement |")
    print("|---|---|---|---|")
    for platform, auth in itertools.product(REPOSITORIES, ("key", "workload-identity")):
        config = {
            "gcp:project": "acme-ml-test",
            "mlops-ci:platform": platform,
            "mlops-ci:repository": REPOSITORIES[platform],
            "mlops-ci:auth": auth,
        }
        evaluation = evaluate("team-a", config)
        chain = longest_chain(evaluation, API)
        names = " → ".join(r.name for r in chain)
        print(f"| {platform} | {auth} | {len(evaluation.steps())} | {len(chain)}: {names} |")


if __name__ == "__main__":
    main()
