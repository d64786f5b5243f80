"""A stack file as its author wrote it, against what the Pulumi CLI makes of it.

The CLI reads `Pulumi.<stack>.yaml` with go-yaml and hands each plain (unquoted) scalar to the
program as Go's text of the value it resolves to: `3.10` becomes `3.1`, `010` becomes `8`, `True`
becomes `true`, a date becomes `2024-01-01 00:00:00 +0000 UTC`, `~` becomes empty (seen with the
real CLI: tests/engine). The program cannot tell `3.1` from `3.10`, so it reads the file itself and
asks for quotes wherever the two differ, rather than building Python 3.1's CI job.
"""

from __future__ import annotations

import contextvars
import datetime
import decimal
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn, cast

import yaml

from mlops_ci.settings.rules import escaped
from mlops_ci.settings.schema import PROJECT_FILE, SCHEMA, load_schema

# go-yaml's resolution of plain scalars (YAML 1.2 core schema, plus 1.1's leading-zero octals and
# underscores in numbers; `yes`/`no`/`on`/`off` stay words).
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT = re.compile(r"[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")

Resolved = str | bool | int | float | datetime.date | None

# Bounds for a stack file, far above any real one (tens of keys, two levels): an alias-bomb
# ("billion laughs"), deep nesting or a huge file is refused before it costs memory or time.
MAX_BYTES = 1 << 20
MAX_DEPTH = 32
"""Nesting levels, aliases expanded."""
MAX_NODES = 10_000
"""Scalars, sequences and mappings, each alias counted as the whole node it stands for."""


_TEXT_TAG = "tag:yaml.org,2002:str"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader within the bounds above; also refuses an alias inside the value it
    stands for (a recursive value) and the tags no config value has (binary, set, omap, pairs)."""

    yaml_constructors = {  # noqa: RUF012 - PyYAML's own class-level registry, copied without four tags
        tag: constructor
        for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
        if tag not in {f"tag:yaml.org,2002:{name}" for name in ("binary", "set", "omap", "pairs")}
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open_anchors: list[str | None] = []
        self._expanded: dict[int, tuple[int, int]] = {}
        """id(node) -> (values, depth) of the node with its aliases expanded."""

    def _refuse(self, problem: str, mark: yaml.Mark | None) -> NoReturn:
        raise yaml.MarkedYAMLError(problem=problem, problem_mark=mark)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node:
        event = cast(yaml.NodeEvent, self.peek_event())  # pyright: ignore[reportUnknownMemberType] (untyped)
        if isinstance(event, yaml.AliasEvent) and event.anchor in self._open_anchors:
            self._refuse(f"the alias *{event.anchor} stands for a value that contains it", event.start_mark)
        if len(self._open_anchors) >= MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._open_anchors.append(event.anchor)
        try:
            node = cast(yaml.Node, super().compose_node(parent, index))  # pyright: ignore[reportUnknownMemberType] (untyped)
        finally:
            self._open_anchors.pop()
        if isinstance(event, yaml.ScalarEvent) and event.tag == _TEXT_TAG and isinstance(node, yaml.ScalarNode):
            # go-yaml takes an explicit !!str as it takes quotes (yaml.v3 Node.indicatedString): `!!str 3.10` is 3.10.
            node.style = node.style or "'"
        self._measure(node, event.start_mark)
        return node

    def _measure(self, node: yaml.Node, mark: yaml.Mark) -> None:
        if id(node) not in self._expanded:  # an alias's node is measured once, where its anchor is
            children = [self._expanded[id(child)] for child in _children(node)]
            self._expanded[id(node)] = (1 + sum(n for n, _ in children), 1 + max((d for _, d in children), default=0))
        values, depth = self._expanded[id(node)]
        if depth > MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels once its aliases are expanded", mark)
        if values > MAX_NODES:
            self._refuse(f"more than {MAX_NODES} values once its aliases are expanded (an alias bomb)", mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in cast(list[tuple[yaml.Node, yaml.Node]], node.value) for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return cast(list[yaml.Node], node.value)
    return []


class UnreadableScalarError(ValueError):
    """A scalar the CLI refuses (it cannot carry `.inf` or `.nan` into its JSON config)."""


# go-yaml keeps an integer that fits neither int64 nor uint64 as a float when it is written in
# decimal, as text otherwise; a float beyond float64 stays text too (`resolve.go`, gopkg.in/yaml.v3).
_LONGEST_INT = 80  # digits past the leading zeros: past these no base fits 64 bits (and Python's int() refuses 4300)
_PREFIXED_BASES = {"0b": 2, "0x": 16, "0o": 8}  # go-yaml's prefixes (lower case only), cut before the digits


def _resolve_number(plain: str) -> Resolved:
    digits = plain.replace("_", "")
    body = digits.lstrip("+-")
    base = _PREFIXED_BASES.get(body[:2], 8 if len(body) > 1 and body.startswith("0") else 10)
    written = body[2:] if body[:2] in _PREFIXED_BASES else body
    significant = written.lstrip("0") or written[-1:]  # Go reads any number of leading zeros; `0x`: no digit at all
    if _INT.fullmatch(plain) and len(significant) <= _LONGEST_INT:
        try:  # `09`: no octal number (go: not an int either)
            number = int(significant, base) * (-1 if digits.startswith("-") else 1)
        except ValueError:
            number = None
        if number is not None and -(2**63) <= number < 2**64:
            return number
    if _FLOAT.fullmatch(plain) and base in (8, 10):
        number = float(digits)
        return plain if math.isinf(number) else number
    return plain


def resolve(plain: str) -> Resolved:
    """The value go-yaml reads from a plain scalar."""
    if _NULL.fullmatch(plain):
        return None
    if _BOOL.fullmatch(plain):
        return plain.lower() == "true"
    if _INT.fullmatch(plain) or _FLOAT.fullmatch(plain):
        return _resolve_number(plain)
    if _SPECIAL_FLOAT.fullmatch(plain):
        raise UnreadableScalarError(plain)
    if _DATE.fullmatch(plain):
        year, month, day = (int(part) for part in plain.split("-"))
        return datetime.date(year, month, day)
    return plain


def _go_float(value: float) -> str:
    """Go's `%v` of a float64: the shortest digits, in exponent form below 1e-4 or from 1e6."""
    if math.isinf(value) or math.isnan(value):
        raise UnreadableScalarError(repr(value))
    if value == 0:  # strconv keeps the sign bit: -0.0 prints "-0"
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = decimal.Decimal(repr(value))
    sign, digit_tuple, _ = shortest.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = shortest.adjusted()
    text = ("-" if sign else "") + digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    if exponent < -4 or exponent >= 6:
        return f"{text}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return plain_decimal(value)


