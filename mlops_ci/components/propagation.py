"""The first CI run against Google's propagation delays: a new key, or a new bucket grant, takes
effect a while after Google created it ("60 seconds or more" for a key; IAM policy changes
"typically 2 minutes, potentially 7 minutes or longer", cloud.google.com/iam/docs/
access-change-propagation), and the CI file's commit starts a run at once. So on `pulumi up` the
key reaches CI only once Google accepts it and the grants are effective, as CI will use them:
google-auth signs in with the key file, then Cloud Storage answers the bucket's
testIamPermissions and lists it (`direct_calls.DirectCalls.credential_refusal`). Bounded; never
in a preview.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp

from mlops_ci import direct_calls
from mlops_ci.settings.loader import Access

ACCESS_PERMISSIONS: dict[Access, tuple[str, ...]] = {
    "pull": ("storage.objects.get", "storage.objects.list"),
    "push": ("storage.objects.get", "storage.objects.list", "storage.objects.create"),
    "admin": ("storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete"),
}
"""What the CI job does on the bucket with each access preset (ACCESS_ROLES grants it)."""
BOUND_SECONDS = 600.0
"""How long `pulumi up` waits at most: past Google's "7 minutes or longer" for policy changes."""
FIRST_PAUSE, LONGEST_PAUSE = 2.0, 30.0
KEY_SETTLED_SECONDS = 1800.0
"""A key Google still refuses this long after creating it was deleted or disabled since (a key
takes "60 seconds or more"; an up stopped at the bound and run again still waits): no wait then."""


class PropagationError(pulumi.RunError):
    """Google did not accept the credential in time; nothing was delivered to CI."""


def key_age(valid_after: str | None, now: datetime.datetime | None = None) -> float:
    """Seconds since Google created the key (its `validAfter`, RFC 3339); 0 when not known."""
    try:
        created = datetime.datetime.fromisoformat(valid_after or "")
    except ValueError:
        return 0.0
    created = created if created.tzinfo else created.replace(tzinfo=datetime.UTC)
    return max(((now or datetime.datetime.now(datetime.UTC)) - created).total_seconds(), 0.0)


def _refused_for_good(reason: str, age: float) -> PropagationError | None:
    """The key of an earlier `pulumi up` (still in the state, so checked again) that Google refuses."""
    if not reason.startswith(direct_calls.KEY_REFUSED) or age < KEY_SETTLED_SECONDS:
        return None
    return PropagationError(
        f"{reason}, {age / 60:.0f} minutes after creating it: the key was deleted or disabled outside Pulumi. Deleted:"
        " pulumi up --refresh creates a new one; disabled: enable it again, or change mlops-ci:keyRotation for a new one."
        " Nothing was delivered to CI."
    )


async def wait_until_accepted(
    key_base64: str, bucket: str, permissions: Sequence[str], bound: float | None = None, key_age: float = 0.0
) -> float:
    """Seconds waited until Google accepts the key (its key file, base64; created `key_age`
    seconds ago) for `permissions` on `bucket`; raises `PropagationError` past `bound` (default
    `BOUND_SECONDS`), or at once for a key long created that Google refuses."""
    bound = BOUND_SECONDS if bound is None else bound
    calls, loop = direct_calls.current(), asyncio.get_running_loop()
    start, pause = loop.time(), FIRST_PAUSE
    while True:
        try:
            reason = await asyncio.to_thread(calls.credential_refusal, key_base64, bucket, permissions)
        except direct_calls.UnreachableError as error:
            raise PropagationError(f"the new credential could not be checked: {error}; nothing was delivered to CI") from None
        waited = loop.time() - start
        if reason is None:
            return waited
        final = _refused_for_good(reason, key_age + waited)
        if final:
            raise final
        if waited + pause > bound:
            raise PropagationError(
                f"Google did not accept the new service-account key on the bucket {bucket} within"
                f" {bound / 60:.0f} minutes ({reason}): the credential and the CI file were not delivered, CI keeps"
                " what it had. Run pulumi up again to wait longer; if the key or a grant was removed outside"
                " Pulumi, pulumi up --refresh puts it back."
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def accepted(
    key: gcp.serviceaccount.Key,
    key_base64: pulumi.Output[str],
    bucket: pulumi.Input[str],
    grants: Sequence[pulumi.CustomResource],
    access: Access,
) -> pulumi.Output[str]:
    """`key_base64` (the file of `key`, base64; secret like it) once Google accepts the key for
    the access preset on the bucket, after the grants exist: what CI gets first works. In a
    preview, at once."""

    async def checked(key_file: str, bucket_name: str, valid_after: str | None) -> str:
        waited = await wait_until_accepted(key_file, bucket_name, ACCESS_PERMISSIONS[access], key_age=key_age(valid_after))
        if waited >= FIRST_PAUSE:
            pulumi.log.info(f"Google accepted the new key on the bucket {bucket_name} after {waited:.0f} s")
        return key_file

    def gate(values: list[Any]) -> Any:
        key_file, bucket_name, valid_after = str(values[0]), str(values[1]), values[2]
        return key_file if pulumi.runtime.is_dry_run() else checked(key_file, bucket_name, valid_after)

    return pulumi.Output.all(key_base64, bucket, key.valid_after, *[grant.id for grant in grants]).apply(gate)
