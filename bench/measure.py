"""Time the offline check of one stack against a batch, with `/usr/bin/time -v`: wall clock, CPU
time and peak memory (max RSS) of each run, repeated and interleaved so a noisy neighbour hits both alike.

    python bench/measure.py ONE_DIR BATCH_DIR [--runs N] [--jobs 1 2 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_RATIO = 5.0
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)")
_MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_CPU = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float
    """Wall clock, seconds."""
    cpu: float
    """User + system CPU, seconds, worker processes included: steadier than wall on a shared machine."""
    max_rss: int
    """Peak resident memory, MiB; with worker processes, the largest single process's."""


def timed(command: list[str]) -> Run:
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    wall, rss = _WALL.search(result.stderr), _MAX_RSS.search(result.stderr)
    if not wall or not rss:
        sys.exit(f"no /usr/bin/time -v figures in:\n{result.stderr}")
    hours, minutes, seconds = wall.groups()
    cpu = sum(float(value) for value in _CPU.findall(result.stderr))
    return Run(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), cpu, int(rss.group(1)) // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("one", type=Path)
    parser.add_argument("batch", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    check = [sys.executable, "-m", "mlops_ci.offline.check"]
    cases = {"1 stack": [*check, "--stacks", str(args.one), "--jobs", "1"]}
    batch = len(list(args.batch.glob("Pulumi.*.yaml")))
    cases |= {f"{batch} stacks, --jobs {jobs}": [*check, "--stacks", str(args.batch), "--jobs", str(jobs)] for jobs in args.jobs}
    for command in cases.values():
        timed(command)  # warm-up: bytecode caches, page cache
    samples: dict[str, list[Run]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, command in cases.items():
            samples[name].append(timed(command))
    one = statistics.median(run.wall for run in samples["1 stack"])
    print(f"| case | wall median (min-max) of {args.runs} | CPU user+sys median | max RSS median | wall ratio to 1 stack |")
    print("|---|---|---|---|---|")
    for name, runs in samples.items():
        walls = [run.wall for run in runs]
        wall, cpu, rss = (
            statistics.median(walls),
            statistics.median(run.cpu for run in runs),
            statistics.median(run.max_rss for run in runs),
        )
        print(f"| {name} | {wall:.2f} s ({min(walls):.2f}-{max(walls):.2f}) | {cpu:.2f} s | {rss:.0f} MiB | {wall / one:.1f}x |")
    print(f"\ntarget: {batch} stacks <= {TARGET_RATIO:.0f}x one stack ({TARGET_RATIO * one:.2f} s)")


if __name__ == "__main__":
    main()
