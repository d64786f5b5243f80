"""A GitHub Actions workflow run on this machine by nektos/act (tools/act), offline, without Docker.

act parses the workflow, evaluates its expressions (`if:`, `${{ }}`), orders the jobs by `needs`,
passes outputs, secrets, variables and the event, and runs `run:` steps and node actions on this
host. What act cannot reach is stood in for here, as the runner and GitHub would give it:

- the pinned actions: `--local-repository` maps each to its stand-in (stand_in.py), staged with
  launch.cjs; an action without a stand-in, or pinned to another commit, fails the run before
  act starts;
- the repository: a bare copy of the workspace's branches with the event's commit on the
  event's ref (`refs/heads/<branch>`, `refs/pull/<n>/merge`), which the checkout stand-in
  fetches as if from https://github.com/<owner>/<repo>;
- the tool cache: the Pythons the workflow's setup-python steps ask for (tool_cache.py);
- the artifact service: act's own (act-artifact-server), its address and token given to actions
  only, as GitHub's runner does (act itself would put them in every step's environment);
- fork pull requests: no secrets (GitHub gives a fork's run none).

act is isolated: its HOME (act writes ~/.config/act/actrc) and its cache (the jobs' workspaces,
the tool cache) in the run's directory; explicit secret, variable, env and input files (act would
read .secrets, .vars, .env and .input from its working directory); GITHUB_TOKEN always given
(without it act asks `gh auth token`). act copies its own environment into every job, so the
caller's `env` is the job's machine environment, and nothing else is added but
ACT_DISABLE_VERSION_CHECK (act would ask GitHub for its latest version).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import jwt
import yaml

from localcloud.actions import (
    checkout,
    download_artifact,
    google_auth,
    setup_python,
    stand_in,
    tool_cache,
    upload_artifact,
)
from localcloud.storage_emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
ACT_BUILD = ROOT / "tools" / "act" / "build.sh"
STAND_INS = {
    module.STAND_IN.action: module.STAND_IN
    for module in (checkout, setup_python, google_auth, upload_artifact, download_artifact)
}
USES = re.compile(r"(?P<action>[\w.-]+/[\w.-]+)@(?P<ref>\S+)")
SERVER_URL = "https://github.com"
RUN_TIMEOUT = 900.0
CREDENTIALS_FILE = re.compile(r'^Created credentials file at "(?P<path>[^"]+)"$', re.MULTILINE)


class RunnerError(RuntimeError):
    """The run could not start or act failed outside any job (the message says what)."""


@dataclasses.dataclass(frozen=True)
class Event:
    """What triggers the run: a push to `branch`, or a pull request into it."""

    name: str = "push"
    branch: str = "main"
    """The pushed branch, or the pull request's base."""
    pull_request: int = 0
    head_ref: str = ""
    """The pull request's branch."""
    head_repository: str = ""
    """The full name of the repository the pull request comes from: another than the run's is a fork."""

    @property
    def ref(self) -> str:
        return f"refs/pull/{self.pull_request}/merge" if self.name == "pull_request" else f"refs/heads/{self.branch}"

    def fork(self, repository: str) -> bool:
        return self.name == "pull_request" and (self.head_repository or repository) != repository

    def payload(self, repository: str, commit: str) -> dict[str, Any]:
        """The event's JSON (GITHUB_EVENT_PATH, `github.event`), with what the workflows read."""
        repo = {"full_name": repository, "default_branch": self.branch}
        if self.name != "pull_request":
            return {"ref": self.ref, "after": commit, "repository": repo}
        head = {"ref": self.head_ref, "repo": {"full_name": self.head_repository or repository}}
        base = {"ref": self.branch, "repo": repo}
        pull_request = {"number": self.pull_request, "head": head, "base": base}
        return {"action": "synchronize", "number": self.pull_request, "pull_request": pull_request, "repository": repo}


@dataclasses.dataclass(frozen=True)
class StepTime:
    job: str
    stage: str
    """Main, Pre or Post."""
    name: str
    uses: str
    """The action (owner/name), empty for a `run:` step."""
    seconds: float


@dataclasses.dataclass(frozen=True)
class WorkflowRun:
    returncode: int
    """act's exit status: 0 when every job that ran succeeded."""
    log: str
    """Each step's output under a `## <job> <stage>: <step>` heading; secrets masked (`***`) by act."""
    outcomes: Mapping[str, str]
    """Each job's result (success, failure), skipped for a job that never started, in the workflow's order."""
    workspaces: Mapping[str, Path]
    """Each job that checked out the repository: its workspace as the job left it."""
    job_workspaces: Path
    """Where act puts each job's workspace while it runs."""
    credential_files: tuple[Path, ...]
    """The credentials files google-github-actions/auth wrote in a job's workspace."""
    step_times: tuple[StepTime, ...]
    """Each step's wall time as act measured it, in the order act finished them."""


