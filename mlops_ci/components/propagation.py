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
from collections.abc import Sequence
from typing import Any

import pulumi

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


class PropagationError(pulumi.RunError):
    """Google did not accept the credential in time; nothing was delivered to CI."""


async def wait_until_accepted(key_base64: str, bucket: str, permissions: Sequence[str], bound: float | None = None) -> float:
    """Seconds waited until Google accepts the key (its key file, base64) for `permissions` on
    `bucket`; raises `PropagationError` past `bound` (default `BOUND_SECONDS`)."""
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
    key_base64: pulumi.Output[str], bucket: pulumi.Input[str], grants: Sequence[pulumi.CustomResource], access: Access
) -> pulumi.Output[str]:
    """`key_base64` (the key file, base64; secret like it) once Google accepts the key for the
    access preset on the bucket, after the grants exist: what CI gets first works. In a preview,
    at once."""

    async def checked(key: str, bucket_name: str) -> str:
        waited = await wait_until_accepted(key, bucket_name, ACCESS_PERMISSIONS[access])
        if waited >= FIRST_PAUSE:
            pulumi.log.info(f"Google accepted the new key on the bucket {bucket_name} after {waited:.0f} s")
        return key

    def gate(values: list[Any]) -> Any:
        key, bucket_name = str(values[0]), str(values[1])
        return key if pulumi.runtime.is_dry_run() else checked(key, bucket_name)

    return pulumi.Output.all(key_base64, bucket, *[grant.id for grant in grants]).apply(gate)
