"""Read `stacks/Pulumi.<stack>.yaml` files into the flat config the Pulumi CLI hands the program
(the project's declared defaults merged in)."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any, cast

import yaml

from mlops_ci.offline.project_config import apply_project_config
from mlops_ci.platforms import PLATFORMS
from mlops_ci.platforms.base import PLATFORM_SECRET_KEY
from mlops_ci.settings.namespaces import CLI_KEYS, READ_KEYS
from mlops_ci.settings.rules import ciphertext_problem, did_you_mean, escaped, shown
from mlops_ci.settings.schema import SCHEMA
from mlops_ci.settings.stack_file import (
    MAX_BYTES,
    BoundedLoader,
    Resolved,
    UnreadableScalarError,
    go_text,
    plain_decimal,
    resolve,
)

STACKS_DIR = SCHEMA.stack_config_dir.resolve()
# Offline there is no passphrase or cloud key to decrypt `secure:` values; the program only
# passes them on, so a marked placeholder stands in.
ENCRYPTED_PLACEHOLDER = "[encrypted in the stack file]"


class StackFileError(Exception):
    """A stack file that is not Pulumi's stack-file shape: each problem one line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message if problems is None else f"{message}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclasses.dataclass(frozen=True)
class StackConfig:
    stack: str
    config: dict[str, str]
    secret_keys: tuple[str, ...]
    encrypted: tuple[str, ...] = ()
    """The file's salt (`encryptionsalt`, `encryptedkey`) and `secure:` values, as written."""


def stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")


def stack_files(directory: Path = STACKS_DIR) -> list[Path]:
    return sorted(directory.glob("Pulumi.*.yaml"))


