# mlops-ci writes here which of its versions wrote this file, for which stack, and that `pulumi up` overwrites it.
"""The steps of the CI job that reproduces this repository's DVC pipeline, called by the stack's CI
file as `python3 JOB_SCRIPT <step>` (JOB_SCRIPT and CI_FILE below). A step that fails says why and what to do.

  login        (GitLab) the credential file Google's client reads, from the job's CI/CD variables
  check-login  one token request: a credential Google refuses fails here, in seconds
  repro        the bucket holds this commit's data? then `dvc repro --pull`
  push         `dvc push --run-cache`: what the stages produced, for the next run and every clone
  report       parameters, metrics and plots against the target branch, for the pull or merge request
  comment      the report as one comment on the pull or merge request, updated on every push
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

# The stack's settings: `pulumi up` writes them here.
STACK = "team-a"
PLATFORM = "github"
REMOTE_NAME = "mlops-ci"
REMOTE_URL = "gs://acme-ml-test-team-a-dvc/dvcstore"
REQUIREMENTS_FILE = "requirements-freeze.txt"
KEYLESS = False
IMPERSONATION = False
SECRET_NAME = "GOOGLE_SERVICE_ACCOUNT_KEY"
PROTECTED_VARIABLE = False
CI_FILE = ".github/workflows/mlops.yaml"
JOB_SCRIPT = ".mlops-ci/team-a.py"
BRANCH = "main"
ID_TOKEN_VARIABLE = "GCP_ID_TOKEN"
PROVIDER_VARIABLE = "GCP_WORKLOAD_IDENTITY_PROVIDER"
SERVICE_ACCOUNT_VARIABLE = "GCP_SERVICE_ACCOUNT"
REPORT_DIRECTORY = "mlops-ci-report"
REPORT_MARKER = "<!-- mlops-ci report: stack team-a -->"
REPORT_TOKEN_VARIABLE = "MLOPS_CI_REPORT_TOKEN"
# End of the stack's settings.

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
# Google honours a new federation some minutes after `pulumi up` set it up: until then it refuses
# the job's token (403), and the check asks again, 7 minutes at most.
FEDERATION_PAUSES = (10, 20, 30, 60, 60, 60, 60, 60, 60, 0)


class JobError(Exception):
    """A step that cannot go on: the message says why and what to do."""


def requirement(module: str, brings: str = "dvc[gs]") -> ModuleType:
    """A module the requirements file must install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise JobError(f"ERROR: {error}: {REQUIREMENTS_FILE} must bring {brings}") from None


# --- login (GitLab) ---------------------------------------------------------------------------


def variable(name: str) -> str:
    """A CI/CD variable the stack created, or an error that says why the pipeline lacks it."""
    value = os.environ.get(name, "")
    if value:
        return value
    # A merge request's pipeline runs in the project of its source branch: a fork's, without the variables.
    if os.environ.get("CI_MERGE_REQUEST_PROJECT_ID", os.environ.get("CI_PROJECT_ID")) != os.environ.get("CI_PROJECT_ID"):
        raise JobError(
            f"ERROR: this merge request's pipeline runs in the fork it comes from, which has none of the stack {STACK}'s"
            f" CI/CD variables ({name}): a maintainer of the target project can run it there (the merge request's"
            " Pipelines tab, Run pipeline)."
        )
    why = (
        f"ERROR: this pipeline has no CI/CD variable {name}. The stack {STACK} creates it on `pulumi up` and deletes it"
        f" on `pulumi destroy`, with {CI_FILE} on {BRANCH}: the stack was destroyed (this pipeline runs an older"
        f" commit) or the variable was deleted by hand. `pulumi up` for the stack {STACK} creates it again."
    )
    if PROTECTED_VARIABLE and name == SECRET_NAME:
        why += "\nIt is protected (mlops-ci:protectedVariable): GitLab gives it to protected branches and tags only."
    raise JobError(why)


