"""Run the real Pulumi CLI on the real program against the local cloud, in a scratch copy of the
project (so `pulumi stack init` never writes into `stacks/`), with an isolated PULUMI_HOME, a
file backend and the local plugins found on PATH (ambient plugins)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from localcloud import github_server, platform, services
from localcloud.services import REPOSITORY
from localcloud.state import ENV_STATE_DIR, open_cloud

PULUMI_VERSION = "3.272.0"
ENV_CLI = "PULUMI_CLI"
BIN = Path(__file__).resolve().parent / "bin"
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "mlops_ci", "requirements.txt", "policy")
PLUGINS = {"gcp": "10.2.0", "github": "6.15.0", "gitlab": "10.4.0"}
"""The versions the pinned SDKs (pulumi-gcp etc.) ask the engine for."""
MODULES = {"github": "localcloud.github_server"}
"""Plugins that are not localcloud's own: github is the real provider (tools/github-provider),
launched with its api.github.com at the local cloud's."""


def plugin_tarball(name: str, destination: Path, repository: Path = REPOSITORY) -> Path:
    """`pulumi-resource-<name>-v<version>.tar.gz` for `pulumi plugin install resource <name> <version> --file`:
    a launcher with this repository's path baked in (the plugin cache lives outside the repository)."""
    module = MODULES.get(name, f"localcloud.plugins.{name}")
    launcher = (
        "#!/bin/sh\n"
        f"# The localcloud '{name}' resource plugin, installed into the plugin cache.\n"
        f"PYTHONPATH='{repository}'${{PYTHONPATH:+:$PYTHONPATH}} "
        f"exec '{repository}/.venv/bin/python' -m {module} \"$@\"\n"
    ).encode()
    destination.mkdir(parents=True, exist_ok=True)
    tarball = destination / f"pulumi-resource-{name}-v{PLUGINS[name]}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        entry = tarfile.TarInfo(f"pulumi-resource-{name}")
        entry.size, entry.mode = len(launcher), 0o755
        archive.addfile(entry, io.BytesIO(launcher))
    return tarball


def find_cli() -> Path | None:
    """`$PULUMI_CLI`, the project's build (`~/.cache/mlops-ci/pulumi-3.272.0/bin/pulumi`, else the
    newest other build there), or `pulumi` on PATH."""
    if os.environ.get(ENV_CLI):
        return Path(os.environ[ENV_CLI])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-ci"
    wanted = cache / f"pulumi-{PULUMI_VERSION}" / "bin" / "pulumi"
    if wanted.exists():
        return wanted
    others = sorted(cache.glob("pulumi-*/bin/pulumi"))
    if others:
        return others[-1]
    found = shutil.which("pulumi")
    return Path(found) if found else None


