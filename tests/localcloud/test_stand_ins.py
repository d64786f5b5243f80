"""The stand-in actions (localcloud/actions), each run as launch.cjs runs it (`python -m <module>`
with the runner's files and the step's INPUT_ variables), without act: the inputs each accepts
and refuses, and what it does with them, as the real action at its pinned commit does."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud.actions import stand_in
from localcloud.actions.runner import ROOT, STAND_INS
from localcloud.actions.stand_in import StandIn, input_variable

# Inputs each real action declares that its stand-in does not implement, set to a non-default value.
UNIMPLEMENTED = {
    "actions/checkout": ("submodules", "true"),
    "actions/setup-python": ("cache", "pip"),
    "google-github-actions/auth": ("token_format", "access_token"),
    "actions/upload-artifact": ("retention-days", "3"),
    "actions/download-artifact": ("pattern", "report-*"),
}


@dataclasses.dataclass
class Step:
    """One step's runner files and environment, in `root`."""

    root: Path

    def __post_init__(self) -> None:
        for name in ("workspace", "temp", "tool-cache"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        for name in ("env", "output", "state", "path"):
            (self.root / name).touch()

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def env(self, action: StandIn, inputs: Mapping[str, str], state: Mapping[str, str]) -> dict[str, str]:
        """What act gives a node action's process: every declared input (default unless given),
        every `with:` key, the file commands, the saved state in a post step."""
        declared = {input_variable(name): default for name, default in action.declared().items() if "${{" not in default}
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root),
            "GITHUB_ENV": str(self.root / "env"),
            "GITHUB_OUTPUT": str(self.root / "output"),
            "GITHUB_STATE": str(self.root / "state"),
            "GITHUB_PATH": str(self.root / "path"),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.root / "temp"),
            "RUNNER_TOOL_CACHE": str(self.root / "tool-cache"),
            "GITHUB_REPOSITORY": "acme/vision",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_JOB": "reproduce",
            **declared,
            **{input_variable(name): value for name, value in inputs.items()},
            **{f"STATE_{name}": value for name, value in state.items()},
        }

    def run(
        self, action: StandIn, inputs: Mapping[str, str] | None = None, post: bool = False, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        state = self.commands("state") if post else {}
        return subprocess.run(
            [sys.executable, "-P", "-s", "-m", action.module],
            env=self.env(action, inputs or {}, state) | dict(env or {}) | {"PYTHONPATH": str(ROOT)},
            cwd=self.workspace,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def commands(self, name: str) -> dict[str, str]:
        """The `name<<delimiter` file commands of one file (env, output, state), by name."""
        lines = (self.root / name).read_text().splitlines()
        found: dict[str, str] = {}
        while lines:
            key, delimiter = lines.pop(0).split("<<")
            end = lines.index(delimiter)
            found[key], lines = "\n".join(lines[:end]), lines[end + 1 :]
        return found


@pytest.fixture
def step(tmp_path: Path) -> Step:
    return Step(tmp_path)


def test_each_stand_in_names_its_real_action_and_implements_what_it_cannot_compare() -> None:
    for action, found in STAND_INS.items():
        spec = yaml.safe_load((found.directory / "action.yml").read_text())
        assert found.action == action
        assert found.commit in (found.directory / "action.yml").read_text(), f"{action}: action.yml names another commit"
        assert spec["runs"]["main"] == "launch.cjs"
        declared = found.declared()
        assert found.implemented <= set(declared), f"{action}: implements inputs its action.yml lacks"
        # A default that is an expression arrives evaluated: the stand-in cannot tell it from a given value.
        expressions = {name for name, default in declared.items() if "${{" in default}
        assert expressions <= found.implemented, f"{action}: {expressions - found.implemented}"


@pytest.mark.parametrize("action", sorted(STAND_INS))
def test_stand_in_refuses_an_input_its_action_does_not_declare(step: Step, action: str) -> None:
    result = step.run(STAND_INS[action], {"not-an-input": "x"})
    assert result.returncode == 1
    assert "::error::" in result.stdout
    assert f"Unexpected input(s) 'not-an-input', valid inputs are {sorted(STAND_INS[action].declared())}" in result.stdout


@pytest.mark.parametrize("action", sorted(STAND_INS))
def test_stand_in_refuses_a_declared_input_it_does_not_implement(step: Step, action: str) -> None:
    name, value = UNIMPLEMENTED[action]
    assert name in STAND_INS[action].declared()
    result = step.run(STAND_INS[action], {name: value})
    assert result.returncode == 1
    assert f"input {name!r} is not implemented by this stand-in" in result.stdout
    assert f"localcloud/actions/{action}" in result.stdout
    assert step.commands("output") == {}


def cached_python(step: Step, version: str, complete: bool = True) -> Path:
    install_dir = step.root / "tool-cache" / "Python" / version / "x64"
    (install_dir / "bin").mkdir(parents=True)
    if complete:
        (install_dir.parent / "x64.complete").touch()
    return install_dir


def test_setup_python_takes_the_newest_complete_version_of_the_tool_cache(step: Step) -> None:
    newest = cached_python(step, "3.13.1")
    cached_python(step, "3.13.0")
    cached_python(step, "3.13.2", complete=False)  # an interrupted install: no x64.complete
    cached_python(step, "3.12.4")

    result = step.run(STAND_INS["actions/setup-python"], {"python-version": "3.13"})

    assert result.returncode == 0, result.stdout
    assert "Successfully set up CPython (3.13.1)" in result.stdout
    assert step.commands("output") == {"python-version": "3.13.1", "python-path": str(newest / "bin" / "python")}
    exported = step.commands("env")
    assert {exported[name] for name in ("pythonLocation", "Python_ROOT_DIR", "Python2_ROOT_DIR", "Python3_ROOT_DIR")} == {
        str(newest)
    }
    assert exported["PKG_CONFIG_PATH"] == f"{newest}/lib/pkgconfig"
    assert exported["LD_LIBRARY_PATH"] == f"{newest}/lib"
    assert (step.root / "path").read_text().splitlines() == [str(newest), str(newest / "bin")]


def test_setup_python_fails_for_a_version_the_tool_cache_lacks(step: Step) -> None:
    cached_python(step, "3.12.4")
    cached_python(step, "3.13.2", complete=False)

    result = step.run(STAND_INS["actions/setup-python"], {"python-version": "3.13"})

    assert result.returncode == 1
    assert "The version '3.13' with architecture 'x64' was not found for this operating system." in result.stdout
    assert (step.root / "path").read_text() == ""


def service_account_key() -> tuple[dict[str, str], rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    email = "ci@acme-ml.iam.gserviceaccount.com"
    credential = {"type": "service_account", "project_id": "acme-ml", "private_key_id": "k1", "private_key": pem.decode()}
    return credential | {"client_email": email}, key


@pytest.mark.parametrize("encoding", ["json", "base64"])
def test_auth_writes_the_key_file_exports_it_and_signs_a_token_then_post_removes_it(step: Step, encoding: str) -> None:
    credential, key = service_account_key()
    text = json.dumps(credential, indent=2)
    value = text if encoding == "json" else base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    action = STAND_INS["google-github-actions/auth"]

    result = step.run(action, {"credentials_json": value})

    assert result.returncode == 0, result.stdout
    (key_file,) = step.workspace.glob("gha-creds-*.json")
    assert len(key_file.stem.removeprefix("gha-creds-")) == 16
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o640
    assert key_file.read_text() == json.dumps(credential, separators=(",", ":"))
    exported = step.commands("env")
    assert {name: exported[name] for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH")} == dict.fromkeys(
        ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH"), str(key_file)
    )
    assert exported["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"] == str(key_file)
    assert exported["GOOGLE_CLOUD_PROJECT"] == exported["CLOUDSDK_CORE_PROJECT"] == "acme-ml"
    outputs = step.commands("output")
    claims = jwt.decode(
        outputs["auth_token"], key.public_key(), algorithms=["RS256"], audience="https://iamcredentials.googleapis.com/"
    )
    assert claims["iss"] == claims["sub"] == credential["client_email"]
    assert f"::add-mask::{outputs['auth_token']}" in result.stdout
    assert outputs["credentials_file_path"] == str(key_file)

    post = step.run(action, {"credentials_json": value}, post=True, env={"GOOGLE_GHA_CREDS_PATH": str(key_file)})

    assert post.returncode == 0, post.stdout
    assert not key_file.exists()


def test_auth_writes_the_file_before_a_key_that_cannot_sign_fails_the_step(step: Step) -> None:
    credential, _ = service_account_key()
    lines = credential["private_key"].splitlines()
    # The key made at run time, cut to its header, one line of its body and its footer: a PEM that is no key.
    broken = credential | {"private_key": "\n".join([lines[0], lines[1], lines[-1], ""])}

    result = step.run(STAND_INS["google-github-actions/auth"], {"credentials_json": json.dumps(broken)})

    assert result.returncode == 1
    assert "::error::google-github-actions/auth failed with: Failed to sign auth token using ci@acme-ml" in result.stdout
    assert len(list(step.workspace.glob("gha-creds-*.json"))) == 1, "the real action writes the file first"
    assert "GOOGLE_GHA_CREDS_PATH" in step.commands("env"), "so that its post step removes it"


def test_auth_without_credentials_names_both_inputs_and_the_fork_case(step: Step) -> None:
    result = step.run(STAND_INS["google-github-actions/auth"], {"credentials_json": ""})

    assert result.returncode == 1
    assert 'must specify exactly one of "workload_identity_provider" or "credentials_json"!' in result.stdout
    assert "By default, secrets are not passed to workflows triggered from forks" in result.stdout
    assert list(step.workspace.iterdir()) == []


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def platform_repository(step: Step) -> tuple[Path, str, str]:
    """https://github.com/acme/vision as the runner serves it: main (two commits), a feature
    branch, a pull request's merge: the directory standing for https://github.com/, and the two
    commits' shas (main's head, the merge)."""
    source = step.root / "source"
    source.mkdir()
    git(source, "init", "--quiet", "--initial-branch=main")
    for number in (1, 2):
        (source / "file.txt").write_text(f"{number}\n")
        git(source, "add", "file.txt")
        git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", f"commit {number}")
    main = git(source, "rev-parse", "HEAD")
    git(source, "checkout", "--quiet", "-b", "feature")
    (source / "feature.txt").write_text("feature\n")
    git(source, "add", "feature.txt")
    git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "feature")
    merge = git(source, "rev-parse", "HEAD")
    server = step.root / "github"
    git(step.root, "init", "--quiet", "--bare", str(server / "acme" / "vision"))
    git(source, "push", "--quiet", str(server / "acme" / "vision"), "main", "feature", f"{merge}:refs/pull/7/merge")
    return server, main, merge


def checkout_env(step: Step, server: Path, ref: str, sha: str) -> dict[str, str]:
    (step.root / "kept").mkdir(exist_ok=True)
    return {
        "GITHUB_REF": ref,
        "GITHUB_SHA": sha,
        stand_in.GITHUB_GIT: str(server),
        stand_in.KEEP_WORKSPACES: str(step.root / "kept"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def test_checkout_of_a_push_fetches_one_commit_and_keeps_no_token(step: Step) -> None:
    server, main, _ = platform_repository(step)
    action = STAND_INS["actions/checkout"]
    inputs = {"persist-credentials": "false", "token": "ghs_job_token", "repository": "acme/vision"}

    result = step.run(action, inputs, env=checkout_env(step, server, "refs/heads/main", main))

    assert result.returncode == 0, result.stdout + result.stderr
    assert git(step.workspace, "rev-parse", "HEAD") == main
    assert git(step.workspace, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(step.workspace, "rev-parse", "--is-shallow-repository") == "true"
    assert git(step.workspace, "for-each-ref", "--format=%(refname)") == "refs/heads/main\nrefs/remotes/origin/main"
    assert git(step.workspace, "remote", "get-url", "origin") == "https://github.com/acme/vision"
    assert "ghs_job_token" not in (step.workspace / ".git" / "config").read_text()
    assert step.commands("output") == {"commit": main, "ref": "refs/heads/main"}


def test_checkout_of_a_pull_request_with_all_history_persists_the_token_until_its_post_step(step: Step) -> None:
    server, _, merge = platform_repository(step)
    action = STAND_INS["actions/checkout"]
    inputs = {"fetch-depth": "0", "token": "ghs_job_token", "repository": "acme/vision"}
    env = checkout_env(step, server, "refs/pull/7/merge", merge)

    result = step.run(action, inputs, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert git(step.workspace, "rev-parse", "HEAD") == merge
    assert git(step.workspace, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD", "a pull request's merge is checked out detached"
    assert git(step.workspace, "rev-parse", "--is-shallow-repository") == "false"
    remotes = set(git(step.workspace, "branch", "--remotes", "--format=%(refname:short)").split())
    assert remotes == {"origin/main", "origin/feature", "pull/7/merge"}
    (credentials,) = (step.root / "temp").glob("git-credentials-*.config")
    basic = base64.b64encode(b"x-access-token:ghs_job_token").decode()
    assert git(step.workspace, "config", "--get", "http.https://github.com/.extraheader") == f"AUTHORIZATION: basic {basic}"

    post = step.run(action, inputs, post=True, env=env)

    assert post.returncode == 0, post.stdout + post.stderr
    assert not credentials.exists()
    assert "includeIf" not in (step.workspace / ".git" / "config").read_text()
    kept = step.root / "kept" / "reproduce"
    assert git(kept, "rev-parse", "HEAD") == merge
    assert (kept / "feature.txt").read_text() == "feature\n"
