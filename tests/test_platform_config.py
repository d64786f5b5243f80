"""What the stack accepts for the platform: encrypted tokens only, an explicit API (nothing in the
environment redirects the token or the trust), no credentials echoed, `secure:` only on secrets."""

from __future__ import annotations

import pytest
from pulumi.runtime import rpc

from mlops_ci.settings.loader import ConfigError
from tests.helpers import run


@pytest.mark.parametrize(
    ("base", "variable", "expected"),
    [("github", "GITHUB_BASE_URL", "https://api.github.com/"), ("gitlab", "GITLAB_BASE_URL", "https://gitlab.com/api/v4/")],
)
def test_the_provider_gets_an_explicit_api_whatever_the_environment(
    base: str, variable: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "https://attacker.example/api/")
    provider = run(base).one(f"pulumi:providers:{base}")
    assert provider.plain("baseUrl") == expected


def test_the_github_provider_acts_for_the_repositorys_owner_with_the_stacks_token() -> None:
    """`organization` too: upstream v6.13.0 provider.go `configureProvider` reads it before GITHUB_OWNER."""
    provider = run("github", github__token="ghp_x", secret_keys=("github:token",)).one("pulumi:providers:github")
    assert (provider.plain("owner"), provider.plain("organization")) == ("acme-ml", "acme-ml")
    assert provider.plain("token") == "ghp_x"
    assert rpc.is_rpc_secret(provider.inputs["token"])


def test_an_encrypted_token_is_accepted() -> None:
    provider = run("gitlab", gitlab__token="glpat-x", secret_keys=("gitlab:token",)).one("pulumi:providers:gitlab")
    assert provider.plain("token") == "glpat-x"


@pytest.mark.parametrize(
    ("overrides", "hidden"),
    [
        ({"gitlab__token": "glpat-do-not-print"}, "glpat-do-not-print"),
        ({"gitlab__baseUrl": "https://ci:hunter2@gitlab.acme.example/api/v4/"}, "hunter2"),
    ],
)
def test_credentials_in_the_config_are_never_echoed(overrides: dict[str, str], hidden: str) -> None:
    with pytest.raises(ConfigError) as raised:
        run("gitlab", overrides)
    assert raised.value.problems
    assert hidden not in str(raised.value)


def test_secure_on_an_ordinary_key_says_it_is_not_a_secret() -> None:
    with pytest.raises(ConfigError, match=r"mlops-ci:branch: not a secret: write it in plain text"):
        run("github", branch="main", secret_keys=("mlops-ci:branch",))