@dataclasses.dataclass(frozen=True)
class Runner:
    """One run's directory and what act is given."""

    directory: Path
    repository: str
    env: Mapping[str, str]

    @property
    def cache(self) -> Path:
        return self.directory / "act-cache"

    def path(self, name: str) -> Path:
        return self.directory / name


def act_binary() -> Path:
    """act, built from Go modules by tools/act/build.sh (cached outside the repository)."""
    built = subprocess.run([ACT_BUILD], capture_output=True, text=True, timeout=900, check=False)
    if built.returncode:
        raise RunnerError(f"tools/act/build.sh failed:\n{built.stderr}")
    return Path(built.stdout.strip().splitlines()[-1]) / "act"


def job_steps(workflow: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each job's steps, as the workflow writes them."""
    jobs = cast(dict[str, dict[str, Any]], workflow.get("jobs") or {})
    return {job: cast(list[dict[str, Any]], spec.get("steps") or []) for job, spec in jobs.items()}


def uses(workflow: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(action, ref) of every step that uses a remote action."""
    for steps in job_steps(workflow).values():
        for step in steps:
            if isinstance(used := step.get("uses"), str) and not used.startswith("./"):
                if not (match := USES.fullmatch(used)):
                    raise RunnerError(f"uses: {used!r}: the runner runs owner/name@ref actions and local ones")
                yield match["action"], match["ref"]


def stand_ins(workflow: Mapping[str, Any]) -> dict[str, stand_in.StandIn]:
    """The stand-in of each action the workflow uses, by `owner/name@ref`; RunnerError for an action
    without one, or pinned to another commit than the one it stands for."""
    found: dict[str, stand_in.StandIn] = {}
    for action, ref in sorted(set(uses(workflow))):
        if (standing := STAND_INS.get(action)) is None:
            raise RunnerError(f"{action}@{ref}: no stand-in in localcloud/actions (the runner is offline)")
        if ref != standing.commit:
            raise RunnerError(
                f"{action}@{ref}: the stand-in is for {standing.commit} ({standing.release}); "
                "check the new commit's action.yml and behaviour, then update localcloud/actions"
            )
        found[f"{action}@{ref}"] = standing
    return found


def stage_actions(runner: Runner, used: Mapping[str, stand_in.StandIn], runtime: Mapping[str, str]) -> list[str]:
    """Each stand-in staged as a directory act runs: the `--local-repository` arguments."""
    arguments: list[str] = []
    for pinned, standing in used.items():
        staged = runner.path("actions") / standing.action
        staged.mkdir(parents=True)
        shutil.copy(standing.directory / "action.yml", staged)
        shutil.copy(stand_in.HERE / "launch.cjs", staged)
        config = {"python": sys.executable, "root": str(ROOT), "module": standing.module, "env": dict(runtime)}
        (staged / "stand-in.json").write_text(json.dumps(config))
        arguments += ["--local-repository", f"{pinned}={staged}"]
    return arguments


def python_versions(workflow: Mapping[str, Any]) -> set[str]:
    """The `python-version` of every setup-python step (a literal: the tool cache is laid out first)."""
    return {
        str(cast(dict[str, Any], step.get("with") or {}).get("python-version", ""))
        for steps in job_steps(workflow).values()
        for step in steps
        if str(step.get("uses", "")).startswith("actions/setup-python@")
    }


def git(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(["git", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode:
        raise RunnerError(f"git {args[0]} in {cwd}: {result.stderr}")
    return result.stdout


def publish(runner: Runner, workspace: Path, event: Event) -> Path:
    """The platform's copy of the repository: the workspace's branches (those of its `origin`
    over its local ones), its tags, and its commit on the event's ref."""
    server = runner.path("github")
    bare = server / runner.repository
    git("init", "--quiet", "--bare", bare, cwd=workspace)
    branches: dict[str, str] = {}
    for prefix in ("refs/heads/", "refs/remotes/origin/"):
        for ref in git("for-each-ref", "--format=%(refname)", prefix, cwd=workspace).split():
            if ref != "refs/remotes/origin/HEAD":
                branches[f"refs/heads/{ref.removeprefix(prefix)}"] = ref
    branches[event.ref] = "HEAD"
    refspecs = [f"+{source}:{target}" for target, source in branches.items()]
    git("push", "--quiet", bare, "+refs/tags/*:refs/tags/*", *refspecs, cwd=workspace)
    return server


def start_artifact_service(runner: Runner, act: Path) -> tuple[subprocess.Popen[bytes], str]:
    """act's artifact server in a process of its own, on a free loopback port: the process and its URL."""
    storage = runner.path("artifacts")
    storage.mkdir()
    for _ in range(5):
        port = free_port()
        command = [act.with_name("act-artifact-server"), "-path", storage, "-addr", "127.0.0.1", "-port", str(port)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server, f"http://127.0.0.1:{port}/"
            except OSError:
                time.sleep(0.05)
        server.kill()
        server.wait()
    raise RunnerError("act-artifact-server did not start")


def runtime_variables(service_url: str, run_id: str) -> dict[str, str]:
    """What GitHub's runner gives actions only; the token as act makes it (`pkg/common/auth.go`):
    the run and job backend ids in its `scp` claim, which act's server does not check."""
    claims = {"scp": f"Actions.Results:{run_id}:{run_id}", "exp": int(time.time()) + 86400}
    token = jwt.encode(claims, secrets.token_hex(32), algorithm="HS256")
    return {"ACTIONS_RUNTIME_URL": service_url, "ACTIONS_RESULTS_URL": service_url, "ACTIONS_RUNTIME_TOKEN": token}


def write_inputs(runner: Runner, secrets_: Mapping[str, str], variables: Mapping[str, str], payload: Any) -> list[str]:
    """act's secret, variable, env and input files, and the event: never the working directory's."""
    runner.path("secrets.yaml").write_text(yaml.safe_dump(dict(secrets_)))
    runner.path("vars.yaml").write_text(yaml.safe_dump(dict(variables)))
    runner.path("empty").write_text("")
    runner.path("event.json").write_text(json.dumps(payload))
    return [
        *("--secret-file", str(runner.path("secrets.yaml")), "--var-file", str(runner.path("vars.yaml"))),
        *("--env-file", str(runner.path("empty")), "--input-file", str(runner.path("empty"))),
        *("--eventpath", str(runner.path("event.json"))),
    ]


@dataclasses.dataclass
class ActLog:
    """act's JSON log (`--json`) read: each step's output under a heading, each job's result,
    each step's time."""

    workflow: Mapping[str, Any]
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict[str, str])
    steps: dict[tuple[str, str, str], list[str]] = dataclasses.field(default_factory=dict[tuple[str, str, str], list[str]])
    times: list[StepTime] = dataclasses.field(default_factory=list[StepTime])

    def read(self, output: str) -> ActLog:
        self.outcomes = dict.fromkeys(job_steps(self.workflow), "skipped")
        for line in output.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.add(entry)
        return self

    def add(self, entry: dict[str, Any]) -> None:
        job, stage, step, message = (str(entry.get(key, "")) for key in ("jobID", "stage", "step", "msg"))
        if "jobResult" in entry and job in self.outcomes:
            self.outcomes[job] = str(entry["jobResult"])
        if entry.get("raw_output"):
            self.steps.setdefault((job, stage, step), []).append(message)
        elif entry.get("level") == "error" or "::error::" in message:
            self.steps.setdefault((job, stage, step), []).append(message.strip() + "\n")
        if "executionTime" in entry and stage:
            self.times.append(StepTime(job, stage, step, self.uses(job, entry.get("stepID")), entry["executionTime"] / 1e9))

    def uses(self, job: str, step_id: Any) -> str:
        """The action a step uses, found by its `id:` or, without one, its position (act's id)."""
        steps = job_steps(self.workflow).get(job, [])
        key = str(cast(list[Any], step_id)[0]) if isinstance(step_id, list) and step_id else ""
        by_id = {str(step.get("id", position)): step for position, step in enumerate(steps)}
        return str(by_id.get(key, {}).get("uses", "")).split("@")[0]

    @property
    def text(self) -> str:
        return "".join(f"## {job} {stage}: {step}\n" + "".join(lines) for (job, stage, step), lines in self.steps.items())


def labels(workflow: Mapping[str, Any]) -> set[str]:
    """The `runs-on` labels of the workflow's jobs: each runs on this host (act `-self-hosted`);
    a label act is not told of would skip its job."""
    found: set[str] = set()
    for spec in cast(dict[str, dict[str, Any]], workflow.get("jobs") or {}).values():
        runs_on = spec.get("runs-on", [])
        found.update([runs_on] if isinstance(runs_on, str) else map(str, cast(list[Any], runs_on)))
    return found


def act_command(
    act: Path, runner: Runner, workspace: Path, workflow_file: Path, event: Event, workflow: Mapping[str, Any]
) -> list[str]:
    return [
        str(act), event.name, "--json",
        "--directory", str(workspace), "--workflows", str(workspace / workflow_file), "--no-recurse",
        *(argument for label in sorted(labels(workflow)) for argument in ("--platform", f"{label}=-self-hosted")),
        "--action-offline-mode", "--no-cache-server", "--no-skip-checkout",
        "--action-cache-path", str(runner.cache),
        # act copies its environment into the jobs: their HOME (and XDG_CONFIG_HOME) is the
        # caller's, not act's own, where act keeps its actrc.
        "--env", f"HOME={runner.env['HOME']}",
        *(("--env", f"XDG_CONFIG_HOME={config}") if (config := runner.env.get("XDG_CONFIG_HOME")) else ()),
    ]  # fmt: skip


def run_workflow(
    workspace: Path,
    workflow_file: Path,
    repository: str,
    env: Mapping[str, str],
    *,
    directory: Path,
    event: Event | None = None,
    secrets_: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    github_token: str | None = None,
    api_url: str | None = None,
    id_token_request: Mapping[str, str] | None = None,
) -> WorkflowRun:
    """The workflow `workflow_file` of `workspace` (a clone at the commit to run) for `event`, as
    GitHub runs it for `repository` (owner/name); `directory` (created) holds the run's files."""
    event = event or Event()
    workflow: dict[str, Any] = yaml.safe_load((workspace / workflow_file).read_text())
    used = stand_ins(workflow)
    directory.mkdir(parents=True)
    runner = Runner(directory, repository, env)
    act = act_binary()
    run_id = str(secrets.randbelow(9 * 10**9) + 10**9)
    service, service_url = start_artifact_service(runner, act)
    try:
        runtime = runtime_variables(service_url, run_id) | {
            stand_in.GITHUB_GIT: str(publish(runner, workspace, event)),
            stand_in.KEEP_WORKSPACES: str(runner.path("workspaces")),
        }
        for version in python_versions(workflow):
            tool_cache.provide(runner.cache / "tool_cache", version, env["PATH"])
        token = github_token or f"ghs_{secrets.token_urlsafe(27)}"
        run_secrets = {} if event.fork(repository) else dict(secrets_ or {})
        commit = git("rev-parse", "HEAD", cwd=workspace).strip()
        command = act_command(act, runner, workspace, workflow_file, event, workflow)
        command += stage_actions(runner, used, runtime)
        command += write_inputs(runner, run_secrets | {"GITHUB_TOKEN": token}, variables or {}, event.payload(repository, commit))
        command += ["--env", f"GITHUB_REPOSITORY={repository}", "--env", f"GITHUB_RUN_ID={run_id}"]
        command += ["--env", f"GITHUB_API_URL={api_url}"] if api_url else []
        # ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN (localcloud/oidc_issuer.py), which GitHub gives a job with
        # `id-token: write` (act ignores `permissions`: the caller passes them for such a job only)
        command += [arg for name, value in (id_token_request or {}).items() for arg in ("--env", f"{name}={value}")]
        return execute(runner, command, workflow)
    finally:
        runner.path("secrets.yaml").unlink(missing_ok=True)
        service.terminate()
        service.wait(timeout=10)


def execute(runner: Runner, command: list[str], workflow: Mapping[str, Any]) -> WorkflowRun:
    act_home = runner.path("act-home")
    act_home.mkdir()
    act_env = {k: v for k, v in runner.env.items() if k != "XDG_CONFIG_HOME"}
    act_env |= {"HOME": str(act_home), "ACT_DISABLE_VERSION_CHECK": "1"}
    # In a session of its own: a run over time is stopped with every process of its jobs.
    process = subprocess.Popen(
        command, cwd=runner.directory, env=act_env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, errors = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, errors = process.communicate()
        raise RunnerError(f"act ran over {RUN_TIMEOUT} s:\n{ActLog(workflow).read(output).text}") from None
    log = ActLog(workflow).read(output)
    if process.returncode and "failure" not in log.outcomes.values():
        raise RunnerError(f"act exited {process.returncode} with no job failed:\n{errors}\n{log.text}")
    kept = runner.path("workspaces")
    return WorkflowRun(
        returncode=process.returncode,
        log=log.text,
        outcomes=log.outcomes,
        workspaces={job: kept / job for job in log.outcomes if (kept / job).is_dir()},
        job_workspaces=runner.cache,
        credential_files=tuple(Path(match["path"]) for match in CREDENTIALS_FILE.finditer(log.text)),
        step_times=tuple(log.times),
    )
