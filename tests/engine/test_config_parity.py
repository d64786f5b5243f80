"""Parity: for every committed stack file, the config the REAL CLI hands the program equals what the
offline path (`mlops_ci.offline.stacks.load_stack_file`, used by `make plan`, `make check` and the tests)
computes. "What the program sees" is taken from inside the program (pulumi.runtime config, dumped by
conftest.DUMP_PROGRAM during `pulumi preview`), not from `pulumi config`, which skips validation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_ci.offline.stacks import ENCRYPTED_PLACEHOLDER, load_stack_file, stack_files
from tests.engine.conftest import Engine

pytestmark = pytest.mark.engine

STACK_FILES = stack_files()


def test_there_are_stack_files_to_compare() -> None:
    assert len(STACK_FILES) >= 4


# A committed stack file's secrets are encrypted with its team's passphrase, which the tests do not
# have: they are set again here, with this engine's, under the same keys.
_SECRET = re.compile(r"^  (\S+):\n    secure: \S+\n", re.MULTILINE)
_SALT = re.compile(r"^(encryptionsalt|secretsprovider|encryptedkey): .*\n", re.MULTILINE)


def init_as_committed(engine: Engine, stack: str, path: Path) -> None:
    text = path.read_text()
    secrets = _SECRET.findall(text)
    engine.init_stack(stack, _SALT.sub("", _SECRET.sub("", text)))
    for key in secrets:
        engine.run("config", "set", "--secret", "--stack", stack, key, "re-encrypted-by-the-test")


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_the_cli_hands_the_program_what_the_offline_path_computes(engine: Engine, path: Path) -> None:
    offline = load_stack_file(path)
    init_as_committed(engine, offline.stack, path)
    result, seen = engine.preview(offline.stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen is not None
    assert seen["stack"] == offline.stack
    assert sorted(seen["secret_keys"]) == sorted(offline.secret_keys)
    engine_config = {
        key: (ENCRYPTED_PLACEHOLDER if key in offline.secret_keys else value) for key, value in seen["config"].items()
    }
    missing_offline = sorted(set(engine_config) - set(offline.config))
    extra_offline = sorted(set(offline.config) - set(engine_config))
    assert not missing_offline, f"the CLI hands the program keys the offline path lacks: {missing_offline}"
    assert not extra_offline, f"the offline path has keys the CLI does not hand over: {extra_offline}"
    assert offline.config == engine_config
