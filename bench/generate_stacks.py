"""Write N synthetic team stack files for the benchmark, cycling through every platform, auth mode
and access preset so the batch exercises each branch of the program.

    python bench/generate_stacks.py DIR N
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mlops_ci.settings.model import ACCESS_PRESETS, AUTH_MODES

PLATFORMS = {"github": "acme-ml/{team}-experiments", "gitlab": "acme-ml/research/{team}-experiments"}


def stack_file(team: str, platform: str, auth: str, access: str) -> str:
    repository = PLATFORMS[platform].format(team=team)
    return (
        f"# Benchmark team {team}: {platform}, {auth}, {access}.\n"
        "config:\n"
        f"  gcp:project: acme-ml-{team}\n"
        f"  mlops-ci:platform: {platform}\n"
        f"  mlops-ci:repository: {repository}\n"
        f"  mlops-ci:auth: {auth}\n"
        f"  mlops-ci:access: {access}\n"
    )


def main(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    variants = itertools.cycle(itertools.product(PLATFORMS, AUTH_MODES, ACCESS_PRESETS))
    for number, (platform, auth, access) in zip(range(count), variants, strict=False):
        team = f"team-{number:03d}"
        (directory / f"Pulumi.{team}.yaml").write_text(stack_file(team, platform, auth, access))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
