"""Test helpers, once: stack configs, settings, and program evaluation against recording mocks."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pulumi_gcp as gcp
import pulumi_github as github
import pulumi_gitlab as gitlab
import yaml
from pulumi.runtime import rpc

from localcloud.kit.stack import committed_file as committed_file
from localcloud.kit.variants import EXAMPLE_REPOSITORIES
from localcloud.kit.variants import make_settings as make_settings
from mlops_ci.ci.files import job_script_path, render_job_script
from mlops_ci.offline.runtime import Evaluation, OfflineMocks, evaluate, reveal, type_token
from mlops_ci.settings.loader import Settings

# Type tokens, from the SDK classes the program registers.
BUCKET = type_token(gcp.storage.Bucket)
ACCOUNT = type_token(gcp.serviceaccount.Account)
GRANT = type_token(gcp.storage.BucketIAMMember)
KEY = type_token(gcp.serviceaccount.Key)
SERVICE = type_token(gcp.projects.Service)
GITHUB_SECRET = type_token(github.ActionsSecret)
GITHUB_VARIABLE = type_token(github.ActionsVariable)
GITHUB_FILE = type_token(github.RepositoryFile)
GITLAB_VARIABLE = type_token(gitlab.ProjectVariable)
GITLAB_FILE = type_token(gitlab.RepositoryFile)
GITLAB_TOKEN = type_token(gitlab.ProjectAccessToken)
POOL_PROVIDER = type_token(gcp.iam.WorkloadIdentityPoolProvider)
POOL = type_token(gcp.iam.WorkloadIdentityPool)
ACCOUNT_BINDING = type_token(gcp.serviceaccount.IAMMember)

# The key mode, set: most tests are about what every mode shares, and the key mode has the most of it.
# Keyless tests set auth workload-identity (direct unless keylessMode says impersonation).
BASE_CONFIG = {
    "github": {
        "gcp:project": "acme-ml-test",
        "mlops-ci:platform": "github",
        "mlops-ci:repository": EXAMPLE_REPOSITORIES["github"],
        "mlops-ci:auth": "key",
    },
    "gitlab": {
        "gcp:project": "acme-ml-test",
        "mlops-ci:platform": "gitlab",
        "mlops-ci:repository": EXAMPLE_REPOSITORIES["gitlab"],
        "mlops-ci:auth": "key",
    },
}


def config_for(base: str, **overrides: str | None) -> dict[str, str]:
    """A valid stack config for platform `base`; `overrides` use short names (`branch`) for
    `mlops-ci:` keys and full names (`gcp:project`) otherwise; None removes a key."""
    config = dict(BASE_CONFIG[base])
    for key, value in overrides.items():
        full = key.replace("__", ":") if "__" in key else f"mlops-ci:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    return config


class CountingMocks(OfflineMocks):
    """Offline mocks that remember every resource they were asked to create."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.created.append(f"{args.typ}::{args.name}")
        return super().new_resource(args)


def run(
    base: str = "github",
    settings: Mapping[str, str | None] | None = None,
    *,
    stack: str = "team-a",
    secret_keys: tuple[str, ...] = (),
    mocks: Any = None,
    **overrides: str | None,
) -> Evaluation:
    """Evaluate the real program for a valid `base` platform config with `settings` and `overrides`
    (both named as in `config_for`)."""
    return evaluate(stack, config_for(base, **(settings or {}), **overrides), secret_keys, mocks=mocks)


def write_job_script(directory: Path, settings: Settings) -> Path:
    """The job script the stack commits for `settings`, where the CI file calls it from `directory`."""
    path = directory / job_script_path(settings.stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_job_script(settings))
    return path


def key_material(evaluation: Evaluation) -> list[str]:
    """Every form the key takes: the base64 file, its private key and key id fields (none keyless);
    and the report's GitLab token (`mlops-ci:report`)."""
    material: list[str] = []
    for key in evaluation.find(KEY):
        key_file = decode_key_file(key.outputs["privateKey"])
        material += [key.outputs["privateKey"], key_file["private_key"], key_file["private_key_id"]]
    return material + [token.outputs["token"] for token in evaluation.find(GITLAB_TOKEN)]


def secret_paths(value: Any, path: str = "") -> list[tuple[str, bool, Any]]:
    """(path, is_secret, plain value) for every leaf of a wire value."""
    if rpc.is_rpc_secret(value):
        return [(path, True, reveal(value))]
    if isinstance(value, dict):
        return [leaf for k, v in cast(dict[str, Any], value).items() for leaf in secret_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(cast(list[Any], value)) for leaf in secret_paths(v, f"{path}[{i}]")]
    return [(path, False, value)]


def decode_key_file(private_key_b64: str) -> dict[str, str]:
    return json.loads(base64.b64decode(private_key_b64))


def reproduce_job_command(content: str, platform: str, needle: str) -> str:
    """The one command of the committed CI file's `reproduce` job (a GitHub `run:`, a GitLab
    before_script or script line) that holds `needle`."""
    document = yaml.safe_load(content)
    if platform == "github":
        commands = [str(step.get("run", "")) for step in document["jobs"]["reproduce"]["steps"]]
    else:
        commands = document["reproduce"]["before_script"] + document["reproduce"]["script"]
    [command] = [command for command in commands if needle in command]
    return command
