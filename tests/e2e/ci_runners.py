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
import importlib.resources
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import virtualenv
import yaml
from cryptography.hazmat.primitives import serialization

from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

from .commands import NODE_BIN, run
from .review_apis import ReviewApi
from .stack import Deployment

JOB_TIMEOUT = 420.0
# The wheels `python3 -m venv` installs (ensurepip's), and the cache virtualenv copies them from.
BUNDLED_WHEELS = Path(str(importlib.resources.files("ensurepip") / "_bundled"))
BUNDLED_SEEDS = dict(wheel.name.split("-")[:2] for wheel in sorted(BUNDLED_WHEELS.glob("*.whl")))
VIRTUALENV_APP_DATA = Path(tempfile.gettempdir()) / f"mlops-ci-e2e-virtualenv-{os.getuid()}"


@dataclasses.dataclass(frozen=True)
class JobRun:
    returncode: int
    log: str
    """The job log as the platform shows it: the secret's value masked."""
    platform_key_files: tuple[Path, ...] = ()
    """Key files the platform itself puts in the workspace during the job."""
    outcomes: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """GitHub: each job's outcome (success, failure, skipped), in the workflow's order."""


def masked(log: str, secret_value: str) -> str:
    # Both platforms mask the secret's exact value in job logs, nothing else.
    return log.replace(secret_value, "[MASKED]")


@dataclasses.dataclass(frozen=True)
class MergeRequest:
    """A merge-request pipeline: the request, its target branch, and GitLab's API for its notes."""

    iid: int
    source_branch: str
    target_branch: str
    api: ReviewApi
    project_id: str
    """CI_PROJECT_ID: the API names the project by its number."""


def run_gitlab_job(
    deployment: Deployment, workspace: Path, env: Mapping[str, str], merge_request: MergeRequest | None = None
) -> JobRun:
    """The pipeline of a push to the branch, or of `merge_request`: every job its rules let run."""
    # Predefined variables (CI_PROJECT_PATH...) come from this remote, as on GitLab.
    run(["git", "remote", "add", "gcl-origin", f"git@gitlab.com:{deployment.repository}.git"], workspace, env, timeout=30)
    # CI/CD variables, masked and raw: the values as the program sent them.
    variables = {deployment.secret_name: deployment.secret_value}
    if deployment.report_token:
        variables[REPORT_TOKEN_VARIABLE] = deployment.report_token
    # With an `image:`, gitlab-ci-local sets CI_PROJECT_DIR=/builds/...; the shell runs here.
    predefined = {"CI_PROJECT_DIR": str(workspace)}
    if merge_request:
        predefined |= {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(merge_request.iid),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": merge_request.source_branch,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": merge_request.target_branch,
            "CI_API_V4_URL": merge_request.api.api_url,
            "CI_PROJECT_ID": merge_request.project_id,
        }
    result = run(
        [
            NODE_BIN / "gitlab-ci-local",
            "--file", deployment.ci_file,
            "--force-shell-executor",
            "--no-color",
            *(arg for name, value in (predefined | variables).items() for arg in ("--variable", f"{name}={value}")),
            "--ignore-predefined-vars", ",".join(predefined),
        ],
        cwd=workspace,
        env=env,
        timeout=JOB_TIMEOUT,
        check=False,
    )  # fmt: skip
    log = result.stdout
    for value in variables.values():
        log = masked(log, value)
    return JobRun(result.returncode, log)


# --- GitHub Actions ----------------------------------------------------------------------------

# `${{ <expression> }}`, evaluated by GitHub's own expression library (expressions.mjs).
EXPRESSION = re.compile(r"\$\{\{\s*(?P<expression>.*?)\s*\}\}", re.DOTALL)
EXPRESSIONS_SCRIPT = Path(__file__).with_name("expressions.mjs")
JOB_KEYS = {"name", "runs-on", "timeout-minutes", "permissions", "steps", "if", "needs"}
STEP_KEYS = {"name", "if", "uses", "with", "run", "env"}
# What google-github-actions/auth exports: the credentials file path, and the key's project.
CREDENTIAL_VARIABLES = ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH")
PROJECT_VARIABLES = ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT", "GOOGLE_CLOUD_PROJECT")
GITHUB_SERVER_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"


class EmulationError(AssertionError):
    """The workflow uses something the emulation does not implement: extend it, never skip."""


class ActionError(Exception):
    """An emulated action failed the way the real one does (the step fails)."""


