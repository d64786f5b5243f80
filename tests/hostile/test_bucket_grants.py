"""Item 9: a stack file may grant its CI only on its own bucket or on an existing bucket the platform
allows (Pulumi.yaml `platform.existingBuckets`, here `acme-{stack}-dvc`: each stack its own), and
never on a bucket labelled as another stack's. The helpers' stack is team-a."""

from __future__ import annotations

import pytest

from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.model import stack_label
from mlops_ci.settings.schema import SCHEMA
from tests.helpers import GRANT, CountingMocks, run
from tests.test_preflight import Answers, refused


def test_the_platform_allow_list_is_declared_in_the_project_file() -> None:
    assert SCHEMA.existing_buckets == ("acme-{stack}-dvc",)


# Another team's bucket that the pattern acme-*-dvc allowed every stack to use: acme-nlp-team-dvc.
@pytest.mark.parametrize(
    "bucket",
    ["platform-pulumi-state", "acme-ml-recsys-data", "other-team-dvc", "acme-dvc-x", "acme-nlp-team-dvc", "acme-team-b-dvc"],
)
@pytest.mark.parametrize("access", ["pull", "admin"])
def test_a_bucket_the_platform_did_not_allow_is_refused_before_any_resource(bucket: str, access: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", {"existingBucket": bucket, "access": access}, mocks=mocks)
    [problem] = raised.value.problems
    assert problem == (
        f"mlops-ci:existingBucket = {bucket!r}: not a bucket the platform lets this stack use (Pulumi.yaml"
        " platform.existingBuckets: acme-{stack}-dvc, for this stack acme-team-a-dvc); ask whoever runs `pulumi up` to add it"
    )
    assert mocks.created == []


def test_an_allowed_bucket_gets_the_grant() -> None:
    evaluation = run("github", {"existingBucket": "acme-team-a-dvc", "access": "admin"})
    assert [grant.plain("bucket") for grant in evaluation.find(GRANT)] == ["acme-team-a-dvc"]


def test_stack_in_a_pattern_is_the_stacks_label() -> None:
    # Team.A's label, and so its bucket under acme-{stack}-dvc, is lowercase with a hash of the name.
    bucket = f"acme-{stack_label('Team.A')}-dvc"
    assert run("github", stack="Team.A", existingBucket=bucket).find(GRANT)
    with pytest.raises(ConfigError):
        run("github", stack="Team.A", existingBucket="acme-team-a-dvc")


def test_an_allowed_bucket_labelled_as_another_stacks_is_refused() -> None:
    answer = {
        "name": "acme-team-a-dvc",
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
        # as the provider's getBucket answers: the bucket's labels in effectiveLabels, `labels` empty
        "labels": {},
        "effectiveLabels": {"managed-by": "mlops-ci", "stack": "nlp-team"},
    }
    problems, mocks = refused("github", {"getBucket": answer}, {"existingBucket": "acme-team-a-dvc", "access": "admin"})
    assert problems == [
        "mlops-ci:existingBucket = 'acme-team-a-dvc': the bucket of another stack ('nlp-team'): a stack grants on its own"
    ]
    assert mocks.cloud_resources == []


def test_a_bucket_labelled_as_this_stacks_own_is_allowed() -> None:
    answer: dict[str, object] = {
        "name": "acme-team-a-dvc",
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
    }
    answer["effectiveLabels"] = {"managed-by": "mlops-ci", "stack": "team-a"}
    evaluation = run("github", mocks=Answers({"getBucket": answer}), existingBucket="acme-team-a-dvc")
    assert evaluation.find(GRANT)
