"""A stack file as its author wrote it, against what the Pulumi CLI makes of it.

The CLI reads `Pulumi.<stack>.yaml` with go-yaml and hands each plain (unquoted) scalar to the
program as Go's text of the value it resolves to: `3.10` becomes `3.1`, `010` becomes `8`, `True`
becomes `true`, a date becomes `2024-01-01 00:00:00 +0000 UTC`, `~` becomes empty (seen with the
real CLI: tests/engine). The program cannot tell `3.1` from `3.10`, so it reads the file itself and
asks for quotes wherever the two differ, rather than building Python 3.1's CI job.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import yaml

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


class UnreadableScalarError(ValueError):
    """A scalar the CLI refuses (it cannot carry `.inf` or `.nan` into its JSON config)."""


def resolve(plain: str) -> Resolved:
    """The value go-yaml reads from a plain scalar."""
    if _NULL.fullmatch(plain):
        return None
    if _BOOL.fullmatch(plain):
        return plain.lower() == "true"
    if _INT.fullmatch(plain):
        digits = plain.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        body = digits.lstrip("+-")
        if body.startswith(("0b", "0x", "0o")):
            return sign * int(body, 0)
        return sign * int(body, 8 if len(body) > 1 and body.startswith("0") else 10)
    if _FLOAT.fullmatch(plain):
        return float(plain.replace("_", ""))
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
    if value == 0:
        return "0"
    shortest = decimal.Decimal(repr(value))
    sign, digit_tuple, _ = shortest.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = shortest.adjusted()
    text = ("-" if sign else "") + digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    if exponent < -4 or exponent >= 6:
        return f"{text}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return ("-" if sign else "") + format(abs(shortest), "f").rstrip("0").rstrip(".")


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


def stack_file(stack: str, project_file: Path = PROJECT_FILE) -> Path:
    """Where the CLI looks for the stack's file (`stackConfigDir` of Pulumi.yaml)."""
    schema = SCHEMA if project_file == PROJECT_FILE else load_schema(project_file)
    return schema.stack_config_dir / f"Pulumi.{stack}.yaml"


def quote_it_problems(path: Path, string_keys: Iterable[str]) -> list[str]:
    """For each key of `string_keys` written as a plain scalar the CLI hands over as other text."""
    if not path.is_file():
        return []  # config from elsewhere (`pulumi config set` writes quoted strings)
    try:
        document = cast(yaml.Node | None, yaml.compose(path.read_text(), Loader=yaml.SafeLoader))  # pyright: ignore[reportUnknownMemberType] (untyped)
    except (yaml.YAMLError, UnicodeDecodeError):
        return []  # the CLI itself refuses such a file before the program runs
    wanted = set(string_keys)
    problems: list[str] = []
    top = cast(list[tuple[yaml.Node, yaml.Node]], document.value) if isinstance(document, yaml.MappingNode) else []
    for section_key, section in top:
        if section_key.value != "config" or not isinstance(section, yaml.MappingNode):
            continue
        for key_node, value_node in cast(list[tuple[yaml.Node, yaml.Node]], section.value):
            if key_node.value not in wanted or not isinstance(value_node, yaml.ScalarNode) or value_node.style:
                continue
            written = str(value_node.value)
            try:
                received = cli_text(written)
            except UnreadableScalarError:
                continue  # the CLI refuses the whole file
            if received != written:
                problems.append(
                    f"{key_node.value} = {written} (unquoted): Pulumi reads it as {received!r}; quote it:"
                    f' {key_node.value}: "{written}"'
                )
    return problems
