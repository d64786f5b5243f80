"""`mlops-ci:index:TeamCi` for Pulumi programs in other languages (YAML, TypeScript, Go...), hosted by
package/ (a source-based component package: `pulumi package add <checkout>/package`).

Its inputs are the configuration keys (`mlops_ci/settings/config.yaml`, tests keep the two in step),
the Google Cloud project as `gcpProject`. It builds the settings from them with the same parse,
validation and derivation as a stack file (every problem in one error), runs the same pre-flight,
then the same children as the Python `TeamCi` (`mlops_ci.components.team.build_chapter`). The
component's name stands for the stack name of a stack file (derived names, labels, the job script's
path). The platform's token comes as for a stack: the program's `github:token` / `gitlab:token`
config, or GITHUB_TOKEN / GITLAB_TOKEN.

No `from __future__ import annotations` here: Pulumi's analyzer reads the annotations as types.
"""

from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_gcp as gcp
from pulumi.runtime import config as runtime_config

from mlops_ci.components.team import Children, build_chapter
from mlops_ci.platforms import PLATFORMS
from mlops_ci.preflight import preflight
from mlops_ci.settings.loader import load_settings
from mlops_ci.settings.model import ConfigError, Settings
from mlops_ci.settings.rules import escaped, stack_name_problem
from mlops_ci.settings.schema import NAMESPACE, SCHEMA

# What the program's own config may add, as in a stack file: the platform's token and API.
PASSED_THROUGH = tuple(f"{platform}:{key}" for platform in PLATFORMS for key in ("token", "baseUrl"))
KEY_TYPES = {f"{NAMESPACE}:{key.name}": key.type for key in SCHEMA.keys}


class TeamCiArgs(TypedDict):
    """One team's configuration: the keys of a stack file (`mlops-ci:<key>`, `gcp:project`), each a
    plain value known before any resource (not another resource's output)."""

    gcp_project: pulumi.Input[str]
    """Google Cloud project id."""
    platform: pulumi.Input[str]
    """CI platform: github or gitlab."""
    repository: pulumi.Input[str]
    """GitHub owner/name, or GitLab group[/subgroup...]/project."""
    branch: NotRequired[pulumi.Input[str]]
    """Branch the CI file is committed to and that triggers the run."""
    existing_bucket: NotRequired[pulumi.Input[str]]
    """The team's existing bucket as the DVC remote (the guide's chapter 2.2 bucket): the stack only grants on it and
    never changes or deletes it; empty creates the stack's own bucket."""
    bucket_name: NotRequired[pulumi.Input[str]]
    """DVC remote bucket; empty derives <gcp project>-<stack>-dvc."""
    bucket_location: NotRequired[pulumi.Input[str]]
    """Bucket location."""
    dvc_remote_path: NotRequired[pulumi.Input[str]]
    """Path inside the bucket: the remote is gs://<bucket>/<path>."""
    service_account_id: NotRequired[pulumi.Input[str]]
    """CI service account id; empty derives dvc-ci-<stack>."""
    access: NotRequired[pulumi.Input[str]]
    """Bucket access of CI: pull (objectViewer), push (pull + objectCreator) or admin (objectAdmin)."""
    auth: NotRequired[pulumi.Input[str]]
    """Credential: workload-identity (keyless: the CI run's own token, nothing to leak or rotate) or key (a
    service-account key in a secret); empty: workload-identity on github.com and gitlab.com, key with a base URL of a
    self-managed instance."""
    keyless_mode: NotRequired[pulumi.Input[str]]
    """Keyless only: direct (the bucket roles go to this repository's federated identity, no service account) or
    impersonation (CI acts as a service account: VPC Service Controls, signed URLs, tools that want a service
    account's token); empty: direct."""
    workload_identity_provider: NotRequired[pulumi.Input[str]]
    """Keyless only: an existing provider of the stack's project
    (projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>) the platform team shares:
    the stack creates no pool, and grants to this repository only; empty: the stack creates its own."""
    secret_name: NotRequired[pulumi.Input[str]]
    """Name of the GitHub Actions secret / GitLab CI/CD variable holding the key."""
    ci_file: NotRequired[pulumi.Input[str]]
    """Path of the committed CI file; empty means .github/workflows/mlops.yaml (GitHub) or .gitlab-ci.yml (GitLab)."""
    python_version: NotRequired[pulumi.Input[str]]
    """Python version used by the CI job."""
    requirements_file: NotRequired[pulumi.Input[str]]
    """Requirements file the CI job installs (the guide freezes them into requirements-freeze.txt); it must bring
    dvc[gs]."""
    key_rotation: NotRequired[pulumi.Input[str]]
    """Change the value to rotate the service-account key (and, with report on GitLab, the report token)."""
    protect_bucket: NotRequired[pulumi.Input[bool]]
    """Keep the bucket and its data when the stack is destroyed."""
    protected_variable: NotRequired[pulumi.Input[bool]]
    """GitLab only: make the key variable protected (visible to protected branches and tags only)."""
    github_environment: NotRequired[pulumi.Input[str]]
    """GitHub only, auth key: keep the key secret in this deployment environment, open to branch only; empty keeps it a
    repository secret (environments need a paid plan on private repositories)."""
    trust_branch_only: NotRequired[pulumi.Input[bool]]
    """Keyless: trust CI tokens of runs on branch only; runs of pull or merge requests and other branches get no Google
    credentials."""
    report: NotRequired[pulumi.Input[bool]]
    """Report each experiment's results (parameters, metrics, plots against the target branch) as one comment on the
    pull request or merge request, updated on every push; GitLab: the stack creates the project access token that posts
    it."""
    hidden_variable: NotRequired[pulumi.Input[bool]]
    """GitLab only: create the key variable (and the report token's) masked and hidden, so no one can reveal it in the
    UI (GitLab 17.4+; false for older self-managed instances)."""


