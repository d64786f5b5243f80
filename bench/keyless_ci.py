"""Wall time of the keyless CI job against the key-mode job, side by side in one run, on the same
runner and machine: each platform's example key stack and keyless stack up through the real engine
against a local cloud of its own, the team's next steps, then the committed CI file run in turns
(`make local-ci`'s path: act for GitHub, gitlab-ci-local for GitLab), a commit that changes nothing.

    python bench/keyless_ci.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localcloud import chapter, services  # noqa: E402
from tests.e2e.test_keyless_jobs import Deployed, deploy  # noqa: E402

STACKS = {"github": ("vision-team", "recsys-team"), "gitlab": ("nlp-team", "speech-team")}


def timed(deployed: Deployed) -> float:
    start = time.monotonic()
    result = chapter.run_ci(deployed.cloud, deployed.stack)
    if result.returncode != 0:
        raise SystemExit(f"{deployed.stack.name}: red\n{result.log}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-keyless-") as scratch:
        roots = [Path(scratch) / name for pair in STACKS.values() for name in pair]
        try:
            deployed = {root.name: deploy(root, root.name, {}) for root in roots}
            times: dict[str, list[float]] = {name: [] for name in deployed}
            for _ in range(runs):
                for name, stack in deployed.items():
                    times[name].append(timed(stack))
        finally:
            for root in roots:
                services.stop(root / "cloud")
    header = f"{'platform':8} {'key stack':12} {'key s':>7} {'keyless stack':14} {'keyless s':>9} {'ratio':>6}"
    print(f"{header}  ({runs} runs, median)")
    for kind, (key, keyless) in STACKS.items():
        k, kl = statistics.median(times[key]), statistics.median(times[keyless])
        print(f"{kind:8} {key:12} {k:7.1f} {keyless:14} {kl:9.1f} {kl / k:6.2f}")


if __name__ == "__main__":
    main()