class Workspace:
    """One stack of the program in `root/project`, state in `root/backend`, local cloud in `root/cloud`."""

    def __init__(
        self,
        root: Path,
        stack: str,
        cli: Path,
        config: Mapping[str, str | None] | None = None,
        discovery: str = "path",
        cloud_dir: Path | None = None,
        program: bool = True,
    ) -> None:
        """`discovery`: "path" (the launchers in localcloud/bin on PATH: ambient plugins) or
        "installed" (tarballs installed into this workspace's PULUMI_HOME, ambient plugins ignored).
        `program`: copy this repository's program and the stack's file from stacks/ into `root/project`;
        False leaves it empty (for `pulumi new`), with `config` as the stack's."""
        self.root = root
        self.discovery = discovery
        self.stack = stack
        self.cli = cli
        self.project = root / "project"
        self.backend = root / "backend"
        self.cloud_dir = cloud_dir or root / "cloud"
        self.home = root / "pulumi-home"
        self.extra_env: dict[str, str] = {}
        """Added to every CLI call's environment."""
        for directory in (self.project, self.backend, self.cloud_dir, self.home):
            directory.mkdir(parents=True, exist_ok=True)
        self.config: dict[str, Any] = {key: value for key, value in (config or {}).items() if value is not None}
        self.secret_keys: list[str] = []
        if program:
            self._copy_program(stack, config)

    def _copy_program(self, stack: str, config: Mapping[str, str | None] | None) -> None:
        """This repository's program, its `.venv`, and `stacks/Pulumi.<stack>.yaml` with `config` over it
        (a key set to None is left out)."""
        (self.project / "stacks").mkdir(exist_ok=True)
        for name in PROGRAM_FILES:
            source = REPOSITORY / name
            if source.is_dir():
                shutil.copytree(source, self.project / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.project / name)
        venv = self.project / ".venv"
        if not venv.exists():
            venv.symlink_to(REPOSITORY / ".venv")
        stack_file = yaml.safe_load((REPOSITORY / "stacks" / f"Pulumi.{stack}.yaml").read_text())
        # A committed file's secrets are its team's, under their passphrase: the copy leaves them and
        # their salt out, and `init` sets each again under this workspace's passphrase.
        for header in ("encryptionsalt", "secretsprovider", "encryptedkey"):
            stack_file.pop(header, None)
        committed = cast(dict[str, Any], stack_file.setdefault("config", {}))
        self.secret_keys = [key for key, value in committed.items() if isinstance(value, dict) and "secure" in value]
        for key in self.secret_keys:
            del committed[key]
        for key, value in (config or {}).items():  # None: the key left out
            if value is None:
                committed.pop(key, None)
            else:
                committed[key] = value
        scratch = self.project / "stacks" / f"Pulumi.{stack}.yaml"
        if scratch.exists():  # a later run on the same root: keep what `pulumi stack init` and `config set` wrote
            earlier = cast(dict[str, Any], yaml.safe_load(scratch.read_text()) or {})
            stack_file = {**earlier, "config": {**earlier.get("config", {}), **stack_file["config"]}}
        scratch.write_text(yaml.safe_dump(stack_file))
        self.config = stack_file["config"]

    @property
    def env(self) -> dict[str, str]:
        ambient = self.discovery == "path"
        # Cloud Storage as the program's credential check and CI reach it (the services start on demand).
        urls = services.start(self.cloud_dir)
        storage = urls["storageProxy"]
        return {
            **os.environ,
            **github_server.client_environment(urls),
            "PATH": ":".join([*([str(BIN)] if ambient else []), str(self.cli.parent), os.environ.get("PATH", "")]),
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "false" if ambient else "true",
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": self.backend.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "localcloud",
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_ERROR_OUTPUT_STRING": "1",
            ENV_STATE_DIR: str(self.cloud_dir),
            "STORAGE_EMULATOR_HOST": storage,
            "GITHUB_TOKEN": "ghp_localcloud",
            "GITLAB_TOKEN": "glpat-localcloud",
            **self.extra_env,
        }

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.cli), *args, "--non-interactive"],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def install_plugins(self) -> None:
        for name, version in PLUGINS.items():
            tarball = plugin_tarball(name, self.root / "plugins")
            self.pulumi("plugin", "install", "resource", name, version, "--file", str(tarball))

    def ensure_repository(self, seed: bool = True) -> bool:
        """The stack's repository or project, with its branch, in the local cloud (as a team has
        it): seeded with the sample DVC project (and the team's clone holding its data), or with
        a README only. True if it was created."""
        cloud = open_cloud(self.cloud_dir)
        kind, path = str(self.config["mlops-ci:platform"]), str(self.config["mlops-ci:repository"])
        if seed:
            from localcloud import chapter  # the e2e helpers (dvc): only when seeding

            return chapter.seed_repository(cloud, chapter.Stack.from_config(self.stack, self.config))
        if platform.find_repository(cloud, kind, path) is None:
            branches = [str(self.config.get("mlops-ci:branch", "main"))]
            instance = platform.gitlab_instance(self.config.get("gitlab:baseUrl"))
            platform.create_repository(cloud, kind, path, branches, instance=instance)
            return True
        return False

    def init(self) -> None:
        if self.discovery == "installed":
            self.install_plugins()
        if self.pulumi("stack", "select", self.stack, check=False).returncode != 0:
            self.pulumi("stack", "init", self.stack)
            for key in self.secret_keys:
                self.pulumi("config", "set", "--secret", "--stack", self.stack, key, "localcloud-secret")

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", "--stack", self.stack)

    def preview(self) -> subprocess.CompletedProcess[str]:
        return self.pulumi("preview", "--stack", self.stack, "--expect-no-changes")

    def destroy(self) -> subprocess.CompletedProcess[str]:
        return self.pulumi("destroy", "--yes", "--skip-preview", "--stack", self.stack)

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads(self.pulumi("stack", "output", "--json", "--stack", self.stack).stdout))

    def state_text(self) -> str:
        """The stack's checkpoint as stored (secrets encrypted)."""
        return "".join(path.read_text() for path in self.backend.rglob(f"{self.stack}.json"))
