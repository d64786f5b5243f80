"""For every stack file, the offline plan (mlops_ci/offline/runtime.py `evaluate`) registers the resources,
inputs and dependencies that the real engine's `pulumi preview --json` reports.

Normalised, because they differ by construction: secrets (preview shows `[secret]`), values the
engine does not know in a preview (outputs of resources not created yet: offline has the mocks'
answers), the provider's defaults its Check adds (`disabled`, `keyAlgorithm` ...: offline has no
provider), the numeric ids the look-ups answer (offline: a hash; here: the local cloud's), the
federation's ids (drawn anew each run: known in a direct keyless preview, unknown with impersonation), whole
numbers (doubles offline), and the inputs the engine or SDK add to explicit providers. Any other
difference fails the test."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from localcloud import platform, services, wire
from localcloud.engine import Workspace, find_cli
from localcloud.github_server import provider_binary
from localcloud.plugins import gcp, gitlab
from localcloud.state import open_cloud
from mlops_ci.offline.runtime import evaluate, reveal
from mlops_ci.offline.stacks import load_stack_file, stack_files

pytestmark = pytest.mark.localcloud

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI", allow_module_level=True)

SECRET_SHOWN = "[secret]"


def github_defaults() -> dict[str, dict[str, Any]]:
    """The defaults of the real GitHub provider's resources, from the schema its build generated
    (tools/github-provider: `gen/schema.json`), which its Check adds."""
    schema_file = provider_binary().parent.parent / "gen" / "schema.json"
    if not schema_file.exists():
        return {}
    resources = cast(dict[str, Any], json.loads(schema_file.read_text())["resources"])
    return {
        token: {name: spec["default"] for name, spec in resource.get("inputProperties", {}).items() if "default" in spec}
        for token, resource in resources.items()
    }


DEFAULTS = {
    **{rtype.token: dict(rtype.defaults) for provider in (gcp.PROVIDER, gitlab.PROVIDER) for rtype in provider.types.values()},
    **github_defaults(),
}
"""What the plugins' Check adds (the upstream schemas' defaults)."""
ENGINE_PROVIDER_INPUTS = {"version", "__internal", "token"}
"""Inputs of an explicit provider the engine adds (`version`, `__internal`), or the SDK reads from the
environment when the program passes none (pulumi_github: `token` ← GITHUB_TOKEN, set for the preview)."""
KNOWN_DIFFERENCES: set[tuple[str, str, str]] = set()
"""(stack, resource name, what) of differences that are bugs of the offline runtime, reported: none so far."""


def whole(value: Any) -> Any:
    """Whole numbers as integers: numbers reach the mock monitor as doubles (protobuf `Struct`:
    365.0), the preview's JSON prints them as integers (365)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole(v) for k, v in cast(dict[str, Any], value).items()}
    if isinstance(value, list):
        return [whole(v) for v in cast(list[Any], value)]
    return value


def ids(value: Any) -> str:
    """Numeric ids as `<id>`; a pool's or provider's id (`ci-` and a digest with a nonce drawn each
    time the program runs, workload_identity.federation_id) as `<federation id>`."""
    text = re.sub(r"\bci-[0-9a-f]{20}\b", "<federation id>", json.dumps(whole(value), sort_keys=True, default=str))
    return re.sub(r"\d{6,}", "<id>", text)


def offline_plan(path: Path) -> dict[str, dict[str, Any]]:
    stack = load_stack_file(path)
    evaluation = evaluate(stack.stack, stack.config, stack.secret_keys)
    return {r.urn: {"type": r.type, "inputs": r.inputs, "dependencies": sorted(r.dependencies)} for r in evaluation.registrations}


def preview_plan(tmp_path: Path, stack: str) -> dict[str, dict[str, Any]]:
    assert CLI is not None
    space = Workspace(tmp_path, stack, CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}
    kind, repository = str(space.config["mlops-ci:platform"]), str(space.config["mlops-ci:repository"])
    platform.create_repository(cloud, kind, repository, [str(space.config.get("mlops-ci:branch", "main"))], seed)
    try:
        space.init()
        steps = cast(list[dict[str, Any]], json.loads(space.pulumi("preview", "--json", "--stack", stack).stdout)["steps"])
    finally:
        services.stop(space.cloud_dir)
    plan: dict[str, dict[str, Any]] = {}
    for step in steps:
        state = cast(dict[str, Any], step.get("newState") or {})
        if state.get("type") == "pulumi:pulumi:Stack":
            continue  # the root stack: the mock runtime registers none
        plan[step["urn"]] = {
            "type": state["type"],
            "inputs": state.get("inputs", {}),
            "dependencies": sorted(state.get("dependencies") or []),
        }
    return plan


def differences(stack: str, offline: dict[str, dict[str, Any]], real: dict[str, dict[str, Any]]) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for missing in sorted(set(offline) ^ set(real)):
        found.add((stack, missing.rsplit("::", 1)[-1], "only offline" if missing in offline else "only in the preview"))
    for key in sorted(set(offline) & set(real)):
        name, mine, theirs = key.rsplit("::", 1)[-1], offline[key], real[key]
        if mine["dependencies"] != theirs["dependencies"]:
            found.add((stack, name, f"dependencies offline {mine['dependencies']} vs {theirs['dependencies']}"))
        defaults = DEFAULTS.get(mine["type"], {})
        for prop in sorted((set(mine["inputs"]) | set(theirs["inputs"])) - {"__defaults"}):
            ours, engine = mine["inputs"].get(prop), theirs["inputs"].get(prop)
            if engine == wire.UNKNOWN or (engine == SECRET_SHOWN and wire.is_secret(ours)):
                continue
            if prop not in mine["inputs"] and defaults.get(prop) == engine:
                continue
            if mine["type"].startswith("pulumi:providers:") and ours is None and prop in ENGINE_PROVIDER_INPUTS:
                continue
            if ids(reveal(ours)) != ids(engine):
                found.add((stack, name, f"input {prop}: offline {reveal(ours)!r} vs preview {engine!r}"))
    return found


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: p.name)
def test_offline_plan_equals_the_engine_preview(tmp_path: Path, path: Path) -> None:
    stack = load_stack_file(path).stack
    found = differences(stack, offline_plan(path), preview_plan(tmp_path, stack))
    assert found == {d for d in KNOWN_DIFFERENCES if d[0] == stack}
