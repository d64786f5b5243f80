"""The files the stack commits, rendered from `templates/`, byte-identical on every run: the CI file
(the guide's steps, each calling DVC or the job script) and the job script (the steps' logic)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jinja2

from mlops_ci import __version__
from mlops_ci.settings.loader import Settings
from mlops_ci.settings.rules import (
    ID_TOKEN_VARIABLE,
    JOB_SCRIPT_FOLDER,
    PROVIDER_VARIABLE,
    REPORT_TOKEN_VARIABLE,
    SERVICE_ACCOUNT_VARIABLE,
)

TEMPLATES = Path(__file__).parent / "templates"

# GitHub (`${{ }}`) and GitLab (`$VAR`) syntax stays literal, and so does the shell's `${#var}`:
# template fields use [[ ]] and [% %], template comments [# #].
_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
    variable_start_string="[[",
    variable_end_string="]]",
    block_start_string="[%",
    block_end_string="%]",
    comment_start_string="[#",
    comment_end_string="#]",
)
# A double-quoted JSON string is a valid YAML scalar, whatever it holds.
_environment.filters["yaml"] = json.dumps
# A shell word: the value quoted when it holds anything but safe characters.
_environment.filters["sh"] = shlex.quote


# The DVC remote of the stack's bucket: what `nextSteps` adds to .dvc/config, the job to
# .dvc/config.local, and every hint names.
REMOTE_NAME = "mlops-ci"
# The uv release the job installs (with pip) to install the requirements.
UV_VERSION = "0.13.8"
# Where the job writes the report (pull and merge requests, `mlops-ci:report`): report.md and plots/.
REPORT_DIRECTORY = "mlops-ci-report"
# The lines around the stack's settings in templates/job.py.
SETTINGS_START = "# The stack's settings: `pulumi up` writes them here."
SETTINGS_END = "# End of the stack's settings."
# Access presets whose grant lets the job write to the bucket: its CI file pushes on the branch.
PUSHING_ACCESS = ("push", "admin")


def job_script_path(stack: str) -> str:
    """Where the stack's job script goes in the team's repository: one per stack, so two stacks on one
    branch (each with its own CI file) never share or delete each other's. Stack names are
    [A-Za-z0-9_.-]: with `.py` after it, never `.`, `..` or a folder."""
    return f"{JOB_SCRIPT_FOLDER}/{stack}.py"


def report_marker(stack: str) -> str:
    """The first line of the stack's report: how the job finds its own comment to update."""
    return f"<!-- mlops-ci report: stack {stack} -->"


def render_ci_file(settings: Settings) -> str:
    """The CI file the stack commits for `settings.platform`."""
    template = _environment.get_template(settings.platform.template)
    return template.render(
        stack=settings.stack,
        branch=settings.branch,
        dvc_remote_url=settings.dvc_remote_url,
        job_script=job_script_path(settings.stack),
        version=__version__,
        uv_version=UV_VERSION,
        pushes=settings.access in PUSHING_ACCESS,
        python_version=settings.python_version,
        requirements_file=settings.requirements_file,
        auth=settings.auth,
        impersonation=settings.keyless and not settings.direct,
        secret_name=settings.secret_name,
        environment=settings.github_environment,
        provider_variable=PROVIDER_VARIABLE,
        service_account_variable=SERVICE_ACCOUNT_VARIABLE,
        id_token_variable=ID_TOKEN_VARIABLE,
        report=settings.report,
        report_token_variable=REPORT_TOKEN_VARIABLE,
        report_directory=REPORT_DIRECTORY,
        report_marker=report_marker(settings.stack),
        oidc_audience=settings.oidc_audience,
    )


def job_script_header(stack: str, version: str = __version__) -> str:
    """The job script's first line: who wrote it, and that `pulumi up` overwrites it."""
    return f"# Written by mlops-ci {version} for the stack {stack}: `pulumi up` overwrites it, so change the stack instead."


def is_job_script_of(first_line: str, stack: str) -> bool:
    """Whether a file's first line is the one mlops-ci (any version) writes in `stack`'s job script:
    pre-flight lets `pulumi up` overwrite that file, and no other."""
    version = re.fullmatch(r"# Written by mlops-ci (\S+) for the stack .*", first_line.rstrip("\r\n"))
    return version is not None and first_line.rstrip("\r\n") == job_script_header(stack, version[1])


def render_job_script(settings: Settings) -> str:
    """The job script the stack commits: templates/job.py with its first line and its settings block
    (between the markers) written for `settings`."""
    values: dict[str, str | bool] = {
        "STACK": settings.stack,
        "PLATFORM": settings.platform.name,
        "REMOTE_NAME": REMOTE_NAME,
        "REMOTE_URL": settings.dvc_remote_url,
        "REQUIREMENTS_FILE": settings.requirements_file,
        "KEYLESS": settings.keyless,
        "IMPERSONATION": settings.keyless and not settings.direct,
        "SECRET_NAME": settings.secret_name,
        "PROTECTED_VARIABLE": settings.protected_variable,
        "CI_FILE": settings.ci_file,
        "JOB_SCRIPT": job_script_path(settings.stack),
        "BRANCH": settings.branch,
        "ID_TOKEN_VARIABLE": ID_TOKEN_VARIABLE,
        "PROVIDER_VARIABLE": PROVIDER_VARIABLE,
        "SERVICE_ACCOUNT_VARIABLE": SERVICE_ACCOUNT_VARIABLE,
        "REPORT_DIRECTORY": REPORT_DIRECTORY,
        "REPORT_MARKER": report_marker(settings.stack),
        "REPORT_TOKEN_VARIABLE": REPORT_TOKEN_VARIABLE,
    }
    source = (TEMPLATES / "job.py").read_text().splitlines(keepends=True)
    start, end = source.index(f"{SETTINGS_START}\n"), source.index(f"{SETTINGS_END}\n")
    template_names = [line.split(" = ", 1)[0] for line in source[start + 1 : end]]
    if template_names != list(values):
        raise ValueError(f"templates/job.py sets {template_names}, the renderer {list(values)}")
    # A JSON string is a Python string literal, whatever it holds.
    lines = [f"{name} = {value if isinstance(value, bool) else json.dumps(value)}\n" for name, value in values.items()]
    return "".join([job_script_header(settings.stack) + "\n", *source[1 : start + 1], *lines, *source[end:]])
