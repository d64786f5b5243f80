"""Stand-in for actions/setup-python v7.0.0 (5fda3b95a4ea91299a34e894583c3862153e4b97), read from
`src/setup-python.ts` and `src/find-python.ts` (`useCpythonVersion`) at that commit: the Python
`python-version` asks for, from the runner's tool cache as `@actions/tool-cache` `find` reads it
(`$RUNNER_TOOL_CACHE/Python/<version>/x64`, complete when `x64.complete` is beside it; a major or
major.minor spec takes the highest version cached), put first on PATH with the variables the
action exports. The real action downloads a version the cache lacks; the stand-in never
downloads (the runner lays out the tool cache: localcloud/actions/tool_cache.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from localcloud.actions import stand_in
from localcloud.actions.stand_in import ActionError, Inputs, StandIn

ARCHITECTURE = "x64"  # os.arch() of node on this host (the `architecture` input's default)


def cached_versions(tool_cache: Path) -> list[tuple[int, ...]]:
    """`findAllVersions`: every complete version of Python in the tool cache."""
    python = tool_cache / "Python"
    found = [d.name for d in python.iterdir() if (d / f"{ARCHITECTURE}.complete").is_file()] if python.is_dir() else []
    return [tuple(int(part) for part in name.split(".")) for name in found if re.fullmatch(r"\d+\.\d+\.\d+", name)]


def find(tool_cache: Path, spec: str) -> Path | None:
    """`tc.find('Python', spec, 'x64')` for an exact version, a major or a major.minor."""
    if not re.fullmatch(r"\d+(\.\d+){0,2}", spec):
        raise ActionError(f"python-version {spec!r}: the stand-in reads versions like 3, 3.13 or 3.13.1 only")
    wanted = tuple(int(part) for part in spec.split("."))
    matches = [version for version in cached_versions(tool_cache) if version[: len(wanted)] == wanted]
    if not matches:
        return None
    return tool_cache / "Python" / ".".join(map(str, max(matches))) / ARCHITECTURE


def update_environment(install_dir: Path) -> None:
    for name in ("pythonLocation", "Python_ROOT_DIR", "Python2_ROOT_DIR", "Python3_ROOT_DIR"):
        stand_in.export_variable(name, str(install_dir))
    stand_in.export_variable("PKG_CONFIG_PATH", f"{install_dir}/lib/pkgconfig")
    library_path = os.environ.get("LD_LIBRARY_PATH", "")
    if str(install_dir / "lib") not in library_path.split(":"):
        stand_in.export_variable("LD_LIBRARY_PATH", str(install_dir / "lib") + (f":{library_path}" if library_path else ""))
    stand_in.add_path(str(install_dir))
    stand_in.add_path(str(install_dir / "bin"))


def main(inputs: Inputs) -> None:
    versions = [line.strip() for line in inputs.get("python-version").splitlines() if line.strip()]
    if len(versions) != 1:
        raise ActionError("the stand-in sets up one python-version, given in the input")
    (spec,) = versions
    install_dir = find(Path(os.environ["RUNNER_TOOL_CACHE"]), spec)
    if install_dir is None:
        raise ActionError(
            f"The version '{spec}' with architecture '{ARCHITECTURE}' was not found for this operating system.\n"
            "(The stand-in downloads nothing: the runner's tool cache has no such Python.)"
        )
    if inputs.boolean("update-environment"):
        update_environment(install_dir)
    version = install_dir.parent.name
    stand_in.set_output("python-version", version)
    stand_in.set_output("python-path", str(install_dir / "bin" / "python"))
    print(f"Successfully set up CPython ({version})", flush=True)


STAND_IN = StandIn(
    action="actions/setup-python",
    commit="5fda3b95a4ea91299a34e894583c3862153e4b97",
    release="v7.0.0",
    # `token` is only for downloads, which the stand-in never makes (nor the real one, on a cache hit).
    implemented=frozenset({"python-version", "update-environment", "token"}),
    main=main,
)

if __name__ == "__main__":
    STAND_IN.run()
