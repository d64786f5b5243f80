"""`mlops-ci:index:TeamCi` from a Pulumi YAML program under the real engine, as a hostile or merely
ordinary program uses it: preview before up, a second up with nothing to change, inputs that a stack
file could not give (an unquoted number, a secret), and one TeamCi per team in one program."""

from __future__ import annotations

from typing import Any

import yaml

from localcloud import platform
from localcloud.engine import Workspace
from localcloud.state import open_cloud

from .conftest import REPOSITORY, operations
from .test_other_languages import TEAM, YamlProgram, space

__all__ = ["space"]  # the fixture, shared with test_other_languages


def refused(program: YamlProgram, key: str) -> str:
    up = program.pulumi("up", "--yes", "--stack", "dev", check=False)
    output = up.stdout + up.stderr
    assert up.returncode != 0, output
    assert key in output, output
    assert "Traceback" not in output
    assert operations(open_cloud(program.space.cloud_dir)) == []
    return output


def test_preview_up_then_a_second_up_changes_nothing(space: Workspace) -> None:
    program = YamlProgram(space, TEAM)
    program.add_package()

    program.pulumi("preview", "--stack", "dev")
    program.pulumi("up", "--yes", "--stack", "dev")
    again = program.pulumi("preview", "--expect-no-changes", "--diff", "--stack", "dev", check=False)

    assert again.returncode == 0, again.stdout + again.stderr


def test_an_unquoted_number_for_a_text_key_is_refused_as_a_stack_file_would(space: Workspace) -> None:
    program = YamlProgram(space, TEAM)
    document = yaml.safe_load((program.directory / "Pulumi.yaml").read_text())
    document["resources"]["vision-team"]["properties"]["pythonVersion"] = 3.10  # written `pythonVersion: 3.10`
    (program.directory / "Pulumi.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    program.add_package()

    refused(program, "mlops-ci:pythonVersion")


def test_a_secret_input_is_one_clear_error(space: Workspace) -> None:
    program = YamlProgram(space, {**TEAM, "keyRotation": {"fn::secret": "2026-11"}})
    program.add_package()

    output = refused(program, "mlops-ci:keyRotation")

    assert "2026-11" not in output


def test_one_program_holds_one_teamci_per_team(space: Workspace) -> None:
    cloud = open_cloud(space.cloud_dir)
    seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}  # a DVC pipeline, as pre-flight requires
    platform.create_repository(cloud, "github", "acme-ml/churn", ["main"], seed)
    program = YamlProgram(space, TEAM)
    document: dict[str, Any] = yaml.safe_load((program.directory / "Pulumi.yaml").read_text())
    document["resources"]["churn-team"] = {
        "type": "mlops-ci:index:TeamCi",
        "properties": {**TEAM, "repository": "acme-ml/churn"},
    }
    (program.directory / "Pulumi.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    program.add_package()

    up = program.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)

    assert up.returncode == 0, up.stdout + up.stderr
    assert "Duplicate resource URN" not in up.stdout + up.stderr


def test_the_packages_section_package_add_writes_is_enough(space: Workspace) -> None:
    """No `plugins: providers:` entry (README 'Other languages' says the CLI 3.274 needs one): up, a
    second up, refresh and destroy with only what `pulumi package add` writes."""
    program = YamlProgram(space, TEAM)
    program.pulumi("package", "add", str(REPOSITORY / "package"))
    program.pulumi("stack", "init", "dev")

    assert "+ 17 created" in program.pulumi("up", "--yes", "--stack", "dev").stdout
    assert "17 unchanged" in program.pulumi("up", "--yes", "--stack", "dev").stdout
    assert "17 unchanged" in program.pulumi("refresh", "--yes", "--stack", "dev").stdout
    assert "- 17 deleted" in program.pulumi("destroy", "--yes", "--stack", "dev").stdout


def test_the_programs_token_stays_a_secret_in_the_state_and_the_logs(space: Workspace) -> None:
    program = YamlProgram(space, TEAM)
    program.add_package()
    program.pulumi("config", "set", "--secret", "github:token", "ghp_localcloud", "--stack", "dev")

    up = program.pulumi("up", "--yes", "--stack", "dev")
    state = program.pulumi("stack", "export", "--stack", "dev").stdout

    assert "ghp_localcloud" not in state
    assert "ghp_localcloud" not in up.stdout + up.stderr
