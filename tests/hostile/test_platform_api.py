"""Where `pulumi up` sends the platform's token: github.com's or gitlab.com's API, or one the platform
lists in Pulumi.yaml (`platform.baseUrls`); the refusals themselves are cases of `cases.py`."""

from __future__ import annotations

import pytest

from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.schema import SCHEMA
from tests.helpers import CountingMocks, run


def test_the_platform_allow_list_is_declared_in_the_project_file() -> None:
    assert SCHEMA.base_urls == ("https://gitlab.acme.example/api/v4/",)


@pytest.mark.parametrize("url", ["https://gitlab.acme.example/api/v4/", "https://gitlab.acme.example/api/v4"])
def test_an_allowed_api_reaches_the_provider(url: str) -> None:
    provider = run("gitlab", gitlab__baseUrl=url).one("pulumi:providers:gitlab")
    assert provider.plain("baseUrl") == url


@pytest.mark.parametrize(("platform", "url"), [("github", "https://api.github.com/"), ("gitlab", "https://gitlab.com/api/v4/")])
def test_the_public_api_needs_no_entry(platform: str, url: str) -> None:
    provider = run(platform, {f"{platform}__baseUrl": url}).one(f"pulumi:providers:{platform}")
    assert provider.plain("baseUrl") == url


def test_another_api_is_refused_before_any_resource_naming_the_allow_list() -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("gitlab", mocks=mocks, gitlab__baseUrl="https://gitlab.evil.example/api/v4/")
    assert raised.value.problems == [
        "gitlab:baseUrl = 'https://gitlab.evil.example/api/v4/': not an API the platform lets stack files send its token to"
        " (Pulumi.yaml platform.baseUrls: https://gitlab.acme.example/api/v4/); ask whoever runs `pulumi up` to add it"
    ]
    assert mocks.created == []
