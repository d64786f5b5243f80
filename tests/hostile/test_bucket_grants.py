"""Item 9: a stack file may grant its CI only on its own bucket or on an existing bucket the platform
allows (Pulumi.yaml `platform.existingBuckets`), and never on a bucket labelled as another stack's."""

from __future__ import annotations

import pytest

from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.schema import SCHEMA
from tests.helpers import GRANT, CountingMocks, run
from tests.test_preflight import Answers, refused


def test_the_platform_allow_list_is_declared_in_the_project_file() -> None:
    assert SCHEMA.existing_buckets == ("acme-*-dvc",)


@pytest.mark.parametrize("bucket", ["platform-pulumi-state", "acme-ml-recsys-data", "other-team-dvc", "acme-dvc-x"])
@pytest.mark.parametrize("access", ["pull", "admin"])
def test_a_bucket_the_platform_did_not_allow_is_refused_before_any_resource(bucket: str, access: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", {"existingBucket": bucket, "access": access}, mocks=mocks)
    [problem] = raised.value.problems
    assert problem.startswith(f"mlops-ci:existingBucket = {bucket!r}: not a bucket the platform lets stack files use")
    assert "platform.existingBuckets: acme-*-dvc" in problem
    assert mocks.created == []


def test_an_allowed_bucket_gets_the_grant() -> None:
    evaluation = run("github", {"existingBucket": "acme-vision-dvc", "access": "admin"})
    assert [grant.plain("bucket") for grant in evaluation.find(GRANT)] == ["acme-vision-dvc"]


def test_an_allowed_bucket_labelled_as_another_stacks_is_refused() -> None:
    answer = {
        "name": "acme-nlp-dvc",
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
        # as the provider's getBucket answers: the bucket's labels in effectiveLabels, `labels` empty
        "labels": {},
        "effectiveLabels": {"managed-by": "mlops-ci", "stack": "nlp-team"},
    }
    problems, mocks = refused("github", {"getBucket": answer}, {"existingBucket": "acme-nlp-dvc", "access": "admin"})
    assert problems == [
        "mlops-ci:existingBucket = 'acme-nlp-dvc': the bucket of another stack ('nlp-team'): a stack grants on its own"
    ]
    assert mocks.cloud_resources == []


def test_a_bucket_labelled_as_this_stacks_own_is_allowed() -> None:
    answer: dict[str, object] = {"name": "acme-own-dvc", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced"}
    answer["effectiveLabels"] = {"managed-by": "mlops-ci", "stack": "team-a"}
    evaluation = run("github", mocks=Answers({"getBucket": answer}), existingBucket="acme-own-dvc")
    assert evaluation.find(GRANT)
