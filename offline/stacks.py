"""Read `stacks/Pulumi.<stack>.yaml` files into the flat config the Pulumi CLI hands the program
(the project's declared defaults merged in)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import yaml

from offline.project_config import apply_project_config

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"
# Offline there is no passphrase or cloud key to decrypt `secure:` values; the program only
# passes them on, so a marked placeholder stands in.
ENCRYPTED_PLACEHOLDER = "[encrypted in the stack file]"


class StackFileError(Exception):
    """A stack file that is not Pulumi's stack-file shape."""


@dataclasses.dataclass(frozen=True)
class StackConfig:
    stack: str
    config: dict[str, str]
    secret_keys: tuple[str, ...]


def stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")


def stack_files(directory: Path = STACKS_DIR) -> list[Path]:
    return sorted(directory.glob("Pulumi.*.yaml"))


def _wire_value(value: Any) -> str:
    # The engine hands every config value to the program as a string; objects as JSON.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def load_stack_file(path: Path) -> StackConfig:
    document: object = yaml.safe_load(path.read_text()) or {}
    section: object = cast(dict[str, object], document).get("config") or {} if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise StackFileError(f"{path}: expected a mapping with a 'config:' mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    problems: list[str] = []
    for key, value in cast(dict[object, object], section).items():
        if not isinstance(key, str) or ":" not in key:
            problems.append(f"{key!r}: config keys are <namespace>:<name>, e.g. mlops-ci:branch")
            continue
        if isinstance(value, dict) and set(cast(dict[object, object], value)) == {"secure"}:
            config[key] = ENCRYPTED_PLACEHOLDER
            secret_keys.append(key)
        else:
            config[key] = _wire_value(value)
    if problems:
        raise StackFileError(f"{path}:\n" + "\n".join(f"  - {p}" for p in problems))
    stack = stack_name(path)
    return StackConfig(stack, apply_project_config(stack, config, tuple(secret_keys)), tuple(secret_keys))
