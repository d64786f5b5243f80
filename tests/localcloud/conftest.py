"""The local cloud's plugins driven over gRPC, as the engine drives them, against one state
directory whose services (storage emulator, token endpoint) run for the whole session."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from localcloud import github_api, services, wire
from localcloud.server import Provider, start_server
from localcloud.state import LocalCloud, open_cloud
from localcloud.storage_emulator import DEFAULT_EMULATOR

REPOSITORY = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the storage emulator (.venv-e2e) the local cloud cannot run: skip its tests."""
    if DEFAULT_EMULATOR.exists():
        return
    skip = pytest.mark.skip(reason="needs .venv-e2e (make .venv-e2e/.installed): the storage emulator")
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(skip)


_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of the session uses (the services outlive a test)."""
    return f"{prefix}-{next(_names)}"


class PluginError(Exception):
    def __init__(self, error: grpc.RpcError) -> None:
        self.details = str(error.details())
        super().__init__(self.details)


@dataclasses.dataclass
class Created:
    id: str
    outputs: wire.Props
    """As returned on the wire: secrets keep their marker."""
    inputs: wire.Props

    def plain(self, key: str) -> Any:
        return wire.reveal(self.outputs.get(key))


class PluginClient:
    """One configured plugin instance (the engine starts one per provider resource)."""

    def __init__(self, stub: provider_pb2_grpc.ResourceProviderStub) -> None:
        self.stub = stub

    @staticmethod
    def urn(token: str, name: str) -> str:
        return f"urn:pulumi:test::mlops-ci::{token}::{name}"

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request)
        except grpc.RpcError as error:
            raise PluginError(error) from None

    def configure(self, config: wire.Props) -> provider_pb2.ConfigureResponse:
        return cast(
            provider_pb2.ConfigureResponse,
            self._call("Configure", provider_pb2.ConfigureRequest(args=wire.to_struct(config), acceptSecrets=True)),
        )

    def check(self, token: str, name: str, news: wire.Props) -> tuple[wire.Props, list[str]]:
        response = self._call("Check", provider_pb2.CheckRequest(urn=self.urn(token, name), news=wire.to_struct(news)))
        return wire.from_struct(response.inputs), [f"{f.property}: {f.reason}" for f in response.failures]

    def create(self, token: str, name: str, props: wire.Props, preview: bool = False) -> Created:
        inputs, failures = self.check(token, name, props)
        if failures:
            raise AssertionError(f"check failed: {failures}")
        request = provider_pb2.CreateRequest(urn=self.urn(token, name), properties=wire.to_struct(inputs), preview=preview)
        response = self._call("Create", request)
        return Created(response.id, wire.from_struct(response.properties), inputs)

    def diff(
        self, token: str, name: str, old: Created, news: wire.Props, ignore: list[str] | None = None
    ) -> provider_pb2.DiffResponse:
        """The plan for `news` against `old` (`ignore`: the `ignoreChanges` resource option)."""
        inputs, _ = self.check(token, name, news)
        request = provider_pb2.DiffRequest(
            urn=self.urn(token, name),
            id=old.id,
            olds=wire.to_struct(old.outputs),
            old_inputs=wire.to_struct(old.inputs),
            news=wire.to_struct(inputs),
            ignoreChanges=ignore or [],
        )
        return cast(provider_pb2.DiffResponse, self._call("Diff", request))

    def update(self, token: str, name: str, old: Created, news: wire.Props) -> Created:
        inputs, _ = self.check(token, name, news)
        request = provider_pb2.UpdateRequest(
            urn=self.urn(token, name),
            id=old.id,
            olds=wire.to_struct(old.outputs),
            old_inputs=wire.to_struct(old.inputs),
            news=wire.to_struct(inputs),
        )
        response = self._call("Update", request)
        return Created(old.id, wire.from_struct(response.properties), inputs)

    def delete(self, token: str, name: str, resource: Created) -> None:
        request = provider_pb2.DeleteRequest(
            urn=self.urn(token, name),
            id=resource.id,
            properties=wire.to_struct(resource.outputs),
            old_inputs=wire.to_struct(resource.inputs),
        )
        self._call("Delete", request)

    def read(self, token: str, name: str, resource: Created) -> str:
        """The id the plugin reports ("" when the resource is gone)."""
        request = provider_pb2.ReadRequest(
            urn=self.urn(token, name),
            id=resource.id,
            properties=wire.to_struct(resource.outputs),
            inputs=wire.to_struct(resource.inputs),
        )
        return str(self._call("Read", request).id)

    def refresh(self, token: str, name: str, resource: Created) -> Created | None:
        """What a Read answers (`pulumi refresh`): the current outputs, or None when gone."""
        request = provider_pb2.ReadRequest(
            urn=self.urn(token, name),
            id=resource.id,
            properties=wire.to_struct(resource.outputs),
            inputs=wire.to_struct(resource.inputs),
        )
        response = self._call("Read", request)
        if not response.id:
            return None
        return Created(str(response.id), wire.from_struct(response.properties), wire.from_struct(response.inputs))

    def read_import(self, token: str, name: str, id_: str) -> provider_pb2.ReadResponse:
        """A Read with no recorded state, as the engine sends it for the `import` option."""
        request = provider_pb2.ReadRequest(urn=self.urn(token, name), id=id_)
        return cast(provider_pb2.ReadResponse, self._call("Read", request))

    def invoke(self, token: str, args: wire.Props) -> wire.Props:
        response = self._call("Invoke", provider_pb2.InvokeRequest(tok=token, args=wire.to_struct(args)))
        return wire.from_struct(getattr(response, "return"))


@pytest.fixture(scope="package", autouse=True)
def _forget_localcloud_modules() -> Iterator[None]:
    """tests/test_check.py counts every project module in sys.modules as read by `make check`;
    the plugins are not part of it, so they leave sys.modules when this package's tests end."""
    yield
    for name in [name for name in sys.modules if name == "localcloud" or name.startswith("localcloud.")]:
        del sys.modules[name]


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    root = tmp_path_factory.mktemp("localcloud")
    # The session's users are spread over the suite, with engine tests of many minutes between them:
    # idle for the whole run if need be (the teardown stops the services; the timeout only catches leaks).
    services.start(root, idle_timeout=5400)
    yield open_cloud(root)
    services.stop(root)


