"""Which keys a stack may set at all, in every namespace, and config that would come from outside
the stack file. Only the keys the program reads are accepted: the project's own (`mlops-ci:`), in
`gcp:` the project alone (the Google provider is explicit and gets nothing else), and the platform
keys it documents (`github:token`, `gitlab:baseUrl`). Whatever else a stack file sets would be read
by something else (a default provider, the SDK) or by nothing, unseen by review."""

from __future__ import annotations

import json
import os
from typing import cast

import yaml
from pulumi.runtime.config import get_config, get_config_env_key

from mlops_ci.platforms import PLATFORMS
from mlops_ci.platforms.base import PLATFORM_KEYS, PLATFORM_SECRET_KEY
from mlops_ci.settings.parse import PROJECT, Parsed
from mlops_ci.settings.rules import did_you_mean, escaped, non_ascii, shown
from mlops_ci.settings.schema import SCHEMA
from mlops_ci.settings.stack_file import ConfigEntries

GOOGLE = "gcp"
GOOGLE_KEYS = ("project",)
# The Google provider's keys that carry credentials, and those that send its calls elsewhere
# (hashicorp/terraform-provider-google's provider schema and its transport Config: every `*CustomEndpoint`,
# `universe_domain`, `prefer_regional_endpoints` and `prefer_global_endpoints`, which pick another host).
GOOGLE_CREDENTIAL_KEYS = ("credentials", "accessToken", "impersonateServiceAccount", "impersonateServiceAccountDelegates")
GOOGLE_ENDPOINT_KEYS = ("universeDomain", "preferGlobalEndpoints", "preferRegionalEndpoints")
READ_KEYS: dict[str, tuple[str, ...]] = {
    PROJECT: SCHEMA.names,
    GOOGLE: GOOGLE_KEYS,
    **dict.fromkeys(PLATFORMS, PLATFORM_KEYS),
}
"""Namespace -> the keys of it the program reads."""
# The CLI's own keys, which it reads and the program does not: the stack's tags (`pulumi new` writes
# `pulumi:tags` with the template it used into Pulumi.yaml; pulumi/pulumi sdk/go/common/workspace/project.go,
# PulumiTagsConfigKey).
CLI_KEYS = ("pulumi:tags",)
# The stack tags the CLI computes itself and which an entry of `pulumi:tags` would overwrite (pulumi/pulumi
# pkg/backend/stack.go GetEnvironmentTagsForCurrentStack; sdk/go/common/apitype/core.go, the StackTagName
# constants: pulumi:project, pulumi:runtime, pulumi:description, vcs:owner, vcs:repo, vcs:kind, vcs:root,
# gitHub:owner/repo, gitlab:owner/repo). Only `pulumi:template` (what `pulumi new` writes) is let through.
TAG_TEMPLATE = "pulumi:template"
CLI_TAG_PREFIXES = ("pulumi:", "vcs:", "github:", "gitlab:")
# The CLI's own `PULUMI_CONFIG_*` variables: which keys are secret, the passphrase (PULUMI_CONFIG itself, the config,
# is read apart: parsed.from_environment).
CLI_VARIABLES = ("PULUMI_CONFIG_SECRET_KEYS", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


def _look_alike(text: str) -> str:
    characters = non_ascii(text)
    return f"; it has non-ASCII characters ({characters})" if characters else ""


def _unknown_namespace(key: str, namespace: str) -> str:
    return (
        f"{escaped(key)}: unknown namespace {shown(namespace)}{did_you_mean(namespace, READ_KEYS)}{_look_alike(namespace)};"
        f" mlops-ci reads {', '.join(f'{n}:' for n in READ_KEYS)} keys only"
    )


def _unknown_key(key: str, name: str, known: tuple[str, ...]) -> str:
    return f"{escaped(key)}: unknown key{did_you_mean(name, known)}{_look_alike(name)}"


def _meant_key(name: str, parsed: Parsed) -> str | None:
    """The full key a bare `name` stands for: mlops-ci's, gcp:project, or the platform's token or base URL."""
    if name in SCHEMA.names:
        return f"{PROJECT}:{name}"
    if name in GOOGLE_KEYS:
        return f"{GOOGLE}:{name}"
    if name in PLATFORM_KEYS:
        return f"{parsed.platform.name if parsed.platform else '<platform>'}:{name}"
    return None


def _project_key_problem(key: str, name: str, parsed: Parsed) -> str:
    """A key in the namespace of a project not named mlops-ci (made by `pulumi new`): `pulumi config set
    platform …` without a namespace puts it there, where mlops-ci reads nothing."""
    rule = f"{escaped(key)}: in this project's own namespace ({escaped(parsed.project)}:), which mlops-ci does not read"
    meant = _meant_key(name, parsed)
    if meant:
        return f"{rule}: set {meant} instead (`pulumi config rm {escaped(key)}; pulumi config set {meant} …`)"
    return f"{rule}; its keys are {PROJECT}:<key>{did_you_mean(name, SCHEMA.names)}"


def _tag_names(raw: object) -> list[str] | None:
    """The names of `pulumi:tags`, or None where it is not an object of strings."""
    if not isinstance(raw, str):
        return None  # PULUMI_CONFIG's JSON: null, a number, an object (refused apart, environment_problems)
    try:
        tags: object = json.loads(raw)
    except (ValueError, RecursionError):  # nested past Python's recursion limit: no object of strings either
        return None
    if not isinstance(tags, dict):
        return None
    entries = cast(dict[str, object], tags)
    return list(entries) if all(isinstance(value, str) for value in entries.values()) else None


def _tags_problem(secret: bool) -> str | None:
    """`pulumi:tags` as the CLI takes it (an object of strings), without the tags the CLI computes itself."""
    key = CLI_KEYS[0]
    if secret:
        return f"{key}: not a secret: write it in plain text (`secure:` hides from review what the stack's tags say)"
    # Present, as key_problem found it: the stack's text (an empty value is "", which the CLI refuses too, not {}),
    # or any JSON value PULUMI_CONFIG holds (null is no value to `Config.require`: a traceback).
    tags = _tag_names(get_config(key))
    if tags is None:
        return f"{key}: must be an object of strings (tag name: text), as the CLI requires"
    owned = sorted(t for t in tags if t != TAG_TEMPLATE and t.lower().startswith(CLI_TAG_PREFIXES))
    if owned:
        return (
            f"{key}: {', '.join(escaped(t) for t in owned)}: tags the CLI sets itself (the project, its repository);"
            f" only {TAG_TEMPLATE} and tags of your own"
        )
    return None


def tags_written_as_text(entries: ConfigEntries) -> list[str]:
    """`pulumi:tags` written (in `config_entries`) as text that holds an object (quoted, or a block): the program gets
    the JSON a mapping gives, but the CLI keeps it a string, and refuses it as tags (config/value.go ToObject)."""
    key = CLI_KEYS[0]
    return [
        f"{key}: written as text, which the CLI reads as a string, not an object of strings: write it as a mapping"
        f" (`pulumi config rm {key}; pulumi config set --path {key}.<name> <text>`)"
        for key_node, value_node in entries
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode) and _tag_names(str(value_node.value)) is not None
    ]


