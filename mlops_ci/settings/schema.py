"""The configuration schema, declared once in the package (`config.yaml` beside this module), and
what the running project's Pulumi.yaml adds: its stack directory and the platform's allow-list.

The Pulumi CLI reads the same declarations from the project's Pulumi.yaml (`config:`, a copy kept
in step by a test): it merges each `default:` into the stack's config before the program runs,
refuses a stack that lacks a key without one, and checks the declared types. The settings loader
is driven by this table; nothing else lists the keys.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, cast

import yaml

CONFIG_FILE = Path(__file__).with_name("config.yaml")
# The Pulumi CLI runs a program in its project's directory; the offline tools run from this repository's root.
PROJECT_FILE = Path.cwd() / "Pulumi.yaml"
# The namespace of the keys, whatever the project's name: stack files say `mlops-ci:platform`.
NAMESPACE = "mlops-ci"

ConfigType = Literal["string", "boolean"]


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One key declared under `config:` in Pulumi.yaml."""

    name: str
    """Key as declared: without namespace for the project's own keys (`branch`)."""
    type: ConfigType
    """Declared Pulumi config type."""
    description: str
    """What the key means."""
    default: str | bool | None
    """Declared default; None means the stack must set the key."""
    secret: bool
    """Declared `secret: true`: the stack must hold it encrypted (`secure:`)."""

    @property
    def default_text(self) -> str | None:
        """The default as the CLI hands it to the program (Go's `%v`: `true`, `''`)."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return self.default


@dataclasses.dataclass(frozen=True)
class ProjectSchema:
    """The keys' namespace and declarations (in declaration order), and what the project file adds."""

    project: str
    keys: tuple[ConfigKey, ...]
    stack_config_dir: Path
    """Where the stack files are (`stackConfigDir`, relative to Pulumi.yaml)."""
    existing_buckets: tuple[str, ...] = ()
    """`platform: existingBuckets:` of Pulumi.yaml: the buckets (shell patterns) a stack file may name
    as `mlops-ci:existingBucket`. Set by whoever owns Pulumi.yaml and runs `pulumi up`, never by a
    stack file (Pulumi ignores top-level keys it does not know)."""
    base_urls: tuple[str, ...] = ()
    """`platform: baseUrls:` of Pulumi.yaml: the self-managed GitHub or GitLab APIs a stack file may
    name as `<platform>:baseUrl`, where `pulumi up` sends the platform's token. Set by whoever owns
    Pulumi.yaml, like `existing_buckets`."""
    repositories: tuple[str, ...] = ()
    """`platform: repositories:` of Pulumi.yaml: the repositories (shell patterns, `{stack}` as in
    `existing_buckets`) a stack file may name as `mlops-ci:repository`, where `pulumi up` commits
    with the platform's token; empty or absent: any."""
    projects: tuple[str, ...] = ()
    """`platform: projects:` of Pulumi.yaml: the Google Cloud projects (shell patterns, `{stack}` as
    in `existing_buckets`) a stack file may name as `gcp:project`, where `pulumi up` enables APIs and
    creates the bucket, the service account and its key with the platform's credentials; empty or
    absent: any."""

    workload_identity_providers: tuple[str, ...] = ()
    """`platform: workloadIdentityProviders:` of Pulumi.yaml: the shared providers (shell patterns,
    `{stack}` as in `existing_buckets`) a stack file may name as `mlops-ci:workloadIdentityProvider`,
    to grant on the platform team's pool instead of creating one; none listed: none."""

    def key(self, name: str) -> ConfigKey:
        return next(key for key in self.keys if key.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)


def declared_config() -> dict[str, dict[str, Any]]:
    """The `config:` section a project running mlops-ci declares in its Pulumi.yaml."""
    return cast(dict[str, dict[str, Any]], yaml.safe_load(CONFIG_FILE.read_text())["config"])


def load_schema(project_file: Path = PROJECT_FILE) -> ProjectSchema:
    """The package's keys; the stack directory and the platform's allow-lists of `project_file` (none if absent)."""
    document = cast(dict[str, Any], yaml.safe_load(project_file.read_text())) if project_file.is_file() else {}
    declared = declared_config()
    keys = tuple(
        ConfigKey(
            name=name,
            type=declaration["type"],
            description=declaration["description"],
            default=declaration.get("default"),
            secret=bool(declaration.get("secret", False)),
        )
        for name, declaration in declared.items()
    )
    platform = cast(dict[str, Any], document.get("platform") or {})
    return ProjectSchema(
        NAMESPACE,
        keys,
        project_file.parent / str(document.get("stackConfigDir", ".")),
        tuple(str(pattern) for pattern in platform.get("existingBuckets") or ()),
        tuple(str(url) for url in platform.get("baseUrls") or ()),
        tuple(str(pattern) for pattern in platform.get("repositories") or ()),
        tuple(str(pattern) for pattern in platform.get("projects") or ()),
        tuple(str(pattern) for pattern in platform.get("workloadIdentityProviders") or ()),
    )


SCHEMA = load_schema()
