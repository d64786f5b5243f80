"""Lifecycle: what `pulumi destroy` removes and keeps, and what a key rotation changes."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mlops_ci.offline.runtime import Evaluation, OfflineMocks, reveal
from tests.helpers import BUCKET, KEY, run


@pytest.mark.parametrize(
    ("base", "auth"), [("github", "key"), ("gitlab", "key"), ("github", "workload-identity"), ("gitlab", "workload-identity")]
)
def test_destroy_removes_everything_but_the_protected_bucket(base: str, auth: str) -> None:
    evaluation = run(base, auth=auth)
    for registration in evaluation.registrations:
        assert registration.protect is False, registration.name  # `protect` would make destroy fail
        if registration.type != BUCKET:
            assert registration.retain_on_delete is False, registration.name
    bucket = evaluation.one(BUCKET)
    assert bucket.retain_on_delete is True
    assert bucket.plain("forceDestroy") is False


class RotatingKeyMocks(OfflineMocks):
    """Like Google: every key generation is a new key with new material."""

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.rotation = reveal(args.inputs).get("keepers", {}).get("rotation", "")
        return super().new_resource(args)

    def key_file(self, email: str, project: str) -> dict[str, str]:
        key_file = super().key_file(email, project)
        key_file["private_key_id"] = hashlib.sha256(f"{email}/{self.rotation}".encode()).hexdigest()[:40]
        return key_file


def changed_inputs(before: Evaluation, after: Evaluation) -> dict[str, list[str]]:
    """Resource name -> input keys whose value differs between two evaluations."""
    old = {r.urn: reveal(r.inputs) for r in before.registrations}
    changes: dict[str, list[str]] = {}
    for registration in after.registrations:
        new = reveal(registration.inputs)
        keys = sorted(k for k in old[registration.urn].keys() | new.keys() if old[registration.urn].get(k) != new.get(k))
        if keys:
            changes[registration.name] = keys
    return changes


@pytest.mark.parametrize(("base", "delivery"), [("github", "github-secret"), ("gitlab", "gitlab-variable")])
def test_rotation_changes_only_the_key_and_the_secret(base: str, delivery: str) -> None:
    before = run(base, mocks=RotatingKeyMocks())
    after = run(base, mocks=RotatingKeyMocks(), keyRotation="2026-11")
    assert sorted(r.urn for r in before.registrations) == sorted(r.urn for r in after.registrations)
    assert changed_inputs(before, after) == {"ci-identity-key": ["keepers"], delivery: ["value"]}
    # `keepers` forces a replacement: the new key is created, the secret updated, then the old key deleted.
    assert after.one(KEY).delete_before_replace is False