class _StackFileLoader(BoundedLoader):
    """YAML as the CLI's parser (go-yaml) reads a stack file: a duplicate key is an error, and a
    plain scalar resolves as go-yaml resolves it (`yes` stays a word, `0o17` is 15); within the
    bounds of `BoundedLoader`; a key is a scalar (a list or mapping as a key is no config key), and
    never a merge key."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._text_keys: set[int] = set()
        """id(node) of the mappings whose keys are Go strings."""

    def construct_document(self, node: yaml.Node) -> object:
        # The file's sections and its config keys are Go strings: the CLI reads the file with go-yaml v3 into generic
        # values, then their encoding into its types (pulumi/pulumi sdk/go/common/workspace/loaders.go), so `true:`
        # is the key "true", apart from `1:` (Python's True == 1 made them one). Kept as written: the same text for
        # every <namespace>:<name> key, and any other key is refused.
        sections = cast(list[tuple[yaml.Node, yaml.Node]], node.value if isinstance(node, yaml.MappingNode) else [])
        self._text_keys = {id(node)} | {id(value) for key, value in sections if key.value == "config"}
        return cast(object, super().construct_document(node))  # pyright: ignore[reportUnknownMemberType] (untyped)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(problem="a list or mapping as a key: keys are text", problem_mark=key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                # go-yaml would merge the keys in: keys no line of the file names, unseen by review.
                raise yaml.MarkedYAMLError(
                    problem="a merge key (<<) brings in keys no line names: write each key out", problem_mark=key_node.start_mark
                )
            # go-yaml v3 (decode.go, mapping) compares the keys as written: `1` and `true` are two keys, `a` and
            # `'a'` one.
            key = str(key_node.value)
            if key in first_line:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r} (first at line {first_line[key]})", problem_mark=key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        if id(node) in self._text_keys:
            pairs = cast(list[tuple[yaml.Node, yaml.Node]], node.value)
            return {str(key.value): cast(object, self.construct_object(value, deep=deep)) for key, value in pairs}  # pyright: ignore[reportUnknownMemberType] (untyped)
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
    if path.is_symlink():
        # A link committed to stacks/ can point at any file of the machine that reads it.
        raise StackFileError(f"{shown_path(path)}: a symbolic link: a stack file is a file of its own, in the stacks folder")
    if path.stat().st_size > MAX_BYTES:
        raise StackFileError(
            f"{shown_path(path)}: {path.stat().st_size} bytes, at most {MAX_BYTES} (a stack file is tens of lines)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        where = f"{shown_path(path)}:{_position(raw, error.start)}"
        raise StackFileError(f"{where}: not UTF-8 text (byte {raw[error.start]:#04x})") from None
    try:
        return yaml.load(text, Loader=_StackFileLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "?"
        raise StackFileError(f"{shown_path(path)}:{where}: invalid YAML: {escaped(str(error.problem))}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{shown_path(path)}: invalid YAML: {escaped(str(error))}") from None


def shown_path(path: Path) -> str:
    """The file's path as printed: its name is the stack's, which can hold any character."""
    return escaped(str(path))


# Go's encoding/json escapes these too (json.Marshal's HTML escaping, and JavaScript's line terminators).
_GO_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _go_json_number(number: int | float) -> str:
    """Go's encoding/json of a number the CLI keeps: an int64 as itself, any other as a float64 (a uint64 too,
    as config.object reads its JSON back: UseNumber, Int64 or else Float64), in plain notation from 1e-6 to
    1e21, shortest digits; "-0" reads back as the int64 0."""
    if isinstance(number, int) and -(2**63) <= number < 2**63:
        return str(number)
    value = float(number)
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        return plain_decimal(value)
    return repr(value).replace("e-0", "e-")  # Go writes 1e-7 where Python writes 1e-07


def _go_json(value: object) -> str:
    """The compact JSON the CLI hands over for an object (pulumi/pulumi sdk/go/common/resource/config/object.go
    MarshalJSON, Go's encoding/json): keys sorted, each key Go's %v of the YAML key, a date as Go's text of it."""
    if isinstance(value, dict):
        entries = {"<nil>" if k is None else go_text(k): v for k, v in cast(dict[Resolved, object], value).items()}
        return "{" + ",".join(f"{_go_json(key)}:{_go_json(entries[key])}" for key in sorted(entries)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(item) for item in cast(list[object], value)) + "]"
    if isinstance(value, datetime.date):
        return _go_json(go_text(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _go_json_number(value)
    return json.dumps(value, ensure_ascii=False).translate(_GO_JSON_ESCAPES)


def _wire_value(value: object) -> str:
    # The CLI hands a scalar over as Go's text of it, an object as Go's compact JSON with sorted keys.
    return _go_json(cast(object, value)) if isinstance(value, dict | list) else go_text(cast(Resolved, value))


# Top-level keys of a stack file (`ProjectStack`, sdk/go/common/workspace/project.go) that the
# program can stand behind. `environment:` imports Pulumi ESC environments, whose values reach the
# program's config from outside the stack file: refused.
STACK_FILE_KEYS = ("config", "encryptionsalt", "secretsprovider", "encryptedkey")


def _sections(path: Path, document: object) -> dict[str, object]:
    sections = cast(dict[object, object], document) if isinstance(document, dict) else None
    if sections is None or not isinstance(sections.get("config") or {}, dict):
        raise StackFileError(f"{shown_path(path)}: expected a mapping with a 'config:' mapping")
    unknown = [
        f"{shown(str(key))}: not a stack file key (one of {', '.join(STACK_FILE_KEYS)}){did_you_mean(str(key), STACK_FILE_KEYS)}"
        + ("; environments (Pulumi ESC) bring config from outside the stack file" if key == "environment" else "")
        for key in sections
        if key not in STACK_FILE_KEYS
    ]
    if unknown:
        raise StackFileError(shown_path(path), unknown)
    return {str(key): value for key, value in sections.items()}


def _secret_problem(key: str, value: object, passphrase: bool) -> str | None:
    broken = ciphertext_problem(value, passphrase) if isinstance(value, str) else "not text"
    if not broken:
        return None
    namespace, _, name = key.partition(":")
    if namespace in PLATFORMS and name == PLATFORM_SECRET_KEY:
        advice = f"set it with `pulumi config set --secret {escaped(key)} <value>`"
    elif key in CLI_KEYS or name in READ_KEYS.get(namespace, ()):
        advice = "the key is no secret: write its value in plain text, without secure:"
    else:  # never "write it plain": gcp:credentials or a misspelt token is a secret, but one mlops-ci refuses anyway
        advice = "mlops-ci reads no such key: remove it"
    return (
        f"{escaped(key)}: the secure: value is not Pulumi ciphertext ({broken}): {advice} (a plain value under secure:"
        " is readable by everyone who can read the file, and `pulumi up` fails on it)"
    )


def load_stack_file(path: Path) -> StackConfig:
    sections = _sections(path, _parse(path) or {})
    passphrase = "encryptionsalt" in sections or "encryptedkey" in sections
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    encrypted = [str(sections[key]) for key in ("encryptionsalt", "encryptedkey") if key in sections]
    problems: list[str] = []
    for key, value in cast(dict[object, object], sections.get("config") or {}).items():
        if not isinstance(key, str) or key.count(":") != 1:
            problems.append(f"{shown(str(key))}: config keys are <namespace>:<name>, e.g. mlops-ci:branch")
            continue
        if isinstance(value, dict) and set(cast(dict[object, object], value)) == {"secure"}:
            secure = cast(dict[str, object], value)["secure"]
            if broken := _secret_problem(key, secure, passphrase):
                problems.append(broken)
            config[key] = ENCRYPTED_PLACEHOLDER
            secret_keys.append(key)
            encrypted.append(str(secure))
        else:
            config[key] = _wire_value(cast(object, value))
    if problems:
        raise StackFileError(shown_path(path), problems)
    stack = stack_name(path)
    return StackConfig(stack, apply_project_config(stack, config, tuple(secret_keys)), tuple(secret_keys), tuple(encrypted))
