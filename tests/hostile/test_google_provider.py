"""Item 1: the Google provider is explicit, built from the validated settings only (the project),
and every Google resource and look-up goes through it: no `gcp:` key of a stack file reaches a
default provider."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_ci.offline.runtime import OfflineMocks
from tests.helpers import run

GOOGLE_PROVIDER = "pulumi:providers:gcp"


class CallRecordingMocks(OfflineMocks):
    """Offline mocks that also note which provider served each look-up."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def call(self, args: Any) -> Any:
        self.calls.append((args.token, args.provider or ""))
        return super().call(args)


@pytest.mark.parametrize(
    ("platform", "overrides"),
    [("github", {}), ("gitlab", {"auth": "workload-identity"}), ("github", {"existingBucket": "acme-team-a-dvc"})],
)
def test_every_google_resource_and_lookup_uses_the_one_explicit_provider(platform: str, overrides: dict[str, str]) -> None:
    mocks = CallRecordingMocks()
    evaluation = run(platform, overrides, mocks=mocks)
    [provider] = evaluation.find(GOOGLE_PROVIDER)
    assert set(provider.inputs) - {"version"} == {"project"}
    assert provider.plain("project") == "acme-ml-test"
    google = [r for r in evaluation.registrations if r.type.startswith("gcp:")]
    assert google
    assert {r.provider_urn for r in google} == {provider.urn}
    lookups = [(token, used) for token, used in mocks.calls if token.startswith("gcp:")]
    assert lookups
    assert all(used.startswith(provider.urn) for _, used in lookups), lookups
