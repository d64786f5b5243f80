"""Stack files read as the CLI reads them: one clear error with file, line and column for broken
YAML, duplicate keys or bytes that are not UTF-8; plain scalars kept as written."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import yaml

from mlops_ci.offline.stacks import StackFileError, load_stack_file
from mlops_ci.settings import validate as settings
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.namespaces import tags_written_as_text
from mlops_ci.settings.stack_file import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    BoundedLoader,
    cli_text,
    config_entries,
    quote_it_problems,
    stack_file,
)
from tests.helpers import CountingMocks, run

HEAD = "config:\n  gcp:project: acme-ml\n  mlops-ci:platform: github\n  mlops-ci:repository: a/b\n"


def write(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "Pulumi.team-a.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        (
            HEAD + "  mlops-ci:branch: main\n  mlops-ci:branch: dev\n",
            ":6:3: ",
            "duplicate key 'mlops-ci:branch' (first at line 5)",
        ),
        (
            HEAD + '  "mlops-ci:branch": main\n  mlops-ci:branch: dev\n',
            ":6:3: ",
            "duplicate key 'mlops-ci:branch' (first at line 5)",
        ),
        (HEAD + "  mlops-ci:branch: [main\n", ":6:1: ", "invalid YAML"),
        (HEAD + "  mlops-ci:branch: ma\tin: x\n", ":5:", "invalid YAML"),
        (HEAD.encode() + b"  mlops-ci:branch: caf\xe9\n", ":5:23: ", "not UTF-8 text (byte 0xe9)"),
    ],
)
def test_a_broken_stack_file_is_one_error_naming_file_line_and_column(
    tmp_path: Path, content: bytes | str, where: str, words: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(StackFileError) as raised:
        load_stack_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}{where}"), message
    assert words in message
    assert "Traceback" not in message
    assert "<unicode string>" not in message


# Seen with the real CLI (tests/engine/test_cli_config.py): the text the program receives.
NUMBERS = "[08, 1.0, 1e3, 1e-7, 0.000001, 1e20, 1e21, 1.5e300, -0.0, 12345678901234567890, -9223372036854775809]"
STRINGS = '["<b>&", \u00e9, "\\u2028", "\\t", "\\x01", 2024-01-01]'
INT64 = "[9223372036854775807, -9223372036854775808]"
KEYS = "{1: x, b: y, 1.5: z, ~: n, 2024-01-01: d, 0x10: h}"
CLI_READS = [
    ("3.10", "3.1"), ("3.12", "3.12"), ("010", "8"), ("0o17", "15"), ("1e3", "1000"), ("1.0", "1"), ("0x1F", "31"),
    ("1_000", "1000"), ("12345678901234567890", "12345678901234567890"), ("yes", "yes"), ("no", "no"), ("on", "on"),
    ("off", "off"), ("true", "true"), ("True", "true"), ("TRUE", "true"), ("~", ""), ("null", ""), ("", ""),
    ("2024-01-01", "2024-01-01 00:00:00 +0000 UTC"), ("12:30:00", "12:30:00"), ("1:30", "1:30"), ('"3.10"', "3.10"),
    ('[1, "a", true, 3.10]', '[1,"a",true,3.1]'), ("{b: 1, a: x, c: [yes]}", '{"a":"x","b":1,"c":["yes"]}'),
    # Inside an object, Go's encoding/json: its numbers (read back as an int64 where the text is one), its escapes
    # (<, >, &, U+2028), a date as Go's text of it, a key as Go's %v of it.
    (NUMBERS, "[8,1,1000,1e-7,0.000001,100000000000000000000,1e+21,1.5e+300,0,12345678901234567000,-9223372036854776000]"),
    (INT64, "[9223372036854775807,-9223372036854775808]"),
    (STRINGS, '["\\u003cb\\u003e\\u0026","\u00e9","\\u2028","\\t","\\u0001","2024-01-01 00:00:00 +0000 UTC"]'),
    (KEYS, '{"1":"x","1.5":"z","16":"h","2024-01-01 00:00:00 +0000 UTC":"d","\\u003cnil\\u003e":"n","b":"y"}'),
    # An explicit !!str is text as written, as quotes are (go-yaml v3 Node.indicatedString; seen with gopkg.in/yaml.v3
    # v3.0.1 through the CLI's read, write and read again of a stack file, workspace/loaders.go).
    ("!!str 3.10", "3.10"), ("!!str 010", "010"), ("[!!str 1.0, 1.0]", '["1.0",1]'),
]  # fmt: skip


def test_keys_are_the_text_written_as_go_yaml_reads_them(tmp_path: Path) -> None:
    """go-yaml sets a Go string key from the scalar as written: `true:` and `1:` are two keys (Python's True == 1
    made them one, a duplicate), each refused by its own text."""
    path = write(tmp_path, HEAD + "  true: a\n  1: b\n")
    with pytest.raises(StackFileError) as raised:
        load_stack_file(path)
    assert raised.value.problems == [
        f"{key}: config keys are <namespace>:<name>, e.g. mlops-ci:branch" for key in ("'true'", "'1'")
    ]


@pytest.mark.parametrize(("written", "expected"), CLI_READS)
def test_scalars_reach_the_program_as_the_cli_hands_them(tmp_path: Path, written: str, expected: str) -> None:
    config = load_stack_file(write(tmp_path, HEAD + f"  t:key: {written}\n".replace(": \n", ":\n"))).config
    assert config["t:key"] == expected


@pytest.mark.parametrize("written", [".inf", ".nan"])
def test_values_the_cli_cannot_read_are_one_clear_error(tmp_path: Path, written: str) -> None:
    with pytest.raises(StackFileError, match=rf":5:10: invalid YAML: \{written}: Pulumi cannot read this value \(quote it"):
        load_stack_file(write(tmp_path, HEAD + f"  t:key: {written}\n"))


def test_the_program_asks_to_quote_a_value_the_cli_would_change(tmp_path: Path) -> None:
    # The program reads the stack file as written (the CLI hands it only '3.1'), from stackConfigDir.
    (tmp_path / "Pulumi.yaml").write_text("name: mlops-ci\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    path = tmp_path / "stacks/Pulumi.team-a.yaml"
    # t:version is no key the program reads as text: however the CLI hands it over, nothing to quote.
    path.write_text(
        HEAD + "  mlops-ci:pythonVersion: 3.10\n  mlops-ci:branch: '010'\n  mlops-ci:keyRotation: 2026\n  t:version: 3.10\n"
    )
    assert stack_file("team-a", tmp_path / "Pulumi.yaml") == path
    keys = ["mlops-ci:pythonVersion", "mlops-ci:branch", "mlops-ci:keyRotation"]
    assert quote_it_problems(config_entries(path), keys) == [
        "mlops-ci:pythonVersion = 3.10 (unquoted): Pulumi reads it as '3.1'; quote it: mlops-ci:pythonVersion: \"3.10\""
    ]


def test_a_value_tagged_text_needs_no_quotes(tmp_path: Path) -> None:
    # go-yaml takes `!!str 3.10` as it takes "3.10": the CLI hands over 3.10.
    path = write(tmp_path, HEAD + "  mlops-ci:pythonVersion: !!str 3.10\n  mlops-ci:branch: !<tag:yaml.org,2002:str> 010\n")
    assert quote_it_problems(config_entries(path), ["mlops-ci:pythonVersion", "mlops-ci:branch"]) == []


def test_the_quote_it_check_reads_a_deep_stack_file_within_bounds_not_into_a_traceback(tmp_path: Path) -> None:
    # Nested deeper than Python's recursion limit: PyYAML's own loader would stop in a RecursionError.
    path = write(tmp_path, HEAD + "  mlops-ci:pythonVersion: 3.10\n  t:deep: " + "[" * 3000 + "]" * 3000 + "\n")
    assert (
        quote_it_problems(config_entries(path), ["mlops-ci:pythonVersion"]) == []
    )  # beyond MAX_DEPTH: refused as the loader refuses it


def test_the_quote_it_check_reads_a_stack_file_of_up_to_max_bytes(tmp_path: Path) -> None:
    # The offline reader's bound (1 MiB): a file of exactly MAX_BYTES is read, one byte more is left to its refusal.
    body = HEAD + "  mlops-ci:pythonVersion: 3.10\n"
    comment = "#" * (MAX_BYTES - len(body) - 1) + "\n"
    path = write(tmp_path, body + comment)
    assert path.stat().st_size == MAX_BYTES
    assert len(quote_it_problems(config_entries(path), ["mlops-ci:pythonVersion"])) == 1
    write(tmp_path, body + "#" + comment)
    assert quote_it_problems(config_entries(path), ["mlops-ci:pythonVersion"]) == []


@pytest.mark.parametrize(
    "content", ["", "- a\n", "x\n", "config: 5\n", "config: [a]\n", "other:\n  mlops-ci:pythonVersion: 3.10\n"]
)
def test_the_quote_it_check_reads_the_config_mapping_only_and_never_into_a_traceback(tmp_path: Path, content: str) -> None:
    # Files the CLI refuses, or whose config holds nothing to quote (the offline reader refuses them, named).
    assert quote_it_problems(config_entries(write(tmp_path, content)), ["mlops-ci:pythonVersion"]) == []


@pytest.mark.parametrize(
    ("content", "handed_over", "refusal"),
    [
        (
            HEAD + "  mlops-ci:pythonVersion: 3.10\n",
            {"pythonVersion": "3.1"},
            r"mlops-ci:pythonVersion = 3.10 \(unquoted\): Pulumi reads it as '3.1'",
        ),
        # Not only mlops-ci's own keys: `gcp:project: 1.10` reaches the program as '1.1', not the text written.
        (
            HEAD.replace("acme-ml", "1.10"),
            {"gcp:project": "1.1"},
            r"gcp:project = 1.10 \(unquoted\): Pulumi reads it as '1.1'; quote it",
        ),
        # The tags' object written as text (`pulumi config set pulumi:tags '{"team": "ml"}'`): the program gets the
        # JSON a mapping gives; the CLI keeps a string and refuses it as tags (pulumi/pulumi pkg/backend/stack.go
        # GetEnvironmentTagsForCurrentStack, config/value.go ToObject).
        (
            HEAD + '  pulumi:tags: \'{"team": "ml"}\'\n',
            {"pulumi__tags": '{"team":"ml"}'},
            r"pulumi:tags: written as text, which the CLI reads as a string, not an object of strings",
        ),
        (HEAD + "  pulumi:tags: |\n    {}\n", {"pulumi__tags": "{}\n"}, r"pulumi:tags: written as text"),
    ],
    ids=["python-version", "google-project", "tags-quoted", "tags-block"],
)
def test_a_stack_with_an_unquoted_number_is_refused_before_any_resource(
    content: str, handed_over: dict[str, str], refusal: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, content)

    def stack_file_of(stack: str) -> Path:
        return path if stack == "team-a" else tmp_path / "another-stack.yaml"  # the file of the stack being run

    monkeypatch.setattr(settings, "stack_file", stack_file_of)
    mocks = CountingMocks()
    with pytest.raises(ConfigError, match=refusal):
        run("github", handed_over, mocks=mocks)
    assert mocks.created == []


@pytest.mark.parametrize("written", ["\n    team: ml", " {}", " {team: ml}", " ''", " '[]'", " x"])
def test_tags_written_as_a_mapping_or_as_text_that_is_no_object_are_not_told_to_be_a_mapping(
    tmp_path: Path, written: str
) -> None:
    # A mapping is what the CLI wants; text that holds no object is refused as no object of strings already.
    assert tags_written_as_text(config_entries(write(tmp_path, HEAD + f"  pulumi:tags:{written}\n"))) == []


# go-yaml v3's resolution of plain numbers (resolve.go: `_` dropped, 0b/0o/0x and leading-zero octal, int64 then
# uint64, else float64) and Go's `%v` of a float64 (strconv 'g', shortest digits, exponent form below 1e-4 or from
# 1e6, at least two exponent digits).
GO_READS = [
    ("0b101", "5"), ("-0b101", "-5"), ("-0x1F", "-31"), ("+12", "12"), ("-010", "-8"), ("0_1", "1"), ("09", "9"),
    ("0x" + "0" * 76 + "1F", "31"),
    ("-9223372036854775808", "-9223372036854775808"), ("-9223372036854775809", "-9.223372036854776e+18"),
    ("18446744073709551615", "18446744073709551615"), ("0xFFFFFFFFFFFFFFFF", "18446744073709551615"),
    ("18446744073709551616", "1.8446744073709552e+19"), ("0x10000000000000000", "0x10000000000000000"),
    ("1" * 81, "1.1111111111111111e+80"), ("1" + "0" * 400, "1" + "0" * 400), ("0o" + "7" * 30, "0o" + "7" * 30),
    ("1__0", "10"),
    ("1e5", "100000"), ("123456.5", "123456.5"), ("1e6", "1e+06"), ("0.0001", "0.0001"), ("0.00001", "1e-05"),
    ("-2.5e-7", "-2.5e-07"), ("-1.5", "-1.5"), ("0.0", "0"), ("-.5", "-0.5"), ("1.50", "1.5"), ("1E3", "1000"),
    ("-0.0", "-0"), ("-0", "0"),
    ("0o8", "0o8"), ("0x", "0x"), ("2024-1-2", "2024-01-02 00:00:00 +0000 UTC"), ("False", "false"),
]  # fmt: skip


@pytest.mark.parametrize(("written", "expected"), GO_READS, ids=[w[:24] for w, _ in GO_READS])
def test_numbers_reach_the_program_as_go_reads_and_prints_them(written: str, expected: str) -> None:
    assert cli_text(written) == expected


def compose(text: str) -> yaml.Node:
    return cast(yaml.Node, yaml.compose(text, Loader=BoundedLoader))  # pyright: ignore[reportUnknownMemberType] (untyped)


def refusal(text: str) -> str:
    with pytest.raises(yaml.MarkedYAMLError) as raised:
        compose(text)
    return str(raised.value.problem)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: 1\nb: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", "line 2, column 35"),
        ("a: 1\nb: &l [*l]\n", "line 2, column 8"),
        # Too deep or too many once the aliases are expanded: the value that holds them.
        ("a: &n " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\nb: [*n]\n", "line 1, column 1"),
        ("x: 1\ny:\n  a: &v [" + ", ".join(["v"] * ((MAX_NODES - 2) // 2)) + "]\n  b: *v\n", "line 3, column 3"),
    ],
)
def test_a_refused_value_is_shown_where_it_is_written(text: str, where: str) -> None:
    # A stack file holds many keys: the refusal says where the value is, as PyYAML's own errors do.
    with pytest.raises(yaml.MarkedYAMLError) as raised:
        compose(text)
    assert f'in "<unicode string>", {where}:' in str(raised.value)


def test_the_bounds_of_a_stack_file_are_exact_and_an_alias_that_repeats_a_value_is_read() -> None:
    # MAX_DEPTH levels of nesting, as written or once aliases are expanded; MAX_NODES values, an alias counting as
    # the whole value it stands for.
    assert (MAX_DEPTH, MAX_NODES) == (32, 10_000)  # as the README says: "32 levels, 10,000 values"
    assert isinstance(compose("[" * MAX_DEPTH + "]" * MAX_DEPTH), yaml.SequenceNode)
    assert refusal("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) == f"nested deeper than {MAX_DEPTH} levels"
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert isinstance(compose(f"a: &n {nested}\nb: *n\n"), yaml.MappingNode)
    assert refusal(f"a: &n {nested}\nb: [*n]\n") == f"nested deeper than {MAX_DEPTH} levels once its aliases are expanded"
    values = MAX_NODES - 1  # the sequence holding them is a value too
    assert isinstance(compose("[" + ", ".join(["v"] * values) + "]"), yaml.SequenceNode)
    assert refusal("[" + ", ".join(["v"] * (values + 1)) + "]") == (
        f"more than {MAX_NODES} values once its aliases are expanded (an alias bomb)"
    )
    half = (MAX_NODES - 2) // 2  # a mapping, a sequence of `half` values, its alias
    assert isinstance(compose("a: &v [" + ", ".join(["v"] * (half - 2)) + "]\nb: *v\n"), yaml.MappingNode)
    assert refusal("a: &v [" + ", ".join(["v"] * half) + "]\nb: *v\n").startswith(f"more than {MAX_NODES} values")


@pytest.mark.parametrize(
    ("written", "expected"), [("0x" + "0" * 100 + "1F", "31"), ("-0b" + "0" * 100 + "1", "-1"), ("0x_", "0x_")]
)
def test_a_number_is_read_whatever_its_leading_zeros(written: str, expected: str) -> None:
    # go-yaml hands strconv.ParseInt the whole form; leading zeros never make it overflow.
    assert cli_text(written) == expected
