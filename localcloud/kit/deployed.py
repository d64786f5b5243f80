"""One example stack up through the real engine against a local cloud, its data pushed as the
team's next steps say: what the keyless e2e tests and bench/keyless_ci.py run CI jobs against."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcloud import chapter
from localcloud.engine import Workspace
from localcloud.state import LocalCloud, open_cloud


@dataclasses.dataclass(frozen=True)
class Deployed:
    cloud: LocalCloud
    """The local cloud the stack is up in."""
    stack: chapter.Stack
    """The stack as the chapter's steps read it."""
    outputs: dict[str, Any]
    """The stack's exports."""
    seconds: dict[str, float]
    """Wall time of the steps, for the report."""


def deploy_stack(cli: Path, root: Path, stack_name: str, config: Mapping[str, str | None]) -> Deployed:
    """`stacks/Pulumi.<stack_name>.yaml` with `config` over it (None: a key left out), up by `cli` in a
    local cloud under `root`."""
    space = Workspace(root, stack_name, cli, config=config, cloud_dir=root / "cloud")
    cloud = open_cloud(space.cloud_dir)
    stack = chapter.Stack.from_config(space.stack, space.config)
    if not space.ensure_repository():
        raise RuntimeError(f"{stack_name}: the local repository could not be created")
    space.init()
    start = time.monotonic()
    space.up()
    seconds = {"up": time.monotonic() - start}
    outputs = space.outputs()
    chapter.push_data(cloud, stack, str(space.config["gcp:project"]), outputs["dvcRemoteUrl"])
    return Deployed(cloud, stack, outputs, seconds)
