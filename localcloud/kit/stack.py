"""`pulumi up` of an example stack, offline: the real program under Pulumi's mocks, with a
Key resource that returns a real RSA key, as Google would. What the program sends to the CI
platform (the key as a secret, the CI file) is taken from its resource registrations."""

from __future__ import annotations

import dataclasses

import pulumi_gcp as gcp
import pulumi_github as github
import pulumi_gitlab as gitlab
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.runtime import rpc

from localcloud.key_files import new_key_file
from mlops_ci.offline.runtime import Evaluation, OfflineMocks, Registration, evaluate, type_token
from mlops_ci.offline.stacks import STACKS_DIR, load_stack_file
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

BUCKET, GRANT = type_token(gcp.storage.Bucket), type_token(gcp.storage.BucketIAMMember)
GITLAB_TOKEN = type_token(gitlab.ProjectAccessToken)
# The example stack of each platform.
STACKS = {"gitlab": "nlp-team", "github": "vision-team"}


@dataclasses.dataclass(frozen=True)
class PlatformResources:
    """Resource types and input names of the credential and the CI file on one platform."""

    secret_type: str
    secret_name_input: str
    ci_file_type: str
    ci_path_input: str


RESOURCES = {
    "gitlab": PlatformResources(type_token(gitlab.ProjectVariable), "key", type_token(gitlab.RepositoryFile), "filePath"),
    "github": PlatformResources(type_token(github.ActionsSecret), "secretName", type_token(github.RepositoryFile), "file"),
}


def committed_file(evaluation: Evaluation, type_: str, which: str = "ci-file") -> Registration:
    """One file the program commits to the team's repository (the platform's RepositoryFile `type_`):
    the CI file (`ci-file`) or the job script it calls (`job-script`)."""
    (found,) = [r for r in evaluation.find(type_) if r.name.endswith(f"-{which}")]
    return found


def service_account_key(email: str, project: str, token_uri: str) -> tuple[dict[str, str], rsa.RSAPublicKey]:
    """A key file as Google returns it, with a fresh RSA key (never stored), and its public key."""
    client_id = OfflineMocks().key_file(email, project)["client_id"]
    key_file, private_key = new_key_file(email, project, client_id, token_uri)
    return key_file, private_key.public_key()


class RealKeyMocks(OfflineMocks):
    """OfflineMocks whose service-account Key carries a real key pointing at `token_uri`."""

    def __init__(self, token_uri: str) -> None:
        self.token_uri = token_uri
        self.issued: dict[str, tuple[dict[str, str], rsa.RSAPublicKey]] = {}

    def key_file(self, email: str, project: str) -> dict[str, str]:
        self.issued[email] = service_account_key(email, project, self.token_uri)
        return self.issued[email][0]


@dataclasses.dataclass(frozen=True)
class Deployment:
    """One stack's `pulumi up`, as the CI platform and Google Cloud would receive it."""

    repository: str
    access: str
    gcp_project: str
    branch: str
    bucket: str
    remote_url: str
    account_email: str
    public_key: rsa.RSAPublicKey
    private_key_pem: str
    secret_name: str
    secret_value: str
    secret_marked: bool
    """Whether the program registered the value as a Pulumi secret (kept out of state and logs)."""
    ci_file: str
    ci_content: str
    job_script_path: str
    """Where the program commits the job script (`job_script_path(stack)`)."""
    job_script: str
    """The job script the CI file calls, as the program commits it."""
    report_token: str | None = None
    """GitLab with `mlops-ci:report`: the value of the report token's variable (MLOPS_CI_REPORT_TOKEN)."""
    report_token_grant: tuple[str, tuple[str, ...]] | None = None
    """GitLab with `mlops-ci:report`: the role and scopes the stack gave the report token."""
    grants: tuple[tuple[str, str], ...] = ()
    """(bucket, role) of each grant to the account, as Google applies them."""
    owns_bucket: bool = True
    """Whether the stack creates (manages) its bucket: False with `existingBucket`."""
    next_steps: str = ""
    """The `nextSteps` export: what the team runs once in its repository."""
    variables: tuple[tuple[str, str], ...] = ()
    """The other CI/CD variables the platform gives the job (keyless: the provider, the service account)."""

    @property
    def key_needles(self) -> tuple[str, ...]:
        """Fragments of the key that any copy of it contains: a line from the middle of the PEM
        (key file JSON and PEM alike) and a slice of the secret value (its base64 form)."""
        pem_lines = self.private_key_pem.splitlines()
        middle = len(self.secret_value) // 2
        return pem_lines[len(pem_lines) // 2], self.secret_value[middle : middle + 64]


def deploy(platform: str, token_uri: str, access: str | None = None, report: bool | None = None, **settings: str) -> Deployment:
    """Evaluate the platform's example stack with a freshly generated service-account key;
    `access` replaces the stack's access preset, `report` its `mlops-ci:report`, `settings` other
    `mlops-ci:` keys (`existingBucket="..."`)."""
    stack_config = load_stack_file(STACKS_DIR / f"Pulumi.{STACKS[platform]}.yaml")
    config = stack_config.config | ({"mlops-ci:access": access} if access else {})
    config |= {"mlops-ci:report": str(report).lower()} if report is not None else {}
    config |= {f"mlops-ci:{key}": value for key, value in settings.items()}
    mocks = RealKeyMocks(token_uri)
    evaluation = evaluate(stack_config.stack, config, stack_config.secret_keys, mocks)
    resources = RESOURCES[platform]
    variables = {v.plain(resources.secret_name_input): v for v in evaluation.find(resources.secret_type)}
    secret = variables[evaluation.exports["secretName"]]
    report_token = variables.get(REPORT_TOKEN_VARIABLE)
    ci_file = committed_file(evaluation, resources.ci_file_type)
    job_script = committed_file(evaluation, resources.ci_file_type, "job-script")
    exports = evaluation.exports
    key_file, public_key = mocks.issued[exports["serviceAccountEmail"]]
    return Deployment(
        repository=config["mlops-ci:repository"],
        access=config.get("mlops-ci:access", "pull"),
        gcp_project=stack_config.config["gcp:project"],
        branch=ci_file.plain("branch"),
        bucket=exports["bucketName"],
        remote_url=exports["dvcRemoteUrl"],
        account_email=exports["serviceAccountEmail"],
        public_key=public_key,
        private_key_pem=key_file["private_key"],
        secret_name=secret.plain(resources.secret_name_input),
        secret_value=secret.plain("value"),
        secret_marked=rpc.is_rpc_secret(secret.inputs["value"]),
        ci_file=ci_file.plain(resources.ci_path_input),
        ci_content=ci_file.plain("content"),
        job_script_path=job_script.plain(resources.ci_path_input),
        job_script=job_script.plain("content"),
        report_token=report_token.plain("value") if report_token else None,
        report_token_grant=next(
            ((token.plain("accessLevel"), tuple(token.plain("scopes"))) for token in evaluation.find(GITLAB_TOKEN)),
            None,
        ),
        grants=tuple(
            (grant.plain("bucket"), grant.plain("role"))
            for grant in evaluation.find(GRANT)
            if grant.plain("member") == f"serviceAccount:{exports['serviceAccountEmail']}"
        ),
        owns_bucket=bool(evaluation.find(BUCKET)),
        next_steps=exports["nextSteps"],
    )
