"""Wall time of the keyless CI job against the key-mode job, side by side in one run, on the same
runner and machine: each platform's keyless example stack up through the real engine twice, as it
is and with `mlops-ci:auth: key` (nothing else differs), each against a local cloud of its own, the
team's next steps, then the committed CI file run in turns (`make local-ci`'s path: act for GitHub,
gitlab-ci-local for GitLab), a commit that changes nothing.

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
from localcloud.engine import find_cli  # noqa: E402
from localcloud.kit.deployed import Deployed, deploy_stack  # noqa: E402

STACKS = {"github": "recsys-team", "gitlab": "speech-team"}
# The key case leaves the keyless-only keys out (speech-team says keylessMode impersonation).
AUTH: dict[str, dict[str, str | None]] = {"key": {"mlops-ci:auth": "key", "mlops-ci:keylessMode": None}, "keyless": {}}


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
    cli = find_cli()
    if cli is None:
        raise SystemExit("no Pulumi CLI: make pulumi-cli")
    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-keyless-") as scratch:
        roots = {(stack, auth): Path(scratch) / f"{stack}-{auth}" for stack in STACKS.values() for auth in AUTH}
        try:
            deployed = {case: deploy_stack(cli, root, case[0], AUTH[case[1]]) for case, root in roots.items()}
            times: dict[tuple[str, str], list[float]] = {case: [] for case in deployed}
            for _ in range(runs):
                for case, stack in deployed.items():
                    times[case].append(timed(stack))
        finally:
            for root in roots.values():
                services.stop(root / "cloud")
    print(f"{'platform':8} {'stack':12} {'key s':>6} {'keyless s':>9} {'ratio':>6}  (median of {runs} runs each, in turns)")
    for kind, stack in STACKS.items():
        key, keyless = (statistics.median(times[stack, auth]) for auth in AUTH)
        print(f"{kind:8} {stack:12} {key:6.1f} {keyless:9.1f} {keyless / key:6.2f}")


if __name__ == "__main__":
    main()
