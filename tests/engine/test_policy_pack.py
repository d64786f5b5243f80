"""`pulumi preview --policy-pack policy` with the project's Python pack, under the REAL engine.

Path observed: the CLI finds the `python` language plugin (ours), so it does not look for
`pulumi-analyzer-policy-python`; it calls the host's RunPlugin (kind analyzer), which starts
`python -u -m pulumi.policy <engine> <pack dir>` (the module ships in the pulumi SDK) in the pack's
virtualenv (`../.venv` from PulumiPolicy.yaml) behind sdk/v3's PolicyProxy, which hands the stack's
config to the pack's environment.
"""

from __future__ import annotations

import shutil

import pytest

from tests.engine.conftest import ROOT, Engine

pytestmark = pytest.mark.engine

# No provider plugin exists here; a component registered under the bucket's type token needs none,
# and the engine hands it to the analyzers like any resource.
FAKE_BUCKET = """
import pulumi


class FakeBucket(pulumi.ComponentResource):
    def __init__(self, name, props):
        super().__init__("gcp:storage/bucket:Bucket", name, props)


FakeBucket("b", {"name": "x", "labels": {"managed-by": "mlops-ci", "stack": "dev"}})
"""

STACK = "config:\n  gcp:project: acme-ml-test\n  mlops-ci:platform: github\n  mlops-ci:repository: acme-ml/churn\n"


@pytest.fixture
def with_pack(engine: Engine) -> Engine:
    # The pack serves the package's rules (mlops_ci/policy/rules.py), one folder up from policy/.
    for folder in ("policy", "mlops_ci"):
        shutil.copytree(ROOT / folder, engine.project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    engine.init_stack("dev", STACK)
    return engine


def test_the_pack_loads_and_passes_a_program_without_resources(with_pack: Engine) -> None:
    result, seen = with_pack.preview("dev", "--policy-pack", "policy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen is not None
    assert "✅ mlops-ci@v0.1.0 (local: policy)" in result.stdout


def test_the_pack_refuses_a_bucket_that_is_not_private(with_pack: Engine) -> None:
    main = with_pack.project / "__main__.py"
    main.write_text(main.read_text() + FAKE_BUCKET)
    result, _ = with_pack.preview("dev", "--policy-pack", "policy")
    assert result.returncode != 0
    assert "❌ mlops-ci@v0.1.0 (local: policy)" in result.stdout
    assert "[mandatory]  gcs-bucket-private  (gcp:storage:Bucket: b)" in result.stdout
    assert "uniformBucketLevelAccess is None, must be true" in result.stdout
    assert "publicAccessPrevention is None, must be 'enforced'" in result.stdout
    assert "gcs-bucket-labelled" not in result.stdout  # labels are there


def test_a_pack_whose_virtualenv_is_missing_fails_instead_of_hanging(with_pack: Engine) -> None:
    # The pack's own virtualenv, empty; the program keeps its own, so the pack is what fails (with
    # the shared one gone, the CLI reported either failure, whichever came first).
    pack_file = with_pack.project / "policy" / "PulumiPolicy.yaml"
    pack_file.write_text(pack_file.read_text().replace("virtualenv: ../.venv", "virtualenv: ../pack-venv"))
    (with_pack.project / "pack-venv").mkdir()
    result, _ = with_pack.preview("dev", "--policy-pack", "policy")
    assert result.returncode != 0
    # Named either as "policy pack failed to start: fork/exec <python>: ..." or as the pack's
    # diagnostic followed by the engine's connection error, whichever the CLI reports first.
    assert "pack-venv/bin/python: no such file or directory" in result.stdout + result.stderr