def write_private(path: Path, text: str) -> None:
    """`text` in a file only the job's user can read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def federation_configuration(directory: Path) -> str:
    """An external-account credential configuration: google-auth exchanges the job's ID token
    (written beside it) with Google's STS for a token of this project's own identity, which the
    bucket trusts; with a service account (IMPERSONATION), it then acts as that account."""
    token = directory / "id-token.jwt"
    if not os.environ.get(ID_TOKEN_VARIABLE):
        raise JobError(f"ERROR: this job has no ID token {ID_TOKEN_VARIABLE}: the id_tokens section of {CI_FILE} requests it")
    write_private(token, os.environ[ID_TOKEN_VARIABLE])
    configuration = {
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{variable(PROVIDER_VARIABLE)}",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"file": str(token)},
    }
    if IMPERSONATION:
        configuration["service_account_impersonation_url"] = (
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            f"{variable(SERVICE_ACCOUNT_VARIABLE)}:generateAccessToken"
        )
    return json.dumps(configuration)


def login() -> None:
    """The credential file at GOOGLE_APPLICATION_CREDENTIALS (outside the project directory, so
    never cached, archived or committed): the key from its CI/CD variable, or keyless the ID token."""
    path = Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if KEYLESS:
        write_private(path, federation_configuration(path.parent))
    else:
        write_private(path, base64.b64decode(variable(SECRET_NAME)).decode())


# --- check-login --------------------------------------------------------------------------------


def refresh_federated(auth: ModuleType, exceptions: ModuleType) -> None:
    """A token for the workload identity, asking again while Google does not honour it yet."""
    identity_pool = requirement("google.auth.identity_pool", "dvc[gs] (and with it google-auth)")
    credentials = identity_pool.Credentials.from_file(os.environ["GOOGLE_APPLICATION_CREDENTIALS"], scopes=[READ_ONLY_SCOPE])
    for pause in FEDERATION_PAUSES:
        try:
            credentials.refresh(auth.transport.requests.Request())
            return
        except exceptions.RefreshError as refused:
            if not pause or "PERMISSION_DENIED" not in str(refused):
                raise
            what = "let this job act as the service account" if IMPERSONATION else "honour this job's identity"
            print(f"Google does not {what} yet: again in {pause} s", flush=True)
            time.sleep(pause)


def check_login() -> None:
    """One token request with the job's credential, as DVC will make it."""
    brings = "dvc[gs] (and with it google-auth)"
    auth = requirement("google.auth", brings)
    exceptions = requirement("google.auth.exceptions", brings)
    requirement("google.auth.transport.requests", brings)
    try:
        if KEYLESS:
            refresh_federated(auth, exceptions)
        else:
            credentials, _ = auth.default(scopes=[READ_ONLY_SCOPE])
            credentials.refresh(auth.transport.requests.Request())
    except exceptions.GoogleAuthError as error:
        reason = error.args[0] if error.args else error
        if KEYLESS:
            noun = "repository" if PLATFORM == "github" else "project"
            raise JobError(
                f"ERROR: no Google Cloud token for the workload identity of this job: {reason}\nRun pulumi up for the"
                f" stack {STACK}: it sets the pool, its provider (for this {noun} only) and the grant."
            ) from None
        holder = f"the secret {SECRET_NAME}" if PLATFORM == "github" else f"the CI/CD variable {SECRET_NAME}"
        raise JobError(
            f"ERROR: no Google Cloud token for the key in {holder}: {reason}\nGoogle refuses a key deleted, rotated away"
            f" or of another stack: pulumi up for the stack {STACK} puts the current key there."
        ) from None


# --- repro and push -----------------------------------------------------------------------------


def use_the_stacks_remote() -> None:
    """The stack's bucket as the default DVC remote, whatever remote .dvc/config names: set in
    .dvc/config.local (git ignores it) as `dvc remote add --local --force --default` sets it."""
    section = f'[remote "{REMOTE_NAME}"]'
    Path(".dvc/config.local").write_text(f"[core]\n    remote = {REMOTE_NAME}\n{section}\n    url = {REMOTE_URL}\n")


def data_not_in_remote() -> list[str]:
    """What this commit's .dvc files and dvc.lock name and the bucket lacks, file by file (inside
    directories too), found without downloading anything."""
    repo = requirement("dvc.repo")
    try:
        with repo.Repo() as dvc_repo:
            # What the bucket holds, asked anew (as `dvc data status --not-in-remote` asks by default).
            status = dvc_repo.data_status(not_in_remote=True, remote_refresh=True, granular=True)
            return list(status["not_in_remote"])
    except Exception as error:  # noqa: BLE001 - any failure of the check is one message, not a traceback
        raise JobError(f"ERROR: DVC could not compare this commit's data with {REMOTE_URL}: {error}") from None


def dvc(*args: str) -> int:
    """DVC's command line, in this process: DVC starts once per job step."""
    return int(requirement("dvc.cli").main(list(args)))


def repro() -> int:
    """The data check, then the stages whose inputs changed, with only the data they read."""
    use_the_stacks_remote()
    missing = data_not_in_remote()
    if missing:
        raise JobError(
            "\n".join(
                [
                    f"ERROR: {REMOTE_URL} lacks data this commit names (in its .dvc files and dvc.lock):",
                    *missing,
                    "A first run? Push it once from a clone that has it:",
                    f"  dvc remote add --local --force {REMOTE_NAME} {REMOTE_URL} && dvc push --remote {REMOTE_NAME}",
                ]
            )
        )
    # Stages whose only change is data missing here are skipped, not downloaded.
    return dvc("repro", "--pull", "--allow-missing")


def push() -> int:
    """What the re-run stages produced, and their run-cache entries: the next run and every clone
    restore them instead of running the stages again."""
    code = dvc("push", "--run-cache")
    if code:
        print(f"ERROR: dvc push to {REMOTE_URL} failed (above); the stack {STACK} grants pushes with access push or admin.")
    return code


