"""What `pulumi up` keeps in each example stack's state, pinned: every resource's URN (its type, its
parents' types and its name), its provider and its aliases, and each component's outputs. A change of
a URN replaces or orphans a team's resources on upgrade unless it comes with an alias
(tests/localcloud/test_upgrades.py). Pinned too: the bucket locations the stack accepts, transcribed
from Google's page (mlops_ci/settings/locations.py). Review the diff, then accept it with
`MLOPS_CI_UPDATE_SNAPSHOTS=1 make test`."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest
from pulumi.runtime import rpc

from mlops_ci.offline.runtime import evaluate
from mlops_ci.offline.stacks import load_stack_file, stack_files, stack_name
from mlops_ci.settings import locations

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def hidden(value: Any) -> Any:
    """`value` with each secret shown as [secret]: a snapshot is committed, a secret never."""
    if rpc.is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {key: hidden(item) for key, item in cast(dict[str, Any], value).items()}
    if isinstance(value, list):
        return [hidden(item) for item in cast(list[Any], value)]
    return value


def state_lines(path: Path) -> list[str]:
    stack = load_stack_file(path)
    evaluation = evaluate(stack.stack, stack.config, stack.secret_keys)
    # A provider reference is `<provider's URN>::<id>`: the URN's last part is the provider's name.
    # A component's outputs (`register_outputs`) are in the state too: `pulumi stack export`, the console.
    outputs = {
        urn: f"  outputs={json.dumps(hidden(registered), sort_keys=True)}"
        for urn, registered in evaluation.component_outputs.items()
    }
    return sorted(
        f"{r.urn}  provider={r.provider.rsplit('::', 2)[-2] if r.provider else '-'}"
        + (f"  aliases={list(r.aliases)}" if r.aliases else "")
        + outputs.get(r.urn, "")
        for r in evaluation.registrations
    )


def assert_as_reviewed(snapshot: Path, lines: list[str]) -> None:
    if os.environ.get("MLOPS_CI_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text("\n".join(lines) + "\n")
    reviewed = snapshot.read_text().splitlines() if snapshot.is_file() else []
    diff = "\n".join(difflib.unified_diff(reviewed, lines, "reviewed", "now", lineterm=""))
    assert lines == reviewed, f"{snapshot.name} differs (review, then MLOPS_CI_UPDATE_SNAPSHOTS=1):\n{diff}"


@pytest.mark.parametrize("path", stack_files(), ids=stack_name)
def test_the_state_of_each_example_stack_is_as_reviewed(path: Path) -> None:
    assert_as_reviewed(SNAPSHOTS / f"{stack_name(path)}.state.txt", state_lines(path))


def test_the_bucket_locations_are_as_reviewed_against_googles_page() -> None:
    # A location dropped or misspelt refuses a team's bucket; one added accepts a code Google may not have.
    kinds = {"multi-region": locations.MULTI_REGIONS, "dual-region": locations.DUAL_REGIONS, "region": locations.REGIONS}
    lines = [f"{kind} {code}" for kind, codes in kinds.items() for code in codes]
    assert_as_reviewed(SNAPSHOTS / "bucket-locations.txt", lines)
    assert {line.split()[1] for line in lines} == locations.LOCATIONS


def test_a_secret_among_a_components_outputs_is_never_written_into_a_snapshot() -> None:
    registered = {"key": rpc.wrap_rpc_secret("key material"), "names": ["a", {"b": rpc.wrap_rpc_secret(1)}]}
    assert hidden(registered) == {"key": "[secret]", "names": ["a", {"b": "[secret]"}]}
