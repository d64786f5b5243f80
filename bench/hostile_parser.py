"""The worst stack file for the parser, a "billion laughs" (10 levels of 9 aliases: 3.5e9 values once
expanded), through `make plan` and `make check`'s commands: wall time and peak memory of each whole
process (GNU time), never asserted by a test.

    .venv/bin/python bench/hostile_parser.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAD = "config:\n  gcp:project: acme-ml-test\n  mlops-ci:platform: github\n  mlops-ci:repository: acme-ml/churn\n"
LEVELS = 10


def laughs() -> str:
    lines = [f"  t:l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"  t:l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, LEVELS)]
    return HEAD + "\n".join(lines) + "\n"


def measure(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak resident kB and the last line printed."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    if wall is None or peak is None:
        raise RuntimeError(f"no GNU time figures in: {result.stderr[-400:]}")
    seconds = int(wall[1] or 0) * 3600 + int(wall[2]) * 60 + float(wall[3])
    said = [line for line in (result.stdout + result.stderr).splitlines() if "alias" in line]
    return seconds, int(peak[1]), said[0] if said else "(no refusal printed)"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        stacks = Path(folder) / "stacks"
        stacks.mkdir()
        (stacks / "Pulumi.laughs.yaml").write_text(laughs())
        python = sys.executable
        commands = {
            "plan": [python, "-m", "mlops_ci.offline.plan", "--stacks", str(stacks), "--out", f"{folder}/out", "laughs"],
            "check": [python, "-m", "mlops_ci.offline.check", "--jobs", "1", "--stacks", str(stacks)],
        }
        for name, command in commands.items():
            seconds, peak, said = measure(command)
            print(f"{name}: {seconds:.2f} s, peak {peak / 1024:.0f} MB: {said.strip()[:120]}")


if __name__ == "__main__":
    main()
