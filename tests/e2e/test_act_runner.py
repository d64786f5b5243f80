"""What the GitHub runner of the tests (act, localcloud/actions/runner.py) does that the bash
emulation it replaced did not, or did otherwise, each pinned on a small workflow: job and step
conditions with status functions, file commands between steps and jobs, the Python setup-python
asks for, artifacts through act's artifact server with the runtime token given to actions only,
one GITHUB_TOKEN per run with each job's permissions enforced by the API stand-in, no secrets for
a fork, steps on a terminal, and what the runner refuses before act starts."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.actions.runner import Event, RunnerError, WorkflowRun, run_workflow
from localcloud.kit import sample_project as sample
from localcloud.kit.commands import host_env
from localcloud.kit.review_apis import ReviewApi

pytestmark = pytest.mark.e2e

REPOSITORY = "acme/vision"
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"
UPLOAD = "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"
DOWNLOAD = "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c"
ON = "on:\n  push:\n    branches: [main]\n  pull_request:\n    branches: [main]\n"


def workflow_run(tmp_path: Path, jobs: str, event: Event | None = None, **options: object) -> WorkflowRun:
    """`jobs` (YAML, the `jobs:` mapping) committed on main of a fresh repository, run for `event`."""
    env = host_env(tmp_path / "machine")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    sample.git(workspace, env, "init", "--quiet", "--initial-branch=main")
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "ci.yaml").write_text(f"name: pinned\n{ON}jobs:\n{textwrap.indent(jobs, '  ')}")
    # act would read a .env, .secrets or .vars file of its working directory: the runner gives it its own.
    (workspace / ".env").write_text("FROM_THE_REPOSITORY_DOT_ENV=read\n")
    sample.commit_all(workspace, env, "workflow")
    return run_workflow(
        workspace,
        Path(".github/workflows/ci.yaml"),
        REPOSITORY,
        env,
        directory=tmp_path / "runner",
        event=event,
        **options,  # type: ignore[arg-type]
    )


def step_output(run: WorkflowRun, job: str, step: str) -> list[str]:
    heading = f"## {job} Main: {step}\n"
    assert heading in run.log, run.log
    return run.log.split(heading, 1)[1].split("\n## ", 1)[0].splitlines()


def test_conditions_with_status_functions_and_needs_results_as_github_decides(tmp_path: Path) -> None:
    # The emulation stopped a job at its first failing step (no `if: failure()` step ran) and
    # skipped every job whose needed job had not succeeded, `if: always()` or not.
    jobs = """\
        reproduce:
          runs-on: ubuntu-latest
          steps:
            - run: exit 3
            - name: after the failure
              if: failure()
              run: echo "failure() holds"
            - name: never
              run: echo "a step after a failure ran"
        report:
          needs: reproduce
          if: github.event_name == 'pull_request'
          runs-on: ubuntu-latest
          steps:
            - run: echo report
        summary:
          needs: reproduce
          if: always()
          runs-on: ubuntu-latest
          steps:
            - name: result
              run: echo "reproduce ${{ needs.reproduce.result }}"
        """
    run = workflow_run(tmp_path, jobs, Event("pull_request", "main", 7, "feature"))

    assert run.outcomes == {"reproduce": "failure", "report": "skipped", "summary": "success"}, run.log
    assert run.returncode != 0
    assert step_output(run, "reproduce", "after the failure") == ["failure() holds"]
    assert "a step after a failure ran" not in run.log
    assert step_output(run, "summary", "result") == ["reproduce failure"]


def test_file_commands_the_requested_python_a_terminal_and_no_file_of_the_repository(tmp_path: Path) -> None:
    # The emulation had no GITHUB_ENV or GITHUB_OUTPUT, gave every `python-version` this machine's
    # python3, and ran steps on pipes.
    jobs = f"""\
        first:
          runs-on: ubuntu-latest
          outputs:
            greeting: ${{{{ steps.greet.outputs.greeting }}}}
          steps:
            - uses: {SETUP_PYTHON}
              with:
                python-version: "3.13"
            - id: greet
              run: |
                echo "FROM_A_STEP=set" >> "$GITHUB_ENV"
                echo "greeting=hello" >> "$GITHUB_OUTPUT"
            - name: environment
              run: |
                python -c 'import sys; print("python", *sys.version_info[:2])'
                echo "env ${{FROM_A_STEP}} ${{FROM_THE_REPOSITORY_DOT_ENV:-unset}} ACT=${{ACT:-unset}}"
                if [ -t 1 ]; then echo "stdout is a terminal"; fi
                if [ -e "$HOME/.config/act" ]; then echo "act's own files in the job's HOME"; fi
        second:
          needs: first
          runs-on: [ubuntu-24.04]  # any label runs here: one act is not told of would skip the job
          steps:
            - name: needs
              run: echo "${{{{ needs.first.outputs.greeting }}}}"
        """
    run = workflow_run(tmp_path, jobs)

    assert run.outcomes == {"first": "success", "second": "success"}, run.log
    # act runs a step under a pseudo-terminal (pkg/container/host_environment.go: "allocate
    # Terminal" always), GitHub's runner on pipes: tools print colours and progress bars here.
    assert step_output(run, "first", "environment") == ["python 3 13", "env set unset ACT=true", "stdout is a terminal"]
    assert step_output(run, "second", "needs") == ["hello"]


def test_artifacts_pass_between_jobs_through_the_runtime_given_to_actions_only(tmp_path: Path) -> None:
    # act puts ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL in every step's environment when it
    # serves artifacts itself; GitHub's runner gives them to actions only, and so does this one.
    # The emulation copied the directory, hidden files included; upload-artifact leaves them out.
    jobs = f"""\
        reproduce:
          runs-on: ubuntu-latest
          steps:
            - name: report
              run: |
                mkdir -p report/plots && echo "mse 0.1" > report/report.md && echo "<svg/>" > report/plots/a.svg
                echo "not for the artifact" > report/.hidden
                echo "runtime: ${{ACTIONS_RUNTIME_TOKEN:-none}} ${{ACTIONS_RESULTS_URL:-none}}"
            - uses: {UPLOAD}
              with:
                name: the-report
                path: report/
                if-no-files-found: error
        post:
          needs: reproduce
          runs-on: ubuntu-latest
          steps:
            - uses: {DOWNLOAD}
              with:
                name: the-report
                path: got
            - name: files
              run: find got -type f | sort && cat got/report.md
        """
    run = workflow_run(tmp_path, jobs)

    assert run.outcomes == {"reproduce": "success", "post": "success"}, run.log
    assert step_output(run, "reproduce", "report") == ["runtime: none none"]
    assert step_output(run, "post", "files") == ["got/plots/a.svg", "got/report.md", "mse 0.1"]


@pytest.fixture
def comments_api() -> Iterator[ReviewApi]:
    api = ReviewApi("github", REPOSITORY, 7)
    api.start()
    try:
        yield api
    finally:
        api.stop()


def test_one_token_for_the_run_and_the_api_gives_each_job_its_permissions(tmp_path: Path, comments_api: ReviewApi) -> None:
    # GitHub mints a token per job; act gives the run's one token to every job (`-s GITHUB_TOKEN`).
    post = """\
          steps:
            - name: post
              env:
                GITHUB_TOKEN: ${{ github.token }}
              run: |
                echo "token $(printf %s "$GITHUB_TOKEN" | sha256sum | cut -c1-16)"
                curl -s -o /dev/null -w "status %{http_code}\\n" -X POST -H "Authorization: Bearer $GITHUB_TOKEN" \\
                  -H "Content-Type: application/json" -d '{"body": "from ${{ github.job }}"}' \\
                  "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/issues/7/comments"
        """
    steps = textwrap.indent(textwrap.dedent(post), "  ")
    jobs = "".join(
        f"{job}:\n  runs-on: ubuntu-latest\n  permissions:\n    pull-requests: {level}\n{steps}"
        for job, level in (("reader", "read"), ("writer", "write"))
    )
    may_write = {"reader": False, "writer": True}
    token = comments_api.issue_github_token(may_write)

    run = workflow_run(tmp_path, jobs, github_token=token, api_url=comments_api.api_url)

    assert run.outcomes == {"reader": "success", "writer": "success"}, run.log
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    assert step_output(run, "reader", "post") == [f"token {digest}", "status 403"]
    assert step_output(run, "writer", "post") == [f"token {digest}", "status 201"]
    assert [comment.body for comment in comments_api.comments.values()] == ["from writer"]


@pytest.mark.parametrize(("head", "expected"), [(REPOSITORY, "a secret"), ("someone/fork-of-it", "no secret")])
def test_a_pull_request_from_a_fork_gets_no_secret(tmp_path: Path, head: str, expected: str) -> None:
    jobs = """\
        reproduce:
          runs-on: ubuntu-latest
          steps:
            - name: secret
              env:
                KEY: ${{ secrets.KEY }}
              run: if [ -n "$KEY" ]; then echo "a secret"; else echo "no secret"; fi
        """
    run = workflow_run(tmp_path, jobs, Event("pull_request", "main", 7, "feature", head), secrets_={"KEY": "k3y"})

    assert step_output(run, "reproduce", "secret") == [expected]


@pytest.mark.parametrize(
    ("uses", "refusal"),
    [
        ("actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830", "no stand-in in localcloud/actions"),
        (f"{CHECKOUT.split('@')[0]}@v7", "the stand-in is for 3d3c42e5aac5ba805825da76410c181273ba90b1 (v7.0.1)"),
    ],
)
def test_an_action_without_stand_in_or_at_another_commit_stops_the_run_before_act(
    tmp_path: Path, uses: str, refusal: str
) -> None:
    jobs = f"reproduce:\n  runs-on: ubuntu-latest\n  steps:\n    - uses: {uses}\n"

    with pytest.raises(RunnerError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        workflow_run(tmp_path, jobs)

    assert not (tmp_path / "runner" / "act-cache").exists(), "act started"


def test_a_stand_in_refuses_an_input_in_a_real_run(tmp_path: Path) -> None:
    jobs = f"""\
        reproduce:
          runs-on: ubuntu-latest
          steps:
            - uses: {SETUP_PYTHON}
              with:
                python-version: "3.13"
                cache: pip
        """
    run = workflow_run(tmp_path, jobs)

    assert run.outcomes == {"reproduce": "failure"}
    assert "input 'cache' is not implemented by this stand-in" in run.log
