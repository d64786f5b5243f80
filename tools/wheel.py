"""`make wheel`: mlops-ci's wheel, built from a clean copy of the package's sources.

pip builds a local directory in place, and setuptools never empties the `build/lib` it copies the package into: a
checkout that once built an older layout would ship the files since removed. A copy of what the wheel is made of
(pyproject.toml and the files it reads, the package) in a new directory leaves nothing to inherit. Prints the
`export MLOPS_CI_WHEEL=…` line that a project made by `pulumi new` reads (the path percent-encoded, as in a URL).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mlops_ci"


def sources() -> list[str]:
    """What pyproject.toml builds the wheel from beside the package: itself, its readme, and every file its dynamic
    fields read (setuptools skips an absent one without a word: a wheel without those dependencies)."""
    pyproject: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    readme = pyproject["project"].get("readme", {})
    named = [readme] if isinstance(readme, str) else [readme["file"]] if "file" in readme else []
    for field in pyproject.get("tool", {}).get("setuptools", {}).get("dynamic", {}).values():
        files = field.get("file", [])
        named += [files] if isinstance(files, str) else files
    return ["pyproject.toml", *named]


def build_wheel(out: Path) -> Path:
    """The wheel, built into `out` (created) from a copy of this checkout's package sources."""
    # The copy, and setuptools, follow a link: the wheel would hold its target, from anywhere on this machine.
    links = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / PACKAGE).rglob("*") if path.is_symlink())
    if links:
        named = f"{', '.join(links)} {'is a symbolic link' if len(links) == 1 else 'are symbolic links'}"
        raise SystemExit(f"make wheel: {named}: the wheel would hold what it points to; replace it by the file")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-wheel-") as scratch:
        source, dist = Path(scratch) / "source", Path(scratch) / "dist"
        source.mkdir()
        for name in sources():
            shutil.copy2(ROOT / name, source / name)
        shutil.copytree(ROOT / PACKAGE, source / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
        subprocess.run([*command, "--disable-pip-version-check", "-w", str(dist)], check=True, timeout=300)
        # Built apart: `out` (build/dist) may hold the wheels of earlier versions.
        (built,) = dist.glob("mlops_ci-*.whl")
        return Path(shutil.copy2(built, out / built.name))


def export_line(wheel: Path) -> str:
    """The shell line that tells a project made by `pulumi new` where the wheel is. Its requirements.txt reads
    `file://${MLOPS_CI_WHEEL}`: the path is percent-encoded as in a URL (pip decodes it; a space, '#' or '%' would break
    the line), which leaves no character the shell reads either ('"', '$', '`', quotes)."""
    return f"export MLOPS_CI_WHEEL={urllib.parse.quote(str(wheel))}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/wheel.py <directory for the wheel> (make wheel: build/dist)")
    print(export_line(build_wheel(Path(sys.argv[1]).resolve())))
