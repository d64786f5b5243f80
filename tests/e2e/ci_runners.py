"""Run the CI file committed in a workspace (a fresh clone) on this machine, with the credential
passed the way the platform passes it.

GitLab: gitlab-ci-local runs the job's scripts in a shell, with its rules, variables and
after_script. GitHub: no runner works offline, so the workflow's `run:` steps go through bash
in order, as the runner would, and the actions it uses are emulated; anything the emulation does
not implement fails the run instead of being skipped."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from .commands import NODE_BIN, run
from .stack import Deployment

JOB_TIMEOUT = 420.0


@dataclasses.dataclass(frozen=True)
class JobRun:
    returncode: int
    log: str
    """The job log as the platform shows it: the secret's value masked."""
    platform_key_files: tuple[Path, ...] = ()
    """Key files the platform itself puts in the workspace during the job."""


def masked(log: str, secret_value: str) -> str:
    # Both platforms mask the secret's exact value in job logs, nothing else.
    return log.replace(secret_value, "[MASKED]")


def run_gitlab_job(deployment: Deployment, workspace: Path, env: Mapping[str, str]) -> JobRun:
    # Predefined variables (CI_PROJECT_PATH...) come from this remote, as on GitLab.
    run(["git", "remote", "add", "gcl-origin", f"git@gitlab.com:{deployment.repository}.git"], workspace, env, timeout=30)
    result = run(
        [
            NODE_BIN / "gitlab-ci-local",
            "--file", deployment.ci_file,
            "--force-shell-executor",
            "--no-color",
            # With an `image:`, gitlab-ci-local sets CI_PROJECT_DIR=/builds/...; the shell runs here.
            "--variable", f"CI_PROJECT_DIR={workspace}",
            "--ignore-predefined-vars", "CI_PROJECT_DIR",
            # A masked, raw CI/CD variable: the value as the program sent it.
            "--variable", f"{deployment.secret_name}={deployment.secret_value}",
        ],
        cwd=workspace,
        env=env,
        timeout=JOB_TIMEOUT,
        check=False,
    )  # fmt: skip
    return JobRun(result.returncode, masked(result.stdout, deployment.secret_value))


# --- GitHub Actions ----------------------------------------------------------------------------

SECRET_EXPRESSION = re.compile(r"\$\{\{\s*secrets\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# `permissions` (the GITHUB_TOKEN's scopes) changes nothing here: no emulated step uses the token.
JOB_KEYS = {"name", "runs-on", "timeout-minutes", "permissions", "steps"}
STEP_KEYS = {"name", "if", "uses", "with", "run"}
# The only `if:` implemented: the run's ref against a literal.
IF_REF = re.compile(r"github\.ref == '(?P<ref>[^']*)'")
# What google-github-actions/auth exports: the credentials file path, and the key's project.
CREDENTIAL_VARIABLES = ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH")
PROJECT_VARIABLES = ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT", "GOOGLE_CLOUD_PROJECT")


class EmulationError(AssertionError):
    """The workflow uses something the emulation does not implement: extend it, never skip."""


class ActionError(Exception):
    """An emulated action failed the way the real one does (the step fails)."""


@dataclasses.dataclass
class GithubJob:
    """One job on the runner: the environment of its next step, and what runs at its end."""

    workspace: Path
    runner_temp: Path
    env: dict[str, str]
    secrets: dict[str, str]
    log: list[str] = dataclasses.field(default_factory=list[str])
    post_steps: list[Callable[[], None]] = dataclasses.field(default_factory=list[Callable[[], None]])
    key_files: list[Path] = dataclasses.field(default_factory=list[Path])

    def expand(self, value: Any) -> str:
        """An action input: only `${{ secrets.NAME }}` expressions are implemented; a missing
        secret is empty, as on GitHub."""
        text = SECRET_EXPRESSION.sub(lambda m: self.secrets.get(m["name"], ""), str(value))
        if "${{" in text:
            raise EmulationError(f"expression in {value!r}")
        return text


def checkout(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/checkout: the workspace already is a fresh clone of the pushed commit. Only
    `persist-credentials: false` is implemented: the clone holds no token in its git config."""
    if inputs.get("persist-credentials") != "false":
        raise EmulationError("actions/checkout without persist-credentials: false")


def setup_python(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/setup-python puts a fresh Python first on PATH (pip included); a virtualenv of this
    machine's python3 stands in, whatever `python-version` asks for."""
    python = job.runner_temp / "python"
    run(["python3", "-m", "venv", python], job.workspace, job.env, timeout=120)
    job.env["PATH"] = f"{python / 'bin'}{os.pathsep}{job.env['PATH']}"


def parse_credential(value: str) -> dict[str, Any]:
    """google-github-actions/actions-utils `parseCredential`: trimmed, base64-decoded (standard or
    URL-safe alphabet, padding optional) unless it starts with `{`, then JSON."""
    text = value.strip()
    if not text:
        raise ActionError("Missing service account key JSON (got empty value)")
    try:
        if not text.startswith("{"):
            padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
            text = base64.b64decode(padded).decode()
        return json.loads(text)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ActionError(f"Failed to parse service account key JSON credentials: {error}") from None


def google_auth(job: GithubJob, inputs: dict[str, str]) -> None:
    """google-github-actions/auth@v3 with `credentials_json`: writes the parsed key back as
    `JSON.stringify` does (minified, keys in order) to $GITHUB_WORKSPACE/gha-creds-<16 hex>.json
    (mode 0640, never overwriting), exports it as GOOGLE_APPLICATION_CREDENTIALS, and signs a
    token with it, which fails on a broken key. Its post step deletes the file."""
    credential = parse_credential(inputs.get("credentials_json", ""))
    if credential.get("type") != "service_account":
        raise ActionError("Provided credential is not a valid Google Service Account Key JSON")
    path = job.workspace / f"gha-creds-{secrets.token_hex(8)}.json"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640), "w") as key_file:
        key_file.write(json.dumps(credential, separators=(",", ":"), ensure_ascii=False))
    job.key_files.append(path)
    job.post_steps.append(lambda: path.unlink(missing_ok=True))
    job.env |= dict.fromkeys(CREDENTIAL_VARIABLES, str(path))
    if credential.get("project_id"):
        job.env |= dict.fromkeys(PROJECT_VARIABLES, credential["project_id"])
    try:
        serialization.load_pem_private_key(credential.get("private_key", "").encode(), password=None)
    except ValueError as error:
        raise ActionError(f"the key cannot sign a token: {error}") from None


