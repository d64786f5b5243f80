"""What a team does once after `pulumi up`, as the commands to run in its repository."""

from __future__ import annotations

from mlops_ci.ci.files import REMOTE_NAME, job_script_path
from mlops_ci.settings.loader import Settings


def data_step(settings: Settings, adopted_bucket: bool) -> str:
    """What the team does about the data: the bucket may hold it already."""
    if settings.uses_existing_bucket:
        return (
            "# The CI job already reads the data there; check that the remote holds everything the pipeline needs:\n"
            "dvc data status --not-in-remote"
        )
    if adopted_bucket:
        return (
            "# The bucket is the one this stack kept on `pulumi destroy`, with the data pushed then:"
            " upload what it lacks (nothing, if it holds everything):\ndvc push"
        )
    return "# The bucket is new and empty: upload the data and outputs the CI job will pull:\ndvc push"


def next_steps(settings: Settings, adopted_bucket: bool = False) -> str:
    remote = settings.dvc_remote_url
    setting = settings.platform.ci_file_setting(settings.ci_file)
    return "\n".join(
        [
            *([f"# First: {setting}."] if setting else []),
            # The stack committed the CI file to the branch: a clone made before cannot push without it.
            f"# In your clone of {settings.repository} that holds the data, on branch {settings.branch}:"
            f" first the CI file and its job script ({job_script_path(settings.stack)}) the stack committed there.",
            "git pull --ff-only",
            f"# Then make {remote} the default DVC remote.",
            f"dvc remote add --default --force {REMOTE_NAME} {remote}",
            data_step(settings, adopted_bucket),
            "git add .dvc/config",
            # Nothing to commit when the committed .dvc/config already names this remote.
            f"git diff --cached --quiet || git commit -m 'DVC remote: {remote}'",
            "git push",
            f"# Then follow the runs at {settings.platform.runs_url(settings)}",
        ]
    )
