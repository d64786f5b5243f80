"""The platform registry: each platform answers for its own rules, CI file and pages."""

from __future__ import annotations

import pytest

from mlops_ci.platforms import PLATFORMS
from mlops_ci.platforms.base import type_token
from mlops_ci.settings.loader import ConfigError
from tests.helpers import make_settings, run


def test_registry_names_each_platform_by_its_config_value() -> None:
    assert {name: platform.name for name, platform in PLATFORMS.items()} == {"github": "github", "gitlab": "gitlab"}


@pytest.mark.parametrize(
    ("base", "base_url", "ci_file", "expected"),
    [
        ("github", None, ".github/workflows/mlops.yaml", "https://github.com/acme-ml/churn-model/actions/workflows/mlops.yaml"),
        (
            "github",
            "https://ghe.acme.example/api/v3/",
            ".github/workflows/repro.yml",
            "https://ghe.acme.example/acme-ml/churn-model/actions/workflows/repro.yml",
        ),
        (  # a server under a path: only '/' is stripped, never a letter
            "github",
            "https://acme.example/GHX/",
            ".github/workflows/mlops.yaml",
            "https://acme.example/GHX/acme-ml/churn-model/actions/workflows/mlops.yaml",
        ),
        ("gitlab", None, ".gitlab-ci.yml", "https://gitlab.com/acme-ml/research/churn-model/-/pipelines"),
        (
            "gitlab",
            "https://gitlab.acme.example/api/v4/",
            ".gitlab-ci.yml",
            "https://gitlab.acme.example/acme-ml/research/churn-model/-/pipelines",
        ),
    ],
)
def test_runs_page_honours_the_base_url(base: str, base_url: str | None, ci_file: str, expected: str) -> None:
    settings = make_settings(base, platform_url=base_url, ci_file=ci_file)
    assert PLATFORMS[base].runs_url(settings) == expected


def test_the_runs_page_is_exported() -> None:
    evaluation = run("gitlab", gitlab__baseUrl="https://gitlab.acme.example/api/v4/")
    assert evaluation.exports["ciRunsUrl"] == "https://gitlab.acme.example/acme-ml/research/churn-model/-/pipelines"


def test_a_key_of_another_platform_is_refused_naming_its_platform() -> None:
    with pytest.raises(ConfigError, match=r"mlops-ci:protectedVariable = 'true': applies to platform gitlab only"):
        run("github", protectedVariable="true")


def test_a_class_no_pulumi_sdk_registers_has_no_type_token() -> None:
    with pytest.raises(TypeError, match=r"^object carries no Pulumi type token$"):
        type_token(object)