# Action (without @ref) -> emulation and the inputs it implements.
ACTIONS: dict[str, tuple[Callable[[GithubJob, dict[str, str]], None], frozenset[str]]] = {
    "actions/checkout": (checkout, frozenset({"persist-credentials"})),
    "actions/setup-python": (setup_python, frozenset({"python-version"})),
    "google-github-actions/auth": (google_auth, frozenset({"credentials_json"})),
}


def action_input(value: Any) -> str:
    """An input as the action reads it: a string (YAML `false` arrives as "false")."""
    return str(value).lower() if isinstance(value, bool) else str(value)


# `owner/repo@ref`: the committed workflow pins a full commit SHA; a tag or branch is accepted too.
USES = re.compile(r"(?P<action>[\w.-]+/[\w.-]+)@(?P<ref>[0-9a-f]{40}|[\w./-]+)")


def run_action(job: GithubJob, uses: str, inputs: dict[str, Any]) -> None:
    if not (match := USES.fullmatch(uses)):
        raise EmulationError(f"uses: {uses!r} is not owner/repo@ref")
    action = match["action"]
    if action not in ACTIONS:
        raise EmulationError(f"action {uses}")
    emulation, known_inputs = ACTIONS[action]
    if unknown := set(inputs) - known_inputs:
        raise EmulationError(f"inputs {sorted(unknown)} of {uses}")
    emulation(job, {name: job.expand(action_input(value)) for name, value in inputs.items()})


def run_step(job: GithubJob, number: int, step: dict[str, Any], deadline: float) -> int:
    if unknown := set(step) - STEP_KEYS:
        raise EmulationError(f"step keys {sorted(unknown)}")
    if "if" in step:
        if not (condition := IF_REF.fullmatch(str(step["if"]).strip())):
            raise EmulationError(f"if: {step['if']!r}")
        if job.env["GITHUB_REF"] != condition["ref"]:
            job.log.append("(skipped: if is false)")
            return 0
    if "uses" in step:
        try:
            run_action(job, step["uses"], step.get("with", {}))
        except ActionError as error:
            job.log.append(f"Error: {step['uses']} failed with: {error}")
            return 1
        return 0
    if "${{" in step["run"]:
        raise EmulationError(f"expression in run: {step['run']!r}")
    # GitHub's default shell on Linux: `bash --noprofile --norc -eo pipefail {0}`.
    script = job.runner_temp / f"step-{number}.sh"
    script.write_text(step["run"])
    result = run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
        cwd=job.workspace,
        env=job.env,
        timeout=max(deadline - time.monotonic(), 1.0),
        check=False,
    )
    job.log.append(result.stdout)
    return result.returncode


def run_github_workflow(deployment: Deployment, workspace: Path, env: Mapping[str, str]) -> JobRun:
    workflow = yaml.safe_load((workspace / deployment.ci_file).read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    if deployment.branch not in triggers.get("push", {}).get("branches", []):
        raise AssertionError(f"the workflow does not run on a push to {deployment.branch}")
    runner_temp = workspace.with_name(f"{workspace.name}-runner-temp")
    runner_temp.mkdir()
    job = GithubJob(
        workspace=workspace,
        runner_temp=runner_temp,
        env={
            **env,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_REPOSITORY": deployment.repository,
            "GITHUB_REF": f"refs/heads/{deployment.branch}",
            "RUNNER_TEMP": str(runner_temp),
        },
        secrets={deployment.secret_name: deployment.secret_value},
    )
    (job_name, job_spec), *other_jobs = workflow["jobs"].items()
    if other_jobs or set(job_spec) - JOB_KEYS:
        raise EmulationError(f"jobs other than one job of {sorted(JOB_KEYS)}")
    deadline = time.monotonic() + min(JOB_TIMEOUT, 60.0 * job_spec.get("timeout-minutes", 360))
    returncode = 0
    try:
        for number, step in enumerate(job_spec["steps"], 1):
            job.log.append(f"## {job_name} step {number}: {step.get('name', step.get('uses', 'run'))}")
            returncode = run_step(job, number, step, deadline)
            if returncode:
                break  # later steps are skipped; post steps still run
    finally:
        for post_step in reversed(job.post_steps):
            post_step()
    return JobRun(returncode, masked("\n".join(job.log), deployment.secret_value), tuple(job.key_files))
