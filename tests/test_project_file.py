"""Pulumi.yaml declares the same typed config schema the program validates against."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.settings import CONFIG_KEYS
from offline.stacks import STACKS_DIR, load_stack_file, stack_files

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_project_file_follows_pulumi_conventions() -> None:
    assert PROJECT["name"] == "mlops-ci"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert (ROOT / PROJECT["stackConfigDir"]).resolve() == STACKS_DIR


def test_every_key_is_declared_with_type_description_and_default() -> None:
    declared = PROJECT["config"]
    expected = {
        key.name: {"type": key.type, "description": key.description} | ({} if key.default is None else {"default": key.default})
        for key in CONFIG_KEYS
    }
    assert declared == expected
    for name, declaration in declared.items():
        # Pulumi's project schema: a declaration holds only these fields; its type one of these.
        assert set(declaration) <= {"type", "description", "default", "secret", "items"}, name
        assert declaration["type"] in {"string", "integer", "boolean", "array"}, name


def test_only_platform_and_repository_are_required() -> None:
    assert [key.name for key in CONFIG_KEYS if key.default is None] == ["platform", "repository"]


def test_stack_files_use_namespaced_keys_of_known_namespaces() -> None:
    assert len(stack_files()) >= 2
    for path in stack_files():
        for key in load_stack_file(path).config:
            assert key.split(":")[0] in {"mlops-ci", "gcp", "github", "gitlab"}, (path.name, key)
