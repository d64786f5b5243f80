"""CI files rendered from the readable templates in `templates/`, byte-identical on every run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jinja2

from mlops_ci.settings.loader import Settings
from mlops_ci.settings.rules import ID_TOKEN_VARIABLE, PROVIDER_VARIABLE, REPORT_TOKEN_VARIABLE, SERVICE_ACCOUNT_VARIABLE

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


# The DVC remote the job adds (in .dvc/config.local) for the stack's bucket.
REMOTE_NAME = "mlops-ci"
# The uv release the job installs (with pip) to install the requirements.
UV_VERSION = "0.13.8"
# Where the job writes the report (pull and merge requests, `mlops-ci:report`): report.md and plots/.
REPORT_DIRECTORY = "mlops-ci-report"
# Access presets whose grant lets the job write to the bucket: its CI file pushes on the branch.
PUSHING_ACCESS = ("push", "admin")


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
        remote_name=REMOTE_NAME,
        uv_version=UV_VERSION,
        pushes=settings.access in PUSHING_ACCESS,
        python_version=settings.python_version,
        requirements_file=settings.requirements_file,
        auth=settings.auth,
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
