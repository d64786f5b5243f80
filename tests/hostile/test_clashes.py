"""Stacks that would take what another stack has: `make check` (the batch check over every stack file)
fails both, naming each other; pre-flight tells one stack's bucket from another's by the `stack` label,
so no two stack names share one."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mlops_ci.offline import check
from mlops_ci.offline.stacks import STACKS_DIR
from mlops_ci.settings.model import stack_label
from tests.helpers import GRANT, run
from tests.test_preflight import Answers

HEAD = "config:\n  gcp:project: acme-ml-test\n  mlops-ci:platform: {platform}\n  mlops-ci:repository: {repository}\n"


def checked(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> tuple[int, list[str]]:
    for stack, text in files.items():
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
    code = check.main(["--jobs", "1", "--stacks", str(tmp_path)])
    return code, capsys.readouterr().out.splitlines()


def test_stack_names_that_read_alike_get_labels_of_their_own() -> None:
    names = ["team-a", "Team-A", "team.a", "TEAM-A", "team_a", "a" * 63, "a" * 64, "a" * 63 + ".b"]
    labels = [stack_label(name) for name in names]
    assert len(set(labels)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_-]{1,63}", label) for label in labels), labels
    assert labels[:2] == ["team-a", "team-a-" + hashlib.sha256(b"Team-A").hexdigest()[:8]]


def bucket_of(name: str, stack: str) -> dict[str, object]:
    labels = {"managed-by": "mlops-ci", "stack": stack}
    return {"name": name, "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced", "effectiveLabels": labels}


@pytest.mark.parametrize("stack", ["Team-A", "team.a", "TEAM-A"])
def test_the_bucket_of_stack_team_a_is_not_the_bucket_of_a_stack_named_alike(stack: str) -> None:
    # The bucket Pulumi.yaml's acme-{stack}-dvc lets this stack use, labelled as team-a's.
    bucket = f"acme-{stack_label(stack)}-dvc"
    mocks = Answers({"getBucket": bucket_of(bucket, "team-a")})
    with pytest.raises(Exception, match="the bucket of another stack \\('team-a'\\)"):
        run("github", mocks=mocks, stack=stack, existingBucket=bucket)
    assert mocks.cloud_resources == []
    # Labelled with its own label, it is its own.
    own = Answers({"getBucket": bucket_of(bucket, stack_label(stack))})
    assert run("github", mocks=own, stack=stack, existingBucket=bucket).find(GRANT)


def test_a_stack_named_as_another_stacks_label_clashes_in_make_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `Team-A` is labelled team-a-<hash of Team-A>; a stack file of exactly that name would share it.
    impostor = f"team-a-{hashlib.sha256(b'Team-A').hexdigest()[:8]}"
    code, lines = checked(
        tmp_path,
        capsys,
        {
            "Team-A": HEAD.format(platform="github", repository="acme-ml/a"),
            impostor: HEAD.format(platform="github", repository="acme-ml/b"),
        },
    )
    assert code == 1
    assert f"FAIL  Team-A  [clash]  stack label {impostor}: also claimed by {impostor}" in lines
    assert f"FAIL  {impostor}  [clash]  stack label {impostor}: also claimed by Team-A" in lines


def stack_file(platform: str, repository: str, *lines: str) -> str:
    """A stack file with a key unless `lines` choose the credential: the secret's and environment's clashes are the key's."""
    auth = [] if any(line.startswith("mlops-ci:auth:") for line in lines) else ["mlops-ci:auth: key"]
    return HEAD.format(platform=platform, repository=repository) + "".join(f"  {line}\n" for line in [*auth, *lines])


