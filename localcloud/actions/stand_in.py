"""What every stand-in action shares, as `@actions/core` gives it to the real ones.

A stand-in runs as a node action does: act starts `launch.cjs` (the action's `main`, and its
`post` when it has one), which runs the stand-in's module on the runner's own Python (the real
actions run on the runner's own Node, whatever the job installed). Its inputs arrive as
`INPUT_<NAME>` (act, `pkg/runner/action.go` `populateEnvsFromInput`: every input the action.yml
declares, at its default unless the step sets it, and every key of the step's `with:`). They are
checked against the real action's action.yml at its pinned commit, copied beside the stand-in:
a key the action does not declare fails the step (GitHub only warns, "Unexpected input(s)"), and
so does an input the stand-in does not implement set to anything but its default. The main step
saves the state `isPost`, and the post step is the same entry point seeing `STATE_isPost`, as
actions/checkout tells them apart (`src/state-helper.ts`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
# What the runner gives the stand-ins beside the runtime variables (launch.cjs, stand-in.json):
# the local directory the runner's git fetches https://github.com/ from, and where the checkout
# stand-in keeps each job's workspace.
GITHUB_GIT = "LOCALCLOUD_GITHUB_GIT"
KEEP_WORKSPACES = "LOCALCLOUD_KEEP_WORKSPACES"


class ActionError(Exception):
    """The step fails with this message (`core.setFailed`)."""


def input_variable(name: str) -> str:
    """The variable act passes an input in (`pkg/model/workflow.go` `Step.GetEnv`)."""
    return "INPUT_" + re.sub(r"[^A-Z0-9-]", "_", name.upper())


def default_text(value: Any) -> str:
    """An action.yml default as the runner passes it: YAML `true` as "true", none as ""."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The step's inputs, by the names action.yml gives them."""

    values: Mapping[str, str]

    def get(self, name: str) -> str:
        """`core.getInput`: the value, trimmed."""
        return self.values[name].strip()

    def boolean(self, name: str) -> bool:
        """`core.getBooleanInput`: YAML 1.2 core schema booleans only."""
        value = self.get(name)
        if value in ("true", "True", "TRUE"):
            return True
        if value in ("false", "False", "FALSE"):
            return False
        raise ActionError(
            f'Input does not meet YAML 1.2 "Core Schema" specification: {name}\n'
            "Support boolean input list: `true | True | TRUE | false | False | FALSE`"
        )


Step = Callable[[Inputs], None]


@dataclasses.dataclass(frozen=True)
class StandIn:
    """One stand-in: the real action it stands for, at which commit, what of it is implemented."""

    action: str
    """owner/name, as in `uses:`."""
    commit: str
    """The pinned commit whose action.yml (inputs, outputs) `localcloud/actions/<action>/` copies."""
    release: str
    implemented: frozenset[str]
    """Inputs this stand-in acts on; every other declared input must keep its default."""
    main: Step
    post: Step | None = None

    @property
    def directory(self) -> Path:
        return HERE / self.action

    @property
    def module(self) -> str:
        return str(getattr(self.main, "__module__", ""))

    def declared(self) -> dict[str, str]:
        """Each input action.yml declares, with its default as the runner passes it."""
        inputs: dict[str, dict[str, Any]] = yaml.safe_load((self.directory / "action.yml").read_text())["inputs"]
        return {name: default_text(spec.get("default")) for name, spec in inputs.items()}

    def inputs(self, env: Mapping[str, str]) -> Inputs:
        """The step's inputs; ActionError naming every input this stand-in refuses."""
        declared = self.declared()
        variables = {input_variable(name): name for name in declared}
        unexpected = sorted(key for key in env if key.startswith("INPUT_") and key not in variables)
        values = {name: env.get(variable, "") for variable, name in variables.items()}
        problems: list[str] = []
        if unexpected:
            names = ", ".join(repr(key.removeprefix("INPUT_").lower()) for key in unexpected)
            problems.append(f"Unexpected input(s) {names}, valid inputs are {sorted(declared)}")
        for name, default in declared.items():
            if name not in self.implemented and values[name] != default:
                problems.append(
                    f"input {name!r} is not implemented by this stand-in (only its default {default!r} is): "
                    f"see localcloud/actions/{self.action}"
                )
        if problems:
            raise ActionError(f"{self.action}@{self.commit[:7]} ({self.release}) stand-in: " + "; ".join(problems))
        return Inputs(values)

    def run(self) -> None:
        """The entry point of the main and the post step (`python -m <module>`)."""
        try:
            inputs = self.inputs(os.environ)
            if state("isPost"):
                if self.post:
                    self.post(inputs)
                return
            save_state("isPost", "true")
            self.main(inputs)
        except ActionError as error:
            print(f"::error::{error}", flush=True)
            sys.exit(1)


def _file_command(variable: str, name: str, value: str) -> None:
    """`name<<delimiter` lines into the runner's command file (`@actions/core` `prepareKeyValueMessage`)."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    with open(os.environ[variable], "a", encoding="utf-8") as commands:
        commands.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def export_variable(name: str, value: str) -> None:
    """`core.exportVariable`: in the environment of the later steps, and of this one."""
    _file_command("GITHUB_ENV", name, value)
    os.environ[name] = value


def set_output(name: str, value: str) -> None:
    _file_command("GITHUB_OUTPUT", name, value)


def save_state(name: str, value: str) -> None:
    """`core.saveState`: STATE_<name> in the post step."""
    _file_command("GITHUB_STATE", name, value)


def add_path(directory: str) -> None:
    """`core.addPath`: first on PATH for the later steps, and for this one."""
    with open(os.environ["GITHUB_PATH"], "a", encoding="utf-8") as commands:
        commands.write(f"{directory}\n")
    os.environ["PATH"] = f"{directory}{os.pathsep}{os.environ['PATH']}"


def state(name: str) -> str:
    """`core.getState`: what the main step saved under `name`, in the post step."""
    return os.environ.get(f"STATE_{name}", "")


def set_secret(value: str) -> None:
    """`core.setSecret`: masked in the log from now on."""
    print(f"::add-mask::{value}", flush=True)


def warning(message: str) -> None:
    print(f"::warning::{message}", flush=True)
