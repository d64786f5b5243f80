"""Fixtures for tests that run the REAL Pulumi CLI (built by tools/pulumi/build.sh), offline.

- `pulumi_bin`: the directory holding `pulumi` and our `pulumi-language-python`; built once per
  session through the build script (a cached build returns at once). Set MLOPS_CI_SKIP_ENGINE=1 to
  skip these tests instead (the only way they skip).
- `engine`: a throwaway copy of the project (the real Pulumi.yaml, `.venv` linked to the venv
  running the tests, a `__main__.py` that only dumps the config it receives) logged in to a fresh
  `file://` backend, with an environment that keeps the CLI off the network. When this machine can
  make a network namespace (`unshare --net`), every CLI call runs in one with only a loopback
  interface, so an attempt to reach the internet fails loudly instead of passing unnoticed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tools" / "pulumi" / "build.sh"
SKIP_VARIABLE = "MLOPS_CI_SKIP_ENGINE"
PASSPHRASE = "engine-tests-passphrase"
CLI_TIMEOUT = 180  # seconds; a hung CLI is killed (with its plugins) and the test fails

# A program that registers nothing and writes down exactly what the engine handed it.
DUMP_PROGRAM = """\
import json
import os

import pulumi
from pulumi.runtime import config as runtime_config

config = dict(runtime_config.CONFIG.get())
seen = {
    "config": config,
    "secret_keys": sorted(k for k in config if pulumi.runtime.is_config_secret(k)),
    "get": {k: pulumi.Config(k.split(":", 1)[0]).get(k.split(":", 1)[1]) for k in config},
    "stack": pulumi.get_stack(),
    "project": pulumi.get_project(),
}
with open(os.environ["MLOPS_CI_DUMP"], "w") as out:
    json.dump(seen, out)
for key in seen["secret_keys"]:
    namespace, name = key.split(":", 1)
    pulumi.export("secret:" + key, pulumi.Config(namespace).get_secret(name))
pulumi.export("keys", len(config))
"""


def offline_env(home: Path) -> dict[str, str]:
    """The environment that keeps the CLI offline and away from the user's ~/.pulumi."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(
        PULUMI_HOME=str(home),  # plugins, credentials, workspace settings: not the user's
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,  # the passphrase secrets provider, no cloud KMS
        PULUMI_SKIP_UPDATE_CHECK="1",  # no query for a newer CLI version
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="1",  # never download a missing plugin
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="1",  # Automation API: no CLI version probe
        PULUMI_SKIP_CONFIRMATIONS="1",
        PULUMI_ERROR_OUTPUT_STRING="1",
    )
    return env


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    if os.environ.get(SKIP_VARIABLE):
        pytest.skip(f"{SKIP_VARIABLE} is set: the real Pulumi CLI is not built or run")
    built = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.fail(f"tools/pulumi/build.sh failed ({built.returncode}):\n{built.stderr[-4000:]}")
    bin_dir = Path(built.stdout.strip().splitlines()[-1])
    for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec"):
        assert (bin_dir / name).is_file(), f"{name} missing in {bin_dir}"
    return bin_dir


@pytest.fixture(scope="session")
def program_venv() -> Path:
    """The venv running the tests: it holds the pinned pulumi SDK (and pulumi-policy)."""
    assert importlib.metadata.version("pulumi") == "3.272.0", "run the engine tests from .venv (make test)"
    return Path(sys.prefix)


@pytest.fixture(scope="session")
def netns_prefix() -> list[str]:
    """`unshare --net` wrapper (loopback only) when this machine allows it, else nothing."""
    wrapper = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run([*wrapper, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return wrapper
    return []


@dataclasses.dataclass
class Engine:
    """One throwaway project + backend, and the real CLI to drive them."""

    bin_dir: Path
    project: Path
    backend: Path
    home: Path
    env: dict[str, str]
    netns: list[str]

    @property
    def dump_path(self) -> Path:
        return self.project / "dump.json"

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command = [*self.netns, str(self.bin_dir / "pulumi"), "--non-interactive", *args]
        with subprocess.Popen(
            command,
            cwd=self.project,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a hung CLI is killed together with its plugins
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=CLI_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
                pytest.fail(f"pulumi {' '.join(args)} hung for {CLI_TIMEOUT}s:\n{stdout}\n{stderr}")
        result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} exited {result.returncode}:\n{stdout}\n{stderr}")
        return result

    def stack_file(self, stack: str) -> Path:
        return self.project / "stacks" / f"Pulumi.{stack}.yaml"

    def init_stack(self, stack: str, text: str | bytes = b"") -> Path:
        """`pulumi stack init`, then the stack file's content followed by the salt init wrote (a
        content with its own `encryptionsalt:`, as `pulumi stack init` wrote it, is kept as it is)."""
        self.run("stack", "init", stack)
        path = self.stack_file(stack)
        salt = path.read_bytes()
        body = text.encode() if isinstance(text, str) else text
        if b"encryptionsalt:" in body:
            path.write_bytes(body)
            return path
        path.write_bytes(body + (b"" if body.endswith(b"\n") or not body else b"\n") + salt)
        return path

    def preview(
        self, stack: str, *extra: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        """`pulumi preview`; also what the program saw (None when it did not run)."""
        self.dump_path.unlink(missing_ok=True)
        result = self.run("preview", "--stack", stack, *extra, check=False, env=env)
        seen = json.loads(self.dump_path.read_text()) if self.dump_path.exists() else None
        return result, seen

    def config_json(self, stack: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        result = self.run("config", "--json", "--stack", stack, *extra, check=False)
        return result, (json.loads(result.stdout) if result.returncode == 0 else None)


def make_engine(base: Path, bin_dir: Path, venv: Path, netns: list[str]) -> Engine:
    project, backend, home = base / "project", base / "backend", base / "home"
    for directory in (project / "stacks", backend, home):
        directory.mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")  # the project file, byte for byte
    (project / ".venv").symlink_to(venv)  # Pulumi.yaml's `virtualenv: .venv`
    (project / "__main__.py").write_text(DUMP_PROGRAM)
    env = offline_env(home)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # the CLI finds our language host here
    env["MLOPS_CI_DUMP"] = str(project / "dump.json")
    engine = Engine(bin_dir, project, backend, home, env, netns)
    engine.run("login", f"file://{backend}")
    return engine


@pytest.fixture
def engine(tmp_path: Path, pulumi_bin: Path, program_venv: Path, netns_prefix: list[str]) -> Engine:
    return make_engine(tmp_path, pulumi_bin, program_venv, netns_prefix)


@pytest.fixture(scope="module")
def module_engine(
    tmp_path_factory: pytest.TempPathFactory, pulumi_bin: Path, program_venv: Path, netns_prefix: list[str]
) -> Engine:
    return make_engine(tmp_path_factory.mktemp("engine"), pulumi_bin, program_venv, netns_prefix)