def config_key(field: str) -> str:
    """The stack-file key of an input (`bucket_name` -> `mlops-ci:bucketName`)."""
    if field == "gcp_project":
        return "gcp:project"
    head, *rest = field.split("_")
    return f"{NAMESPACE}:{head}{''.join(word.title() for word in rest)}"


def input_problems(field: str, value: object) -> list[str]:
    """What a stack file could not hold: an output or secret (not known before any resource), or a
    value of another type than the key's (an unquoted `3.10` arrives as the number 3.1)."""
    key = config_key(field)
    if isinstance(value, pulumi.Output):
        return [f"{key}: a plain value, known before any resource (not a secret nor an output)"]
    wanted = bool if KEY_TYPES.get(key) == "boolean" else str
    if not isinstance(value, wanted):
        text = "text (quote it)" if wanted is str else "true or false"
        return [f"{key} = {value!r}: a {type(value).__name__}, where the key takes {text}"]
    return []


def settings_of(name: str, args: dict[str, Any]) -> Settings:
    """The settings a stack file with these keys would give the stack `name`: every problem in one
    `ConfigError`. The component's config replaces the program's (its own keys plus the platform's
    token and API), as the CLI hands a stack file's to the program."""
    broken_name = stack_name_problem(name)
    problems = [f"component name {escaped(name)}: it stands for the stack name; {broken_name}"] if broken_name else []
    problems += [problem for field, value in args.items() for problem in input_problems(field, value)]
    config = {
        config_key(field): str(value).lower() if isinstance(value, bool) else str(value)
        for field, value in args.items()
        if not isinstance(value, pulumi.Output)
    }
    given = runtime_config.CONFIG.get()
    passed = {key: given[key] for key in PASSED_THROUGH if key in given}
    runtime_config.set_all_config(config | passed, [key for key in passed if runtime_config.is_config_secret(key)])
    try:
        settings = load_settings("component" if broken_name else name)  # the other problems, under a valid name
    except ConfigError as error:
        raise ConfigError(name, problems + error.problems) from None
    if problems:
        raise ConfigError(name, problems)
    return settings


class TeamCi(pulumi.ComponentResource):
    """One team's chapter 2.3: its DVC remote on Google Cloud Storage, its CI identity (a key or keyless), the
    credential on GitHub or GitLab and the committed CI file. Outputs are a stack's exports."""

    bucket_name: pulumi.Output[str]
    """The DVC remote bucket."""
    bucket_url: pulumi.Output[str]
    """gs://<bucket>."""
    dvc_remote_url: pulumi.Output[str]
    """gs://<bucket>/<dvcRemotePath>: `dvc remote add -d data <this>`."""
    service_account_email: Optional[pulumi.Output[str]]  # noqa: UP045
    """The CI service account; none in direct keyless mode (no service account)."""
    ci_file: pulumi.Output[str]
    """Path of the committed CI file."""
    ci_runs_url: pulumi.Output[str]
    """Where the CI runs show."""
    next_steps: pulumi.Output[str]
    """What the team runs once in its repository."""
    workload_identity_provider: Optional[pulumi.Output[str]]  # noqa: UP045 (the analyzer reads Optional, not `|`)
    """Keyless: the federation's provider name."""
    secret_name: Optional[pulumi.Output[str]]  # noqa: UP045
    """With a key: the CI secret or variable that holds it."""

    def __init__(self, name: str, args: TeamCiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:index:TeamCi", name, {}, opts)
        settings = settings_of(name, dict(args))
        own = pulumi.ResourceOptions(parent=self)
        platform_provider = settings.platform.provider(settings, f"{name}-{settings.platform.name}-provider", own)
        google = gcp.Provider(f"{name}-gcp-provider", project=settings.gcp_project, opts=own)
        found = preflight(settings, platform_provider, google)
        chapter = build_chapter(
            {"settings": settings, "preflight": found, "platform_provider": platform_provider, "google_provider": google},
            Children(self, prefix=f"{name}-"),
        )
        self.bucket_name, self.bucket_url, self.dvc_remote_url = chapter.bucket_name, chapter.bucket_url, chapter.dvc_remote_url
        self.service_account_email = chapter.service_account_email
        self.ci_file = pulumi.Output.from_input(chapter.ci_file)
        self.ci_runs_url = pulumi.Output.from_input(chapter.ci_runs_url)
        self.next_steps = pulumi.Output.from_input(chapter.next_steps)
        self.workload_identity_provider = chapter.workload_identity_provider
        self.secret_name = None if chapter.secret_name is None else pulumi.Output.from_input(chapter.secret_name)
        self.register_outputs({"bucket_name": self.bucket_name, "service_account_email": self.service_account_email})
