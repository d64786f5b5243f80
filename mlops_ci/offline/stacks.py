"""Read `stacks/Pulumi.<stack>.yaml` files into the flat config the Pulumi CLI hands the program
(the project's declared defaults merged in)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import yaml

from mlops_ci.offline.project_config import apply_project_config
from mlops_ci.settings.schema import SCHEMA
from mlops_ci.settings.stack_file import Resolved, UnreadableScalarError, go_text, resolve

STACKS_DIR = SCHEMA.stack_config_dir.resolve()
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


class _StackFileLoader(yaml.SafeLoader):
    """YAML as the CLI's parser (go-yaml) reads a stack file: a duplicate key is an error, and a
    plain scalar resolves as go-yaml resolves it (`yes` stays a word, `0o17` is 15)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[object, int] = {}
        for key_node, _ in node.value:
            key = cast(object, self.construct_object(key_node, deep=deep))  # pyright: ignore[reportUnknownMemberType] (untyped)
            if key in first_line:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r} (first at line {first_line[key]})", problem_mark=key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    if node.style:
        return str(node.value)  # quoted: a string, whatever it holds
    try:
        return resolve(str(node.value))
    except UnreadableScalarError as error:
        raise yaml.MarkedYAMLError(
            problem=f"{error}: Pulumi cannot read this value (quote it to pass it as text)", problem_mark=node.start_mark
        ) from None


for _tag in ("str", "bool", "int", "float", "timestamp", "null"):
    _StackFileLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _scalar)


def _position(text: bytes, offset: int) -> str:
    line = text.count(b"\n", 0, offset) + 1
    column = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def _parse(path: Path) -> object:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}:{_position(raw, error.start)}: not UTF-8 text (byte {raw[error.start]:#04x})") from None
    try:
        return yaml.load(text, Loader=_StackFileLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "?"
        raise StackFileError(f"{path}:{where}: invalid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: invalid YAML: {error}") from None


def _wire_value(value: object) -> str:
    # The CLI hands a scalar over as Go's text of it, an object as compact JSON with sorted keys.
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return go_text(cast(Resolved, value))


def load_stack_file(path: Path) -> StackConfig:
    document: object = _parse(path) or {}
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
            config[key] = _wire_value(cast(object, value))
    if problems:
        raise StackFileError(f"{path}:\n" + "\n".join(f"  - {p}" for p in problems))
    stack = stack_name(path)
    return StackConfig(stack, apply_project_config(stack, config, tuple(secret_keys)), tuple(secret_keys))
