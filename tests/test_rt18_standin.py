"""Red-team (rt18): the GitHub stand-in's deployment branch policies against GitHub's OpenAPI
description (`POST .../deployment-branch-policies`: 200; 303 "if the same branch name pattern
already exists"; 404 when the environment's `custom_branch_policies` is false). Fails on 8f08c35."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud import github_api, github_openapi, platform
from localcloud.state import open_cloud

pytestmark = pytest.mark.skipif(not github_openapi.DESCRIPTION.exists(), reason="needs node_modules (npm ci)")
ENV = "/repos/acme/vision/environments/ci"


def api(tmp_path: Path, custom: bool) -> Any:
    cloud = open_cloud(tmp_path)
    platform.create_repository(cloud, "github", "acme/vision", ["main"], {"dvc.yaml": b"stages: {}\n"})
    stand_in = github_api.Api(cloud, github_openapi.checker())
    policy = {"protected_branches": not custom, "custom_branch_policies": custom}

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        status, data, headers = stand_in.handle(method, path, {"authorization": "Bearer t"}, json.dumps(body).encode())
        return status, json.loads(data) if data else None, headers

    assert call("PUT", ENV, {"deployment_branch_policy": policy})[0] == 200
    return call


def test_the_same_pattern_twice_is_a_see_other(tmp_path: Path) -> None:
    call = api(tmp_path, custom=True)
    assert call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})[0] == 200
    status, _, headers = call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})
    assert status == 303
    assert "Location" in headers


def test_no_policy_without_custom_branch_policies(tmp_path: Path) -> None:
    call = api(tmp_path, custom=False)
    assert call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})[0] == 404