@pytest.fixture
def plugins(cloud: LocalCloud) -> Iterator[Any]:
    """`plugins(provider, config)`: a started, configured plugin on the session's cloud."""
    servers: list[grpc.Server] = []
    channels: list[grpc.Channel] = []

    def launch(provider: Provider, config: wire.Props) -> PluginClient:
        server, port = start_server(provider, lambda: cloud)
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        client = PluginClient(provider_pb2_grpc.ResourceProviderStub(channel))
        client.configure(config)
        return client

    yield launch
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(grace=None)


def storage_get(cloud: LocalCloud, path: str) -> tuple[int, Any]:
    """GET on the emulator's JSON API."""
    try:
        with urllib.request.urlopen(f"{cloud.urls()['storage']}{path}", timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def sign_in(key_file: dict[str, Any], scope: str = "https://www.googleapis.com/auth/devstorage.read_only") -> str:
    """An access token for the key file, by google-auth's own path (a signed assertion sent to the
    key file's token_uri); raises `google.auth.exceptions.RefreshError` if refused."""
    credentials = cast(Any, service_account.Credentials.from_service_account_info(key_file, scopes=[scope]))  # type: ignore[no-untyped-call]
    credentials.refresh(Request())
    return str(credentials.token)


def journal_for(cloud: LocalCloud, urn_suffix: str) -> list[dict[str, Any]]:
    return [entry for entry in cloud.journal.entries() if entry["urn"].endswith(urn_suffix)]


_GITHUB_WRITES = [
    (re.compile(r"/environments/[^/]+/secrets/[^/]+$"), "ActionsEnvironmentSecret"),
    (re.compile(r"/actions/secrets/[^/]+$"), "ActionsSecret"),
    (re.compile(r"/actions/variables(?:/[^/]+)?$"), "ActionsVariable"),
    (re.compile(r"/contents/.+$"), "RepositoryFile"),
    (re.compile(r"/deployment-branch-policies(?:/\d+)?$"), "RepositoryEnvironmentDeploymentPolicy"),
    (re.compile(r"/environments/[^/]+$"), "RepositoryEnvironment"),
]
"""GitHub writes and the resource whose upstream calls make them (localcloud/github_api.py names each)."""


def github_writes(cloud: LocalCloud) -> list[tuple[str, str, str]]:
    """(time, op, type) of the GitHub API stand-in's writes: `create` (POST, or a PUT of what was not
    there), `update`, `delete`; `... failed` when refused."""
    found: list[tuple[str, str, str]] = []
    present: set[str] = set()
    for entry in github_api.requests_log(cloud):
        kind = next((name for pattern, name in _GITHUB_WRITES if pattern.search(entry["path"])), None)
        if kind is None or entry["method"] == "GET":
            continue
        method, status, path = entry["method"], int(entry["status"]), entry["path"]
        there = path in present or status == 204 or (method == "PUT" and status == 200 and kind == "RepositoryFile")
        op = {"POST": "create", "PATCH": "update", "DELETE": "delete"}.get(method, "update" if there else "create")
        if status < 400 and method == "DELETE":
            present.discard(path)
        elif status < 400:
            present.add(path)
        found.append((entry["time"], op + (" failed" if status >= 400 else ""), kind))
    return found


def operations(cloud: LocalCloud, since: str = "") -> list[tuple[str, str]]:
    """(op, type) of every change the local cloud saw after time `since`, in order: the plugins'
    journal (Google, GitLab) and the GitHub API's writes (the real provider's)."""
    journaled = [
        (e["time"], e["op"] + (" failed" if "error" in e else ""), e["type"].rsplit(":", 1)[-1])
        for e in cloud.journal.entries()
        if e["op"] in ("create", "update", "delete")
    ]
    return [(op, kind) for time, op, kind in sorted(journaled + github_writes(cloud)) if time > since]


def github_answers_within_description(root: Path) -> None:
    """After a test: the GitHub API stand-in gave no answer outside GitHub's OpenAPI description and
    met no request it does not model (the real provider asked nothing unforeseen)."""
    cloud = open_cloud(root)
    assert github_api.requests_log(cloud, "github-violations.jsonl") == []
    assert github_api.requests_log(cloud, "github-unmodelled.jsonl") == []


@contextlib.contextmanager
def local_cloud(cloud_dir: Path) -> Generator[LocalCloud]:
    """The local cloud in `cloud_dir` for one test: its services (started on demand by the plugins and
    the workspace) stopped at the end, whatever happened."""
    try:
        yield open_cloud(cloud_dir)
    finally:
        services.stop(cloud_dir)
