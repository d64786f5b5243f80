"""Stacks that would take what another stack has: `make check` (the batch check over every stack file)
fails both, naming each other; pre-flight tells one stack's bucket from another's by the `stack` label,
so no two stack names share one."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mlops_ci.offline import check
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


def bucket_of(stack: str) -> dict[str, object]:
    labels = {"managed-by": "mlops-ci", "stack": stack}
    return {"name": "acme-own-dvc", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced", "labels": labels}


@pytest.mark.parametrize("stack", ["Team-A", "team.a", "TEAM-A"])
def test_the_bucket_of_stack_team_a_is_not_the_bucket_of_a_stack_named_alike(stack: str) -> None:
    mocks = Answers({"getBucket": bucket_of("team-a")})
    with pytest.raises(Exception, match="the bucket of another stack \\('team-a'\\)"):
        run("github", mocks=mocks, stack=stack, existingBucket="acme-own-dvc")
    assert mocks.cloud_resources == []
    # Its own bucket, labelled with its own label, still is.
    assert run(
        "github", mocks=Answers({"getBucket": bucket_of(stack_label(stack))}), stack=stack, existingBucket="acme-own-dvc"
    ).find(GRANT)


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
