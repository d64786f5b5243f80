"""Data moved by CI: the job mlops-ci commits against the guide's own job, side by side in one run.

Both are GitHub workflows run by act with the stand-in actions (localcloud/actions), against the
same storage emulator behind a recording proxy, the same sample project (~4.8 MB in the bucket)
and the same local wheelhouse, on a fresh clone and a fresh HOME each time (no pip or uv cache: a
fresh runner). The guide's job (chapter 2.3): checkout, setup-python, `pip install -r
requirements-freeze.txt`, auth with the key, `dvc repro --pull`. Per-step times are act's.

    python bench/ci_data.py [--runs N]

Cases: a commit that changes nothing, one that changes a `train` parameter, and one whose
bucket lacks an output (models/model.json): there only the outcome is reported."""

from __future__ import annotations

import argparse
import dataclasses
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localcloud.actions.runner import WorkflowRun, run_workflow  # noqa: E402
from localcloud.kit import sample_project as sample  # noqa: E402
from localcloud.kit.ci_runners import ci_runner_env, push_as_maintainer  # noqa: E402
from localcloud.kit.commands import host_env  # noqa: E402
from localcloud.kit.servers import StorageEmulator, StorageProxy, TokenEndpoint  # noqa: E402
from localcloud.kit.stack import Deployment, deploy  # noqa: E402
from localcloud.kit.wheelhouse import JOB_REQUIREMENTS, wheelhouse  # noqa: E402

# The guide's workflow (a-guide-to-mlops ch 2.3), its actions at the pins the runner has
# stand-ins for; setup-python's `cache: pip` left out (the stand-in has no cache, and the
# wheelhouse is local: downloads cost nothing here).
GUIDE_WORKFLOW = """\
name: MLOps
on:
  push:
    branches:
      - main
  workflow_dispatch:
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
      - uses: actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97
        with:
          python-version: "3.13"
      - name: Install dependencies
        run: pip install --requirement requirements-freeze.txt
      - name: Login to Google Cloud
        uses: google-github-actions/auth@7c6bc770dae815cd3e89ee6cdf493a5fab2cc093
        with:
          credentials_json: ${{ secrets.GOOGLE_SERVICE_ACCOUNT_KEY }}
      - name: Train model
        run: dvc repro --pull
"""


@dataclasses.dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float
    """User + system CPU of the job's processes, seconds: steadier than wall on a shared machine."""
    received: int
    """Response body bytes from Cloud Storage (listings, metadata, object contents)."""
    returncode: int
    steps: tuple[tuple[str, str, float], ...]
    """Each step's name, action (`uses`, or empty) and wall time, seconds, in order."""

    @property
    def after_setup(self) -> float:
        """Wall time of the steps after actions/setup-python (the tool cache's Python, the same
        for both jobs)."""
        names = [uses for _, uses, _ in self.steps]
        return sum(seconds for _, _, seconds in self.steps[names.index("actions/setup-python") + 1 :])

    log: str