# --- report -----------------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def dvc_output(*args: str) -> str:
    """What a DVC command prints (a separate process: DVC writes to the stream it started with)."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], check=False, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        raise JobError(f"ERROR: dvc {' '.join(args)} failed (above)")
    return result.stdout.strip()


def report_base() -> tuple[str, str]:
    """The revision the report compares with, and where the platform shows this job's artifact."""
    if PLATFORM == "github":
        # The checkout fetched the whole history, the target branch included.
        job = f"{os.environ['GITHUB_SERVER_URL']}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        return f"origin/{BRANCH}", job
    # A merge request's pipeline fetched only its own commits.
    target = os.environ["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"]
    git("fetch", "--quiet", "origin", f"+refs/heads/{target}:refs/remotes/origin/{target}")
    return f"origin/{target}", f"{os.environ['CI_JOB_URL']}/artifacts/browse/{REPORT_DIRECTORY}/"


def report() -> None:
    """report.md (its first line marks the one comment it becomes) and the plots as HTML, in
    REPORT_DIRECTORY: the platform keeps them as the job's artifact, nothing goes elsewhere."""
    base, job = report_base()
    directory = Path(REPORT_DIRECTORY)
    directory.mkdir(exist_ok=True)
    params = dvc_output("params", "diff", base, "--md")
    metrics = dvc_output("metrics", "diff", base, "--md")
    dvc_output("plots", "diff", base, "--out", str(directory / "plots"))
    plots = (
        f"The plots of both commits: `plots/index.html` in the artifact of [the job]({job})."
        if (directory / "plots" / "index.html").exists()
        else "The pipeline declares no plots."
    )
    head, at = git("rev-parse", "--short", "HEAD"), git("rev-parse", "--short", base)
    (directory / "report.md").write_text(
        f"{REPORT_MARKER}\n\n### Experiment results\n\n"
        f"Commit `{head}` reproduced by mlops-ci (stack {STACK}), against `{base.removeprefix('origin/')}` at `{at}`.\n\n"
        f"#### Parameters\n\n{params or 'No parameter changed.'}\n\n"
        f"#### Metrics\n\n{metrics or 'No metric changed.'}\n\n"
        f"#### Plots\n\n{plots}\n"
    )


# --- comment ----------------------------------------------------------------------------------

# The most comments the platforms list per page.
PAGE = 100


def written_by_this_token(headers: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Whether a comment was written with this job's token: anyone may start a comment with the
    marker, and only the job's own comment is the report (another's cannot be edited anyway)."""
    if PLATFORM == "github":
        # The job's token writes as the GitHub Actions app; GitHub answers its GET /user with 403.
        return lambda c: str(c.get("user") and c["user"]["login"]) == "github-actions[bot]"  # no user: a deleted account
    me = call("GET", f"{os.environ['CI_API_V4_URL']}/user", headers)["id"]
    return lambda c: c["author"]["id"] == me


def comment_routes() -> tuple[str, str, str, dict[str, str]]:
    """The request's comments (list and create), one comment's prefix, its update method, and the
    token's header: GitHub's token of this job, or the report's project access token on GitLab."""
    if PLATFORM == "github":
        issues = f"{os.environ['GITHUB_API_URL']}/repos/{os.environ['GITHUB_REPOSITORY']}/issues"
        headers = {"Authorization": f"Bearer {os.environ['GITHUB_TOKEN']}"}
        return f"{issues}/{os.environ['PULL_REQUEST']}/comments", f"{issues}/comments/", "PATCH", headers
    project = f"{os.environ['CI_API_V4_URL']}/projects/{os.environ['CI_PROJECT_ID']}"
    notes = f"{project}/merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}/notes"
    return notes, f"{notes}/", "PUT", {"PRIVATE-TOKEN": variable(REPORT_TOKEN_VARIABLE)}


def call(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Any:
    """One request to the platform's API, its JSON answer; a refusal says which and why."""
    request = urllib.request.Request(url, body, headers | {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise JobError(f"ERROR: {method} {url}: {error.code} {error.read().decode(errors='replace')}") from None


def comment() -> None:
    """The job's own comment that starts with the report's marker updated, or created on the first run."""
    comments, one, update, headers = comment_routes()
    own = written_by_this_token(headers)
    body = json.dumps({"body": Path(REPORT_DIRECTORY, "report.md").read_text()}).encode()
    page = 0
    while True:
        page += 1
        listed: list[dict[str, Any]] = call("GET", f"{comments}?per_page={PAGE}&page={page}", headers)
        mine = [str(c["id"]) for c in listed if own(c) and str(c["body"]).startswith(REPORT_MARKER)]
        if mine:
            call(update, f"{one}{mine[0]}", headers, body)
            print(f"Report updated: {one}{mine[0]}")
            return
        if len(listed) < PAGE:
            call("POST", comments, headers, body)
            print(f"Report posted: {comments}")
            return


STEPS = {
    "login": login,
    "check-login": check_login,
    "repro": repro,
    "push": push,
    "report": report,
    "comment": comment,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python3 {JOB_SCRIPT} {{{','.join(STEPS)}}}", file=sys.stderr)
        return 2
    try:
        return STEPS[argv[0]]() or 0
    except JobError as error:
        print(error, file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
