"""Stack files read as the CLI reads them: one clear error with file, line and column for broken
YAML, duplicate keys or bytes that are not UTF-8; plain scalars kept as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.stacks import StackFileError, load_stack_file

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


@pytest.mark.parametrize(
    ("written", "expected"),
    [("3.10", "3.10"), ("010", "010"), ("yes", "yes"), ("True", "True"), ("2024-01-01", "2024-01-01"), ("1e3", "1e3")],
)
def test_plain_scalars_reach_the_program_as_written(tmp_path: Path, written: str, expected: str) -> None:
    config = load_stack_file(write(tmp_path, HEAD + f"  mlops-ci:keyRotation: {written}\n")).config
    assert config["mlops-ci:keyRotation"] == expected