def evaluate_expressions(expressions: list[str], contexts: Mapping[str, Any]) -> list[tuple[bool, str]]:
    """Each expression's truth and text, as the runner evaluates them."""
    request = json.dumps({"contexts": contexts, "expressions": expressions})
    result = subprocess.run(["node", EXPRESSIONS_SCRIPT], input=request, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode:
        raise EmulationError(f"expressions {expressions}: {result.stderr}")
    return [(answer["truthy"], answer["text"]) for answer in json.loads(result.stdout)]


@dataclasses.dataclass(frozen=True)
class GithubEvent:
    """What triggers the run: a push to the deployment's branch, or a pull request to it."""

    name: str = "push"
    pull_request: int = 0
    """The pull request's number (event `pull_request`)."""
    head_repository: str = ""
    """Full name of the repository the pull request comes from; another than the deployment's: a fork."""
    api: ReviewApi | None = None
    """GitHub's REST API at GITHUB_API_URL, which issues each job's GITHUB_TOKEN; None: unreachable."""


@dataclasses.dataclass
class GithubJob:
    """One job on its own runner: the environment of its next step, and what runs at its end."""

    name: str
    workspace: Path
    runner_temp: Path
    artifacts: Path
    """The run's artifact storage, shared by its jobs."""
    env: dict[str, str]
    contexts: dict[str, Any]
    """`github` (token included) and `secrets`, as expressions see them."""
    first: bool
    """The first job runs in the checked-out clone; a later job starts on an empty runner."""
    log: list[str] = dataclasses.field(default_factory=list[str])
    post_steps: list[Callable[[], None]] = dataclasses.field(default_factory=list[Callable[[], None]])
    key_files: list[Path] = dataclasses.field(default_factory=list[Path])

    def expand(self, value: Any) -> str:
        """A value with its `${{ }}` expressions replaced by their text (a missing secret is empty)."""
        text = str(value)
        found = [match["expression"] for match in EXPRESSION.finditer(text)]
        if not found:
            return text
        answers = iter(evaluate_expressions(found, self.contexts))
        return EXPRESSION.sub(lambda _: next(answers)[1], text)

    def condition(self, value: Any) -> bool:
        """A step's `if:`."""
        return holds(value, self.contexts)


def holds(value: Any, contexts: dict[str, Any]) -> bool:
    """An `if:`, written with or without `${{ }}`, against `contexts`."""
    text = str(value).strip()
    expression = match["expression"] if (match := EXPRESSION.fullmatch(text)) else text
    return evaluate_expressions([expression], contexts)[0][0]


def checkout(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/checkout: the first job's workspace already is a fresh, complete clone of the
    commit (any fetch-depth is at least that). Only `persist-credentials: false` is implemented:
    the clone holds no token in its git config."""
    if not job.first:
        raise EmulationError("actions/checkout in a later job")
    if inputs.get("persist-credentials") != "false":
        raise EmulationError("actions/checkout without persist-credentials: false")


def setup_python(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/setup-python puts the runner image's tool-cache Python first on PATH: already
    installed, with pip and, before 3.12, setuptools, in a second or so. Stood in for by a
    virtualenv of this machine's python3 (whatever `python-version` asks for) seeded with the pip
    and setuptools that its ensurepip bundles, copied from virtualenv's cache in well under a
    second: `python3 -m venv` would spend ~5 s installing pip into every job, a cost no hosted
    runner has, the same for every job it would hide the jobs' own differences behind."""
    python = job.runner_temp / "python"
    seeds = [f"--{name}={version}" for name, version in BUNDLED_SEEDS.items()]
    if "setuptools" not in BUNDLED_SEEDS:
        seeds.append("--no-setuptools")
    virtualenv.cli_run(
        [
            "--quiet", "--no-download", "--no-periodic-update", "--no-vcs-ignore", "--no-venv-redirect",
            f"--app-data={VIRTUALENV_APP_DATA}", f"--extra-search-dir={BUNDLED_WHEELS}", *seeds,
            f"--python={shutil.which('python3', path=job.env['PATH'])}", str(python),
        ],
        setup_logging=False,
    )  # fmt: skip
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


def upload_artifact(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/upload-artifact: the directory `path` (of the workspace) kept under `name` for the
    run's later jobs; nothing there fails the step with `if-no-files-found: error`."""
    source = job.workspace / inputs["path"]
    if not source.is_dir() or not any(source.iterdir()):
        if inputs.get("if-no-files-found", "warn") == "error":
            raise ActionError(f"No files were found with the provided path: {inputs['path']}. No artifacts will be uploaded.")
        return
    shutil.copytree(source, job.artifacts / inputs["name"])


def download_artifact(job: GithubJob, inputs: dict[str, str]) -> None:
    """actions/download-artifact: the run's artifact `name` into `path` of the workspace."""
    stored = job.artifacts / inputs["name"]
    if not stored.is_dir():
        raise ActionError(f"Artifact not found for name: {inputs['name']}")
    shutil.copytree(stored, job.workspace / inputs.get("path", "."), dirs_exist_ok=True)


# Action (without @ref) -> emulation and the inputs it implements.
ACTIONS: dict[str, tuple[Callable[[GithubJob, dict[str, str]], None], frozenset[str]]] = {
    "actions/checkout": (checkout, frozenset({"persist-credentials", "fetch-depth"})),
    "actions/setup-python": (setup_python, frozenset({"python-version"})),
    "google-github-actions/auth": (google_auth, frozenset({"credentials_json"})),
    "actions/upload-artifact": (upload_artifact, frozenset({"name", "path", "if-no-files-found"})),
    "actions/download-artifact": (download_artifact, frozenset({"name", "path"})),
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
    if "if" in step and not job.condition(step["if"]):
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
        env=job.env | {name: job.expand(value) for name, value in step.get("env", {}).items()},
        timeout=max(deadline - time.monotonic(), 1.0),
        check=False,
    )
    job.log.append(result.stdout)
    return result.returncode


def run_job(job: GithubJob, spec: dict[str, Any]) -> int:
    deadline = time.monotonic() + min(JOB_TIMEOUT, 60.0 * spec.get("timeout-minutes", 360))
    try:
        for number, step in enumerate(spec["steps"], 1):
            job.log.append(f"## {job.name} step {number}: {step.get('name', step.get('uses', 'run'))}")
            if returncode := run_step(job, number, step, deadline):
                return returncode  # later steps are skipped; post steps still run
        return 0
    finally:
        for post_step in reversed(job.post_steps):
            post_step()


def github_context(deployment: Deployment, event: GithubEvent) -> dict[str, Any]:
    context: dict[str, Any] = {
        "event_name": event.name,
        "repository": deployment.repository,
        "server_url": GITHUB_SERVER_URL,
        "api_url": event.api.api_url if event.api else GITHUB_API_URL,
        "run_id": str(secrets.randbelow(10**10)),
        "workflow": "Reproduce the ML experiment",
    }
    if event.name == "pull_request":
        head = {"repo": {"full_name": event.head_repository or deployment.repository}}
        pull_request = {"number": event.pull_request, "head": head, "base": {"ref": deployment.branch}}
        return context | {"ref": f"refs/pull/{event.pull_request}/merge", "event": {"pull_request": pull_request}}
    return context | {"ref": f"refs/heads/{deployment.branch}", "event": {}}


def run_github_workflow(
    deployment: Deployment, workspace: Path, env: Mapping[str, str], event: GithubEvent | None = None
) -> JobRun:
    """The workflow's jobs in order, each on its own runner (the first in `workspace`), a job
    skipped when its `if:` is false or a job it needs did not succeed."""
    event = event or GithubEvent()
    workflow = yaml.safe_load((workspace / deployment.ci_file).read_text())
    triggers: dict[str, Any] = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    trigger: dict[str, list[str]] = triggers.get(event.name) or {}
    if deployment.branch not in trigger.get("branches", []):
        raise AssertionError(f"the workflow does not run on {event.name} to {deployment.branch}")
    github = github_context(deployment, event)
    fork = event.name == "pull_request" and github["event"]["pull_request"]["head"]["repo"]["full_name"] != deployment.repository
    # GitHub gives a run from a fork no secret.
    run_secrets = {} if fork else {deployment.secret_name: deployment.secret_value}
    artifacts = workspace.with_name(f"{workspace.name}-artifacts")
    artifacts.mkdir()
    log: list[str] = []
    outcomes: dict[str, str] = {}
    key_files: list[Path] = []
    for job_name, spec in workflow["jobs"].items():
        if unknown := set(spec) - JOB_KEYS:
            raise EmulationError(f"job keys {sorted(unknown)}")
        needs = spec.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        # Without a status function, `if:` holds only when every needed job succeeded. GitHub decides
        # before the job gets a runner or a token: a job's `if:` sees `github`, never `secrets`.
        if any(outcomes.get(need) != "success" for need in needs) or ("if" in spec and not holds(spec["if"], {"github": github})):
            outcomes[job_name] = "skipped"
            log.append(f"## {job_name}: skipped")
            continue
        first = not outcomes
        job_workspace = workspace if first else workspace.with_name(f"{workspace.name}-{job_name}")
        job_workspace.mkdir(exist_ok=True)
        runner_temp = job_workspace.with_name(f"{job_workspace.name}-runner-temp")
        runner_temp.mkdir()
        permissions = spec.get("permissions", workflow.get("permissions", {}))
        token = event.api.issue_github_token(permissions) if event.api else f"ghs_{secrets.token_urlsafe(27)}"
        job = GithubJob(
            name=job_name,
            workspace=job_workspace,
            runner_temp=runner_temp,
            artifacts=artifacts,
            env={
                **env,
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(job_workspace),
                "GITHUB_REPOSITORY": deployment.repository,
                "GITHUB_REF": github["ref"],
                "GITHUB_EVENT_NAME": event.name,
                "GITHUB_SERVER_URL": github["server_url"],
                "GITHUB_API_URL": github["api_url"],
                "GITHUB_RUN_ID": github["run_id"],
                "RUNNER_TEMP": str(runner_temp),
            },
            contexts={"github": github | {"token": token}, "secrets": run_secrets},
            first=first,
        )
        returncode = run_job(job, spec)
        outcomes[job_name] = "failure" if returncode else "success"
        log += job.log
        key_files += job.key_files
    returncode = 1 if "failure" in outcomes.values() else 0
    return JobRun(returncode, masked("\n".join(log), deployment.secret_value), tuple(key_files), outcomes)