def main_steps(run: WorkflowRun) -> tuple[tuple[str, str, float], ...]:
    """Each main step's name, action (`uses`, or empty) and wall time, as act timed them."""
    return tuple((step.name.split("@")[0], step.uses, step.seconds) for step in run.step_times if step.stage == "Main")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only-unchanged", action="store_true", help="only the commit that changes nothing")
    parser.add_argument(
        "--workflow", type=Path, action="append", default=[], help="another workflow to run side by side (repeatable)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ci-data-"))
    emulator = StorageEmulator(work / "emulator.log")
    endpoint = TokenEndpoint()
    emulator.start()
    endpoint.start()
    proxy = StorageProxy(emulator.url)
    proxy.start()
    try:
        run_cases(work, emulator, proxy, endpoint, args.runs, args.workflow, args.only_unchanged)
    finally:
        proxy.stop()
        endpoint.stop()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_cases(
    work: Path,
    emulator: StorageEmulator,
    proxy: StorageProxy,
    endpoint: TokenEndpoint,
    runs: int,
    extras: list[Path],
    only_unchanged: bool,
) -> None:
    house = wheelhouse()
    base_env = host_env(work / "base")
    project = work / "sample"
    project.mkdir()
    sample.build(project, base_env)
    ours = deploy("github", endpoint.url)
    endpoint.trust(ours.account_email, ours.public_key)
    guide = dataclasses.replace(ours, ci_content=GUIDE_WORKFLOW)
    emulator.create_bucket(ours.bucket, ours.gcp_project)
    env = base_env | {"STORAGE_EMULATOR_HOST": proxy.url, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    # The guide's committed remote is its own bucket: here the stack's, so that its job can run.
    sample.git(project, env, "branch", "--move", "--force", ours.branch)
    sample.dvc(project, env, "remote", "add", "--default", "data", ours.remote_url)
    sample.commit_all(project, env, "DVC remote")
    push_as_maintainer(project, ours, endpoint, env, work / "maintainer")
    print(f"bucket: {len(emulator.object_names(ours.bucket))} objects; job requirements: {JOB_REQUIREMENTS!r}")

    counter = iter(range(10**6))

    def job(deployment: Deployment, change: Callable[[Path], None] | None = None) -> Sample:
        case = work / f"run-{next(counter)}"
        case.mkdir()
        repository = case / "project"
        shutil.copytree(project, repository, symlinks=True)
        for path, content in ((deployment.job_script_path, deployment.job_script), (deployment.ci_file, deployment.ci_content)):
            (repository / path).parent.mkdir(parents=True, exist_ok=True)
            (repository / path).write_text(content)
        sample.commit_all(repository, env, "CI file")
        if change:
            change(repository)
        workspace = case / "workspace"
        sample.git(case, env, "clone", "--quiet", repository, workspace)
        runner_env = ci_runner_env(case, proxy.url, house)
        proxy.reset()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        result = run_workflow(
            workspace,
            Path(deployment.ci_file),
            deployment.repository,
            runner_env,
            directory=case / "runner",
            secrets_={deployment.secret_name: deployment.secret_value},
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        received = proxy.received()
        shutil.rmtree(case, ignore_errors=True)
        return Sample(wall, cpu, received, result.returncode, main_steps(result), result.log)

    def changed(repository: Path) -> None:
        sample.change_parameter(repository, env)

    jobs = {"committed (mlops-ci)": ours, "guide's": guide}
    for extra in extras:  # workflows to weigh against the committed one (--workflow)
        jobs[extra.name] = dataclasses.replace(ours, ci_content=extra.read_text())
    all_cases: dict[str, Callable[[Path], None] | None] = {"unchanged commit": None, "changed parameter": changed}
    cases = {name: change for name, change in all_cases.items() if not only_unchanged or change is None}
    samples: dict[tuple[str, str], list[Sample]] = {(c, j): [] for c in cases for j in jobs}
    for _ in range(runs):  # interleaved, so that a noisy neighbour hits every case alike
        for case_name, change in cases.items():
            for job_name, deployment in jobs.items():
                result = job(deployment, change)
                if result.returncode:  # a failed job's time is no figure
                    sys.exit(f"{job_name} on the {case_name}: exit {result.returncode}\n{result.log}")
                samples[case_name, job_name].append(result)
    print(f"\n| commit | job | wall median (min-max) of {runs} | CPU user+sys median | bytes from the bucket (median) | exit |")
    print("|---|---|---|---|---|---|")
    for (case_name, job_name), runs_of in samples.items():
        walls = [s.wall for s in runs_of]
        received = statistics.median(s.received for s in runs_of)
        codes = sorted({s.returncode for s in runs_of})
        cpu = statistics.median(s.cpu for s in runs_of)
        print(
            f"| {case_name} | {job_name} | {statistics.median(walls):.1f} s ({min(walls):.1f}-{max(walls):.1f})"
            f" | {cpu:.1f} s | {received / 1e6:.3f} MB | {codes} |"
        )
    for case_name in cases:
        guide_s = samples[case_name, "guide's"]
        for job_name in jobs:
            if job_name == "guide's":
                continue
            ours_s = samples[case_name, job_name]
            wall = statistics.median(s.wall for s in ours_s) / statistics.median(s.wall for s in guide_s)
            data = statistics.median(s.received for s in ours_s) / max(statistics.median(s.received for s in guide_s), 1)
            cpu = statistics.median(s.cpu for s in ours_s) / statistics.median(s.cpu for s in guide_s)
            after = statistics.median(s.after_setup for s in ours_s) / statistics.median(s.after_setup for s in guide_s)
            print(
                f"\n{case_name}, {job_name}: wall {wall:.2f}x the guide's (goal <= 0.5), CPU {cpu:.2f}x,"
                f" bytes {data:.3f}x (goal <= 0.1); the steps after setup-python {after:.2f}x"
            )
    print("\nPer step, wall median (min-max) in seconds:")
    for (case_name, job_name), runs_of in samples.items():
        after = [s.after_setup for s in runs_of]
        span = f"{statistics.median(after):.1f} s, {min(after):.1f}-{max(after):.1f}"
        print(f"\n{case_name}, {job_name} (the steps after setup-python: {span}):")
        for index, (step_name, _, _) in enumerate(runs_of[0].steps):
            times = [s.steps[index][2] for s in runs_of]
            print(f"  {index + 1}. {step_name}: {statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})")
    if only_unchanged:
        return

    # The bucket lacks an output: models/model.json (train's) was never pushed.
    emulator.create_bucket(f"{ours.bucket}-partial", ours.gcp_project)
    partial_url = ours.remote_url.replace(ours.bucket, f"{ours.bucket}-partial", 1)
    partial = work / "partial-push"
    shutil.copytree(project, partial, symlinks=True)
    sample.dvc(partial, env, "remote", "add", "--local", "--force", "partial", partial_url)
    targets = ("data/raw.csv.dvc", "dvc.yaml:prepare", "dvc.yaml:evaluate")
    maintainer_env = env | {"GOOGLE_APPLICATION_CREDENTIALS": str(work / "maintainer/key.json")}
    sample.dvc(partial, maintainer_env, "push", "-q", "-r", "partial", *targets)
    print("\nbucket lacking models/model.json:")
    for job_name, deployment in jobs.items():
        lacking = dataclasses.replace(
            deployment,
            bucket=f"{ours.bucket}-partial",
            remote_url=partial_url,
            ci_content=deployment.ci_content.replace(ours.remote_url, partial_url),
            job_script=deployment.job_script.replace(ours.remote_url, partial_url),
        )

        def point_at_partial(repository: Path) -> None:
            sample.dvc(repository, env, "remote", "add", "--default", "--force", "data", partial_url)
            sample.commit_all(repository, env, "remote: the partial bucket")

        result = job(lacking, point_at_partial)
        outcome = "fails" if result.returncode else "succeeds (re-runs train)"
        print(f"- {job_name} job: exit {result.returncode}, {outcome}; {result.received / 1e6:.3f} MB from the bucket")


if __name__ == "__main__":
    main()
