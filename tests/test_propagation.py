"""The key reaches CI only once Google accepts it and the grants are effective: the wait, its
bound, and where the program puts it (before the credential and the CI file, never in a preview)."""

from __future__ import annotations

import asyncio
import datetime
import gc
from collections.abc import Sequence
from typing import Any

import pytest
from pulumi.runtime import settings as runtime_settings

from mlops_ci import direct_calls
from mlops_ci.components import propagation
from mlops_ci.components.propagation import ACCESS_PERMISSIONS, PropagationError, wait_until_accepted
from mlops_ci.direct_calls import UnreachableError
from mlops_ci.offline import runtime
from tests.helpers import GITHUB_FILE, GITHUB_SECRET, GITLAB_FILE, GRANT, KEY, committed_file, run


class ScriptedGoogle(runtime.OfflineCalls):
    """Google as a script: refuses the key with each of `refusals` in turn, then accepts; records the asks."""

    def __init__(self, *refusals: str) -> None:
        self.refusals = list(refusals)
        self.asked: list[tuple[str, str, tuple[str, ...]]] = []

    def credential_refusal(self, key_base64: str, bucket: str, permissions: Sequence[str]) -> str | None:
        self.asked.append((key_base64, bucket, tuple(permissions)))
        return self.refusals.pop(0) if self.refusals else None


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(propagation, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(propagation, "LONGEST_PAUSE", 0.02)


@pytest.mark.usefixtures("quick")
def test_the_wait_asks_again_until_google_accepts() -> None:
    probe = ScriptedGoogle("Google refuses the key (invalid_grant)", "the bucket grants are not effective yet")
    with direct_calls.replaced_by(probe):
        waited = asyncio.run(wait_until_accepted("a2V5", "team-dvc", ACCESS_PERMISSIONS["push"], bound=5))
    assert len(probe.asked) == 3
    assert probe.asked[0] == ("a2V5", "team-dvc", ("storage.objects.get", "storage.objects.list", "storage.objects.create"))
    assert 0.02 <= waited < 5


@pytest.mark.usefixtures("quick")
def test_the_wait_is_bounded_and_says_what_google_answered_last() -> None:
    probe = ScriptedGoogle(*["the bucket grants are not effective yet (missing storage.objects.list)"] * 100)
    with direct_calls.replaced_by(probe), pytest.raises(PropagationError) as raised:
        asyncio.run(wait_until_accepted("a2V5", "team-dvc", ACCESS_PERMISSIONS["pull"], bound=0.05))
    message = str(raised.value)
    assert "Google did not accept the new service-account key on the bucket team-dvc" in message
    assert "(the bucket grants are not effective yet (missing storage.objects.list))" in message
    assert "the credential and the CI file were not delivered" in message
    assert "pulumi up --refresh" in message


def test_google_out_of_reach_stops_at_once() -> None:
    class Offline(runtime.OfflineCalls):
        def credential_refusal(self, key_base64: str, bucket: str, permissions: Sequence[str]) -> str | None:
            raise UnreachableError("https://storage.googleapis.com: connection refused")

    with direct_calls.replaced_by(Offline()), pytest.raises(PropagationError, match="could not be checked: https://storage"):
        asyncio.run(wait_until_accepted("a2V5", "team-dvc", ACCESS_PERMISSIONS["pull"], bound=600))


@pytest.mark.parametrize(("base", "ci_file"), [("github", GITHUB_FILE), ("gitlab", GITLAB_FILE)])
def test_the_credential_waits_for_googles_answer_on_the_stacks_bucket(
    monkeypatch: pytest.MonkeyPatch, base: str, ci_file: str
) -> None:
    probe = ScriptedGoogle()
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", probe)
    evaluation = run(base, access="push")

    key, grants = evaluation.one(KEY), evaluation.find(GRANT)
    assert probe.asked == [(key.outputs["privateKey"], "acme-ml-test-team-a-dvc", ACCESS_PERMISSIONS["push"])]
    credential = next(r for r in evaluation.registrations if r.name in ("github-secret", "gitlab-variable"))
    # the engine learns it: the credential (and so the CI file) waits for the key and both grants
    assert {key.urn, *(g.urn for g in grants)} <= set(credential.dependencies)
    assert credential.urn in committed_file(evaluation, ci_file).dependencies


def test_a_key_google_never_accepts_delivers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", ScriptedGoogle(*["Google refuses the key (invalid_grant)"] * 10))
    monkeypatch.setattr(propagation, "BOUND_SECONDS", 0.0)
    registered: list[str] = []

    class Recording(runtime.OfflineMocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            registered.append(args.typ)
            return super().new_resource(args)

    with pytest.raises(Exception, match="Google did not accept the new service-account key"):
        run("github", mocks=Recording())
    # The failed outputs' futures, released and finalised now: later, their "never retrieved"
    # report could run inside a compile and trip CPython 3.11's AST recursion check.
    runtime_settings.reset_options()
    gc.collect()
    assert {KEY, GRANT} <= set(registered)
    assert not {GITHUB_SECRET, GITHUB_FILE} & set(registered)


def test_keyless_stacks_ask_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ScriptedGoogle()
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", probe)
    run("gitlab", auth="workload-identity")
    assert probe.asked == []


@pytest.mark.usefixtures("quick")
def test_a_key_google_refuses_long_after_creating_it_fails_at_once() -> None:
    """A key deleted or disabled outside Pulumi (the state still holds it, so `pulumi up` checks it
    again) is refused for good: no ten-minute wait for it. Grants may still be settling."""
    probe = ScriptedGoogle(*["Google refuses the key (invalid_grant: Invalid grant: account not found)"] * 3)
    with direct_calls.replaced_by(probe), pytest.raises(PropagationError) as raised:
        asyncio.run(wait_until_accepted("a2V5", "team-dvc", ACCESS_PERMISSIONS["pull"], bound=600, key_age=7200))
    assert len(probe.asked) == 1
    message = str(raised.value)
    assert "Google refuses the key (invalid_grant: Invalid grant: account not found), 120 minutes after creating it" in message
    assert "deleted or disabled outside Pulumi" in message
    assert "pulumi up --refresh" in message
    grants = ScriptedGoogle("the bucket grants are not effective yet (missing storage.objects.list)")
    with direct_calls.replaced_by(grants):
        asyncio.run(wait_until_accepted("a2V5", "team-dvc", ACCESS_PERMISSIONS["pull"], bound=600, key_age=7200))
    assert len(grants.asked) == 2


def test_the_age_of_the_key_is_its_valid_after_time() -> None:
    now = datetime.datetime(2026, 12, 5, 1, 0, tzinfo=datetime.UTC)
    assert propagation.key_age("2026-12-05T00:30:00Z", now) == 1800
    assert propagation.key_age(None, now) == propagation.key_age("", now) == propagation.key_age("soon", now) == 0


@pytest.mark.usefixtures("quick")
def test_the_stacks_key_from_an_earlier_up_refused_stops_the_up_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ScriptedGoogle(*["Google refuses the key (invalid_grant)"] * 3)
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", probe)

    class KeyOfYesterday(runtime.OfflineMocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            name, outputs = super().new_resource(args)
            return name, outputs | ({"validAfter": "2026-01-01T00:00:00Z"} if args.typ == KEY else {})

    with pytest.raises(Exception, match="deleted or disabled outside Pulumi"):
        run("gitlab", mocks=KeyOfYesterday())
    runtime_settings.reset_options()
    gc.collect()
    assert len(probe.asked) == 1