@pytest.mark.parametrize(
    ("one", "two", "clash"),
    [
        # GitHub and GitLab paths are case-insensitive: one repository, one CI file.
        (
            stack_file("github", "acme-ml/churn"),
            stack_file("github", "ACME-ML/Churn"),
            "CI file https://api.github.com/ acme-ml churn main .github/workflows/mlops.yaml",
        ),
        (
            stack_file("gitlab", "acme-ml/research/churn"),
            stack_file("gitlab", "Acme-ML/Research/churn"),
            "CI file https://gitlab.com/api/v4/ acme-ml/research/churn main .gitlab-ci.yml",
        ),
        # Two CI files, one secret: each stack's key overwrites the other's.
        (
            stack_file("github", "acme-ml/churn"),
            stack_file(
                "github",
                "acme-ml/churn",
                "mlops-ci:ciFile: .github/workflows/b.yml",
                "mlops-ci:secretName: google_service_account_key",
            ),
            "CI secret https://api.github.com/ acme-ml churn GOOGLE_SERVICE_ACCOUNT_KEY",
        ),
        (
            stack_file("gitlab", "acme-ml/research/churn", "gitlab:baseUrl: https://gitlab.acme.example/api/v4/"),
            stack_file(
                "gitlab",
                "acme-ml/research/churn",
                "gitlab:baseUrl: https://gitlab.acme.example/api/v4",
                "mlops-ci:ciFile: ci/b.yml",
            ),
            "CI variable https://gitlab.acme.example/api/v4/ acme-ml/research/churn * GOOGLE_SERVICE_ACCOUNT_KEY",
        ),
        # Keyless: the federation's settings are two fixed variables of the repository.
        (
            stack_file("github", "acme-ml/churn", "mlops-ci:auth: workload-identity"),
            stack_file("github", "acme-ml/churn", "mlops-ci:auth: workload-identity", "mlops-ci:ciFile: .github/workflows/b.yml"),
            "CI variable https://api.github.com/ acme-ml churn GCP_WORKLOAD_IDENTITY_PROVIDER",
        ),
        # One deployment environment: destroying either stack deletes it with the other's secret.
        (
            stack_file("github", "acme-ml/churn", "mlops-ci:githubEnvironment: ml"),
            stack_file(
                "github",
                "acme-ml/churn",
                "mlops-ci:githubEnvironment: ML",
                "mlops-ci:ciFile: .github/workflows/b.yml",
                "mlops-ci:secretName: B",
            ),
            "deployment environment https://api.github.com/ acme-ml churn ml",
        ),
    ],
    ids=["github-repository-case", "gitlab-project-case", "github-secret", "gitlab-variable", "keyless-variables", "environment"],
)
def test_two_stacks_on_one_repository_that_would_overwrite_each_other_clash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one: str, two: str, clash: str
) -> None:
    code, lines = checked(tmp_path, capsys, {"team-a": one, "team-b": two})
    assert code == 1
    assert f"FAIL  team-a  [clash]  {clash}: also claimed by team-b" in lines, lines
    assert any(line.startswith("FAIL  team-b  [clash]") and line.endswith("also claimed by team-a") for line in lines)


def test_two_stacks_on_one_repository_with_files_and_names_of_their_own_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = stack_file("github", "acme-ml/churn", "mlops-ci:ciFile: .github/workflows/b.yml", "mlops-ci:secretName: B_KEY")
    code, lines = checked(tmp_path, capsys, {"team-a": stack_file("github", "acme-ml/churn"), "team-b": other})
    assert (code, lines) == (0, ["OK    team-a", "OK    team-b", "2 stacks checked: 2 OK, 0 failed"])


def test_stack_files_whose_names_differ_in_case_only_clash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One file on a case-insensitive checkout: `pulumi up --stack vision-team` there may read either.
    code, lines = checked(
        tmp_path,
        capsys,
        {"vision-team": stack_file("github", "acme-ml/vision"), "Vision-Team": stack_file("github", "acme-ml/other")},
    )
    assert code == 1
    assert "FAIL  Vision-Team  [clash]  stack file Pulumi.Vision-Team.yaml: also claimed by vision-team" in lines
    assert "FAIL  vision-team  [clash]  stack file Pulumi.vision-team.yaml: also claimed by Vision-Team" in lines


def test_job_scripts_of_stacks_whose_names_differ_in_case_only_clash_on_one_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each stack commits .mlops-ci/<stack>.py: two names alike are one file on a case-insensitive checkout.
    other = stack_file("github", "acme-ml/vision", "mlops-ci:ciFile: .github/workflows/b.yml", "mlops-ci:secretName: B_KEY")
    code, lines = checked(tmp_path, capsys, {"vision-team": stack_file("github", "acme-ml/vision"), "Vision-Team": other})
    assert code == 1
    script = "job script https://api.github.com/ acme-ml vision main .mlops-ci/vision-team.py"
    assert f"FAIL  vision-team  [clash]  {script}: also claimed by Vision-Team" in lines, lines


def test_a_stack_file_with_another_stack_files_salt_and_secret_clashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The readme team's token, copied with its salt: under the platform's one passphrase, pulumi up
    # would decrypt it for the copying stack, which then acts with the readme team's token.
    readme = (STACKS_DIR / "Pulumi.readme-team.yaml").read_text()
    copied = readme.replace("acme-ml/readme-experiments", "acme-ml/evil").replace("acme-ml-readme", "acme-ml-evil")
    code, lines = checked(tmp_path, capsys, {"readme-team": readme, "evil-team": copied})
    assert code == 1
    clashes = [line for line in lines if line.startswith("FAIL  evil-team  [clash]  encrypted value sha256:")]
    assert len(clashes) == 2, lines  # the salt and the token
    assert all(line.endswith(": also claimed by readme-team") for line in clashes)
