"""Issue 22's standard for `mlops-ci:index:TeamCi` of other languages (mlops_ci/components/package.py):
what a YAML or TypeScript program hands the component goes through the rules a stack file goes
through. The component's name stands for the stack name (derived names, labels, the job script's path
in the team's repository), so it must be a name the CLI accepts as a stack's; the engine hands the
provider inputs untyped (`ComponentProvider.map_inputs` checks only that required ones are present);
and a program may hold one TeamCi per team."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mlops_ci.components.package import settings_of
from mlops_ci.offline.runtime import evaluate
from mlops_ci.settings.model import ConfigError

GITHUB = {"gcp_project": "acme-ml-test", "platform": "github", "repository": "acme-ml/churn-model"}
# The program's own stack config (what a YAML program's stack holds): the component replaces it by its inputs.
PROGRAM_CONFIG = {"gcp:project": "acme-ml-test", "mlops-ci:platform": "github", "mlops-ci:repository": "acme-ml/churn-model"}


@pytest.mark.parametrize(
    "name",
    [
        "../setup",  # the job script's path would be .mlops-ci/../setup.py: the team's own setup.py
        "x/../../.github/workflows/ci",  # or another workflow of the team's
        "team a",
        "team-a\nrun: curl evil",  # a line of its own in the committed CI file and the job script's header
        "t" * 101,
    ],
)
def test_a_component_name_that_is_not_a_stack_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_of(name, GITHUB)

    assert any("name" in problem and "[A-Za-z0-9_.-]" in problem for problem in raised.value.problems)


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("python_version", 3.1, "mlops-ci:pythonVersion"),  # a YAML program's unquoted 3.10; a stack file must quote it
        ("key_rotation", 202611, "mlops-ci:keyRotation"),
    ],
)
def test_an_input_of_the_wrong_type_is_refused_naming_key_and_type(field: str, value: object, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_of("team-a", {**GITHUB, field: value})

    assert [problem for problem in raised.value.problems if problem.startswith(key)]


TWO_TEAMS = """\
from mlops_ci.components.package import TeamCi

TeamCi("team-a", {"gcp_project": "acme-ml-test", "platform": "github", "repository": "acme-ml/churn-model"})
TeamCi("team-b", {"gcp_project": "acme-ml-test", "platform": "github", "repository": "acme-ml/vision"})
"""


def test_two_teams_in_one_program_register_no_urn_twice(tmp_path: Path) -> None:
    """A platform team's program with one TeamCi per team: the engine refuses a URN registered twice
    ("Duplicate resource URN"), and a URN is the parent's type chain and the name, not the parent's name."""
    program = tmp_path / "__main__.py"
    program.write_text(TWO_TEAMS)

    evaluation = evaluate("platform", PROGRAM_CONFIG, program=program)

    twice = [urn for urn, count in Counter(r.urn for r in evaluation.registrations).items() if count > 1]
    assert twice == []


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_every_resource_of_the_component_is_its_child(platform: str, tmp_path: Path) -> None:
    """Children parent=self: the providers too, or they sit beside the program's own resources of that
    name (a YAML program's `gcp-provider`) and outlive a `pulumi destroy --target` of the component."""
    program = tmp_path / "__main__.py"
    program.write_text(TWO_TEAMS.rsplit("\n", 2)[0].replace('"github"', repr(platform)) + "\n")

    evaluation = evaluate("platform", PROGRAM_CONFIG, program=program)

    component = next(r.urn for r in evaluation.registrations if r.type == "mlops-ci:index:TeamCi")
    parents = {r.urn: r.parent for r in evaluation.registrations}
    orphans = [urn for urn in parents if urn != component and not _descends(urn, component, parents)]
    assert orphans == []


def _descends(urn: str, ancestor: str, parents: dict[str, str]) -> bool:
    while urn in parents:
        urn = parents[urn]
        if urn == ancestor:
            return True
    return False
