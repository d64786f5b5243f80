"""The committed CI file of every variant the tests render: its lines, and the programs written
inline in it (a `run:` step or a GitLab script entry of more than one line, a `python3 -c` program).

    python bench/ci_lines.py [ROOT]

ROOT: a checkout of this repository to measure (default: this one), e.g. an older commit's
`git archive` next to this checkout's .venv; the variants are localcloud/kit/variants.py's (before it,
tests/test_ci_linters.py held them: measure such a commit with that commit's bench/ci_lines.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, cast

import yaml

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localcloud.kit.variants import PLATFORMS, VARIANTS, rendered  # noqa: E402


def scripts(platform: str, content: str) -> list[str]:
    """Every text the platform hands to a shell."""
    document: dict[str, Any] = yaml.safe_load(content)
    if platform == "github":
        jobs = cast(dict[str, dict[str, Any]], document["jobs"])
        return [str(step["run"]) for job in jobs.values() for step in job["steps"] if "run" in step]
    jobs = [cast(dict[str, Any], job) for job in document.values() if isinstance(job, dict) and "script" in job]
    return [str(line) for job in jobs for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def inline_programs(platform: str, content: str) -> list[int]:
    """The line count of each inline program: a shell text of several lines."""
    return [len(text.strip().splitlines()) for text in scripts(platform, content) if len(text.strip().splitlines()) > 1]


def main() -> None:
    print("| platform | variant | lines | inline programs (lines each) | longest |")
    print("|---|---|---|---|---|")
    for platform in PLATFORMS:
        for variant in VARIANTS:
            content = rendered(platform, variant)
            programs = inline_programs(platform, content)
            each = "+".join(map(str, programs)) or "-"
            lines = len(content.splitlines())
            print(f"| {platform} | {variant} | {lines} | {sum(programs)} ({each}) | {max(programs, default=0)} |")


if __name__ == "__main__":
    main()
