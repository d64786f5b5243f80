"""Parse: the configuration the Pulumi CLI hands the program, read once into text per key.

The CLI merges every declared default into the config before the program runs, so a key with a
default is always present; "set" means "not the default". Per-key problems found while reading
(required, too long, unprintable, not a boolean) are collected here, every later rule sees a
usable value in their place.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import cast

import pulumi
from pulumi.runtime import config as runtime_config

from mlops_ci.platforms import PLATFORMS, Platform
from mlops_ci.settings.model import CREDENTIAL_KEYS
from mlops_ci.settings.rules import printable_problem, shown
from mlops_ci.settings.schema import SCHEMA, ConfigKey

PROJECT = SCHEMA.project
# Longest value of a string key: GitLab's limit for paths, branch names and variable keys; for the
# remote path, GCS's 1024-byte object names less what DVC appends (`files/md5/xx/<30 hex>`).
MAX_LENGTH = 255
MAX_LENGTHS = {"dvcRemotePath": 960}


@dataclasses.dataclass(frozen=True)
class Parsed:
    """The stack's configuration as text, with what reading it found wrong."""

    stack: str
    project: str
    """The running project's name (Pulumi.yaml `name:`): `mlops-ci` here, the team's own in a project
    made by `pulumi new` from templates/python, whose namespace mlops-ci reads nothing from."""
    texts: dict[str, str]
    """`mlops-ci:` key name -> its text (a broken value replaced by the default, or '')."""
    flags: dict[str, bool]
    """Boolean keys -> their value."""
    set_keys: frozenset[str]
    """Keys whose value is not the declared default."""
    present: dict[str, bool]
    """Every key of the config, in any namespace -> whether it is a secret."""
    from_environment: frozenset[str]
    """Keys only the `PULUMI_CONFIG` environment variable holds, not the program's config."""
    gcp_project: str
    platform_url: str | None
    problems: tuple[str, ...]
    defaulted: frozenset[str] = frozenset()
    """Of `CREDENTIAL_KEYS`, those left to their default: `texts` holds the value it resolves to."""

    @property
    def platform(self) -> Platform | None:
        return PLATFORMS.get(self.texts["platform"])

    @property
    def keyless(self) -> bool:
        return self.texts["auth"] == "workload-identity"

    @property
    def direct(self) -> bool:
        return self.keyless and self.texts["keylessMode"] == "direct"

    @property
    def ci_file(self) -> str:
        """The CI file's path: the key, or the platform's default."""
        platform = self.platform
        return self.texts["ciFile"] or (platform.default_ci_file if platform else "")


def _read_key(key: ConfigKey, raw: str | None) -> tuple[str, list[str]]:
    """The key's text (the default, or '', in place of a broken value) and what is wrong with it."""
    fallback = key.default_text or ""
    text = fallback if raw is None else raw
    full = f"{PROJECT}:{key.name}"
    limit = MAX_LENGTHS.get(key.name, MAX_LENGTH)
    if key.default is None and not text:
        return text, [f"{full}: required ({key.description})"]
    if len(text) > limit:
        return fallback, [f"{full} = {shown(text[:40])}...: {len(text)} characters, at most {limit}"]
    if broken := printable_problem(text):
        return fallback, [f"{full} = {shown(text)}: {broken}"]
    if key.type == "boolean" and text.lower() not in ("true", "false"):
        return fallback, [f"{full} = {shown(text)}: must be true or false"]
    return text, []


def public_host(platform: Platform | None, url: str | None) -> bool:
    """Whether the platform is github.com or gitlab.com (no base URL, or theirs), which Google reaches."""
    return platform is None or url is None or url.rstrip("/") == platform.default_base_url.rstrip("/")


def resolve_credential(texts: dict[str, str], platform: Platform | None, url: str | None) -> frozenset[str]:
    """`auth` and `keylessMode` left empty take their defaults in `texts`: keyless (direct) where
    Google reaches the platform's token issuer (github.com, gitlab.com), a key on a self-managed
    instance (often behind a firewall). The names of the keys so defaulted."""
    defaulted = frozenset(name for name in CREDENTIAL_KEYS if not texts[name])
    if not texts["auth"]:
        texts["auth"] = "workload-identity" if public_host(platform, url) else "key"
    texts["keylessMode"] = texts["keylessMode"] or "direct"
    return defaulted


def config_variable_problem() -> str | None:
    """The refusal of a `PULUMI_CONFIG` environment variable that is not a JSON object: Pulumi's SDK parses it on
    every config read (`pulumi.runtime.config.get_config_env`) and fails with a traceback, so no key can be read."""
    text = os.environ.get("PULUMI_CONFIG")
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nested past Python's recursion limit: the SDK's json.loads fails too
        value = None
    if isinstance(value, dict):
        return None
    return (
        "PULUMI_CONFIG (environment): refused: not a JSON object of config keys, so Pulumi's SDK cannot read"
        " any key; configuration comes from the stack file only: unset it"
    )


def _config_text(namespace: str, name: str) -> str | None:
    """The key's text, or None where it has none. `pulumi.Config.get` returns what PULUMI_CONFIG's JSON holds for a key
    the stack lacks as it is (a number, a list): no text, so no value here (that key is refused apart,
    environment_problems), not a traceback in a string method."""
    value = cast(object, pulumi.Config(namespace).get(name))
    return value if isinstance(value, str) else None


def _present_keys() -> dict[str, bool]:
    # Pulumi offers no public listing of config keys; the runtime keeps them in these two places.
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return {key: runtime_config.is_config_secret(key) for key in keys}


def parse(stack: str | None = None) -> Parsed:
    """Read every key of the schema, `gcp:project` and the platform's base URL, for `stack` (by
    default the Pulumi stack running the program)."""
    texts: dict[str, str] = {}
    problems: list[str] = []
    for key in SCHEMA.keys:
        texts[key.name], broken = _read_key(key, _config_text(PROJECT, key.name))
        problems += broken
    platform = PLATFORMS.get(texts["platform"])
    set_keys = frozenset(key.name for key in SCHEMA.keys if texts[key.name] != (key.default_text or ""))
    platform_url = (_config_text(platform.name, "baseUrl") or None) if platform else None
    defaulted = resolve_credential(texts, platform, platform_url)
    return Parsed(
        stack=pulumi.get_stack() if stack is None else stack,
        project=pulumi.get_project(),
        texts=texts,
        flags={key.name: texts[key.name].lower() == "true" for key in SCHEMA.keys if key.type == "boolean"},
        set_keys=set_keys,
        present=_present_keys(),
        from_environment=frozenset(set(runtime_config.get_config_env()) - set(runtime_config.CONFIG.get())),
        gcp_project=_config_text("gcp", "project") or "",
        platform_url=platform_url,
        problems=tuple(problems),
        defaulted=defaulted,
    )