def plain_decimal(value: float) -> str:
    """The shortest digits of `value` in plain notation, without trailing zeros nor a trailing point: Go's `'f'`
    format with precision -1 (strconv.FormatFloat), as `%v` and encoding/json write a float in their plain ranges."""
    plain = format(decimal.Decimal(repr(value)), "f")
    return plain.rstrip("0").rstrip(".") if "." in plain else plain


def cli_text(plain: str) -> str:
    """The string the program receives for a plain scalar written as `plain`."""
    return go_text(resolve(plain))


def go_text(value: Resolved) -> str:
    """Go's `%v` of a resolved scalar: what the CLI hands the program."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, datetime.date):
        return f"{value.isoformat()} 00:00:00 +0000 UTC"
    return str(value)


# The folder of the stack files when it is not Pulumi.yaml's `stackConfigDir`: the offline plan and check read
# another when given one (`--stacks`), and the program must read the file they read.
stacks_folder: contextvars.ContextVar[Path | None] = contextvars.ContextVar("stacks_folder", default=None)


def stack_file(stack: str, project_file: Path = PROJECT_FILE) -> Path:
    """Where the CLI looks for the stack's file (`stackConfigDir` of Pulumi.yaml, or `stacks_folder`)."""
    schema = SCHEMA if project_file == PROJECT_FILE else load_schema(project_file)
    return (stacks_folder.get() or schema.stack_config_dir) / f"Pulumi.{stack}.yaml"


# The `config:` entries of a stack file as written: (key node, value node).
ConfigEntries = list[tuple[yaml.Node, yaml.Node]]


def config_entries(path: Path) -> ConfigEntries:
    """The `config:` entries of the stack file as written (key node, value node); none where there is no such
    file (config from elsewhere) or the CLI refuses it before the program runs (refused offline too)."""
    if not path.is_file() or path.stat().st_size > MAX_BYTES:
        return []
    try:
        document = cast(yaml.Node | None, yaml.compose(path.read_text(), Loader=BoundedLoader))  # pyright: ignore[reportUnknownMemberType] (untyped)
    except (yaml.YAMLError, UnicodeDecodeError):
        return []
    top = cast(list[tuple[yaml.Node, yaml.Node]], document.value) if isinstance(document, yaml.MappingNode) else []
    return [
        entry
        for section_key, section in top
        if section_key.value == "config" and isinstance(section, yaml.MappingNode)
        for entry in cast(list[tuple[yaml.Node, yaml.Node]], section.value)
    ]


def quote_it_problems(entries: ConfigEntries, string_keys: Iterable[str]) -> list[str]:
    """For each key of `string_keys` written (in `config_entries`) as a plain scalar the CLI hands over as other text."""
    wanted = set(string_keys)
    problems: list[str] = []
    for key_node, value_node in entries:
        if key_node.value not in wanted or not isinstance(value_node, yaml.ScalarNode) or value_node.style:
            continue
        written = str(value_node.value)
        try:
            received = cli_text(written)
        except UnreadableScalarError:
            continue  # the CLI refuses the whole file
        if received != written:
            problems.append(
                f"{key_node.value} = {escaped(written)} (unquoted): Pulumi reads it as {received!r}; quote it:"
                f' {key_node.value}: "{escaped(written)}"'
            )
    return problems