def google_key_problem(key: str, name: str) -> str:
    if name in GOOGLE_CREDENTIAL_KEYS:
        return (
            f"{escaped(key)}: refused: the credentials of `pulumi up` are those of whoever runs it (their environment),"
            " never a stack file's"
        )
    if name.endswith("CustomEndpoint") or name in GOOGLE_ENDPOINT_KEYS:
        return (
            f"{escaped(key)}: refused: it would send the Google API calls of `pulumi up`, with its credentials, to another host"
        )
    return (
        f"{_unknown_key(key, name, GOOGLE_KEYS)}: the Google provider gets gcp:project only"
        " (bucketLocation is mlops-ci:bucketLocation)"
    )


def _platform_key_problem(key: str, name: str, secret: bool, parsed: Parsed) -> str | None:
    namespace = key.partition(":")[0]
    platform = parsed.platform
    if platform and namespace != platform.name:
        return f"{escaped(key)}: not used: the stack's platform is {platform.name}"
    if name not in PLATFORM_KEYS:
        return _unknown_key(key, name, PLATFORM_KEYS)
    if name == "baseUrl" and secret:
        return f"{key}: not a secret: write it in plain text (`secure:` hides from review where the platform's token goes)"
    if name == PLATFORM_SECRET_KEY and not secret:
        # Never quoted: the value is the credential.
        return (
            f"{key}: must be encrypted: `pulumi config set --secret {key}` (or the platform's token variable"
            " in the environment); a plain-text token in a committed stack file is readable by everyone who can read it"
        )
    return None


def key_problem(key: str, secret: bool, parsed: Parsed) -> str | None:
    """What is wrong with a key being in the stack's config at all (not with its value)."""
    namespace, _, name = key.partition(":")
    if key in CLI_KEYS:
        return _tags_problem(secret)
    if namespace == parsed.project != PROJECT and name in SCHEMA.names:
        return _project_key_problem(key, name, parsed)  # a project named gcp, github or gitlab
    if (namespace == PROJECT and name in SCHEMA.names) or (namespace == GOOGLE and name in GOOGLE_KEYS):
        return f"{key}: not a secret: write it in plain text (`secure:` hides it from review)" if secret else None
    if namespace == PROJECT:
        return _unknown_key(key, name, SCHEMA.names)
    if namespace == GOOGLE:
        return google_key_problem(key, name)
    if namespace in PLATFORMS:
        return _platform_key_problem(key, name, secret, parsed)
    if namespace == parsed.project:
        return _project_key_problem(key, name, parsed)
    return _unknown_namespace(key, namespace)


def namespace_problems(parsed: Parsed) -> list[str]:
    """Every key of the config that the program does not read, or reads in another form."""
    return [problem for key in sorted(parsed.present) if (problem := key_problem(key, parsed.present[key], parsed))]


def environment_problems(parsed: Parsed) -> list[str]:
    """Config from the environment: the SDK reads `PULUMI_CONFIG_<KEY>` for a key the stack file
    lacks (`pulumi.runtime.config.get_config`), so the stack would not be what its file says."""
    read = {
        get_config_env_key(f"{namespace}:{name}"): f"{namespace}:{name}"
        for namespace in READ_KEYS
        for name in READ_KEYS[namespace]
    }
    problems = [
        f"{escaped(variable)} (environment): refused: Pulumi's SDK reads it"
        + (f" as {read[variable]}" if variable in read else " as config")
        + " when the stack file lacks the key; configuration comes from the stack file only: unset it"
        for variable in sorted(os.environ)
        if variable.startswith("PULUMI_CONFIG_") and variable not in CLI_VARIABLES
    ]
    problems += [
        f"{escaped(key)}: from the PULUMI_CONFIG environment variable, not the stack's config: unset it"
        for key in sorted(parsed.from_environment)
    ]
    return problems
