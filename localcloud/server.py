"""A Pulumi resource provider plugin over the raw gRPC `ResourceProvider` service.

Each plugin (`localcloud.plugins.gcp` etc.) declares its resource types and invokes; this module
does the protocol: secrets kept secret, unknowns in preview, input diffs with the properties that
force replacement, the journal, and the errors the engine shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent import futures
from typing import Any, ClassVar, NoReturn

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from localcloud import wire
from localcloud.state import LocalCloud, open_cloud


class CloudError(Exception):
    """An error answered by the (local) cloud API, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class Context:
    """What a resource operation gets: the cloud, the provider's configuration, the URN."""

    cloud: LocalCloud
    config: dict[str, Any]
    urn: str

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


class ResourceType:
    """One resource type. Subclasses set the class attributes and implement the operations on
    revealed (secret-free) property maps; the server re-applies secrecy."""

    token: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[Mapping[str, Any]] = {}
    force_new: ClassVar[frozenset[str]] = frozenset()
    """Input properties whose change replaces the resource (the upstream schema's ForceNew)."""
    computed: ClassVar[tuple[str, ...]] = ()
    """Outputs the cloud assigns (unknown in preview)."""
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    """Outputs always returned as secrets."""
    secret_inputs: ClassVar[frozenset[str]] = frozenset()
    """Inputs redacted in the journal even when the program did not mark them secret."""
    delete_before_replace: ClassVar[bool] = False
    plans_changes: ClassVar[bool] = False
    """True if `planned_changes` may find changes the inputs do not show (Diff then needs the cloud)."""

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        """(property, reason) failures of known inputs, as the schema would report them."""
        return []

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        raise NotImplementedError

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        raise CloudError(400, f"{self.token} cannot be updated in place")

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        raise NotImplementedError

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        """Current outputs, or None if the resource is gone. Default: unchanged."""
        return props

    def planned_changes(self, ctx: Context, olds: wire.Props, news: wire.Props) -> dict[str, bool]:
        """Changes the provider plans although no input changed, as an upstream plan modifier does
        (a token due for rotation): output property → whether it replaces the resource. `olds` are
        the recorded outputs, `news` the checked inputs (both revealed)."""
        return {}

    def read_inputs(self, outputs: wire.Props) -> wire.Props | None:
        """For an import (a Read with no recorded state): the inputs that produce `outputs`, which
        the engine diffs against the program's. None: the request's inputs."""
        return None

    def journal_inputs(self, inputs: wire.Props) -> wire.Props:
        """The inputs as the journal may show them (before secret redaction)."""
        return inputs

    def preview(self, inputs: wire.Props) -> wire.Props:
        return {**inputs, **{key: wire.UNKNOWN for key in self.computed if key not in inputs}}


Invoke = Callable[[Context, wire.Props], wire.Props]


class Provider:
    """A plugin: name, version, resource types, invokes and the provider's configuration."""

    def __init__(
        self,
        name: str,
        version: str,
        types: list[ResourceType],
        invokes: Mapping[str, Invoke],
        env_config: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.types = {t.token: t for t in types}
        self.invokes = dict(invokes)
        self.env_config = dict(env_config or {})
        """Config keys read from the environment when not set (e.g. token ← GITHUB_TOKEN)."""


def _fail(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with an error the engine shows (`context.abort` raises)."""
    context.abort(code, message)
    raise AssertionError("unreachable: grpc's abort raises")


def _abort(context: grpc.ServicerContext, error: BaseException) -> NoReturn:
    if isinstance(error, CloudError):
        _fail(context, grpc.StatusCode.UNKNOWN, error.message)
    traceback.print_exc(file=sys.stderr)
    _fail(context, grpc.StatusCode.INTERNAL, f"localcloud plugin bug: {type(error).__name__}: {error}")


def _wrap_secrets(outputs: wire.Props, secret_keys: set[str]) -> wire.Props:
    return {k: wire.secret(v) if k in secret_keys and not wire.is_secret(v) else v for k, v in outputs.items()}


def _type_of(urn: str) -> str:
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 3 else ""


class ProviderServicer(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, provider: Provider, cloud: Callable[[], LocalCloud] = open_cloud) -> None:
        self.provider = provider
        self._cloud_factory = cloud
        self._cloud: LocalCloud | None = None
        self.config: dict[str, Any] = {}
        self.config_urn = ""

    # --- plumbing ---

    @property
    def cloud(self) -> LocalCloud:
        if self._cloud is None:
            self._cloud = self._cloud_factory()
        return self._cloud

    def _resource_type(self, urn: str, context: grpc.ServicerContext) -> ResourceType:
        token = _type_of(urn)
        found = self.provider.types.get(token)
        if found is None:
            _fail(context, grpc.StatusCode.UNIMPLEMENTED, f"localcloud {self.provider.name}: unknown resource type {token}")
        return found

    def _context(self, urn: str, context: grpc.ServicerContext) -> Context:
        try:
            cloud = self.cloud
        except RuntimeError as error:  # no state directory: the engine shows why
            _fail(context, grpc.StatusCode.FAILED_PRECONDITION, f"localcloud {self.provider.name}: {error}")
        cloud.touch()
        return Context(cloud, self.config, urn)

    # --- plugin ---

    def GetPluginInfo(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.PluginInfo:  # noqa: N802
        return plugin_pb2.PluginInfo(version=self.provider.version)

    def GetSchema(self, request: provider_pb2.GetSchemaRequest, context: grpc.ServicerContext) -> provider_pb2.GetSchemaResponse:  # noqa: N802
        schema: dict[str, Any] = {
            "name": self.provider.name,
            "version": self.provider.version,
            "description": "mlops-ci local cloud",
            "resources": {token: {"properties": {}, "inputProperties": {}} for token in self.provider.types},
            "functions": {token: {} for token in self.provider.invokes},
        }
        return provider_pb2.GetSchemaResponse(schema=json.dumps(schema))

    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802
        return empty_pb2.Empty()

    def Attach(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802
        return empty_pb2.Empty()

    # --- provider configuration ---

    def CheckConfig(self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext) -> provider_pb2.CheckResponse:  # noqa: N802
        news = wire.from_struct(request.news)
        return provider_pb2.CheckResponse(inputs=wire.to_struct(news))

    def DiffConfig(self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext) -> provider_pb2.DiffResponse:  # noqa: N802
        olds = wire.reveal(wire.from_struct(request.old_inputs if request.HasField("old_inputs") else request.olds))
        news = wire.reveal(wire.from_struct(request.news))
        changed = sorted(k for k in set(olds) | set(news) if k != "version" and olds.get(k) != news.get(k))
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=changed,
        )

    def Configure(self, request: provider_pb2.ConfigureRequest, context: grpc.ServicerContext) -> provider_pb2.ConfigureResponse:  # noqa: N802
        config: dict[str, Any] = {}
        prefix = f"{self.provider.name}:config:"
        for key, value in request.variables.items():
            config[key.removeprefix(prefix)] = value
        config.update(wire.reveal(wire.from_struct(request.args)))
        for key, variable in self.provider.env_config.items():
            if not config.get(key) and os.environ.get(variable):
                config[key] = os.environ[variable]
        self.config = config
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=False)

    # --- resources ---

    def Check(self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext) -> provider_pb2.CheckResponse:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        news = wire.from_struct(request.news)
        inputs = {**{k: v for k, v in rtype.defaults.items() if k not in news}, **news}
        failures = [
            provider_pb2.CheckFailure(property=key, reason=f"Missing required argument: The argument {key!r} is required")
            for key in rtype.required
            if inputs.get(key) in (None, "")
        ]
        known = {k: v for k, v in wire.reveal(inputs).items() if not wire.is_unknown(v)}
        failures += [provider_pb2.CheckFailure(property=p, reason=r) for p, r in rtype.validate(known)]
        return provider_pb2.CheckResponse(inputs=wire.to_struct(inputs), failures=failures)

    def Diff(self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext) -> provider_pb2.DiffResponse:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        has_old_inputs = request.HasField("old_inputs")
        olds = wire.from_struct(request.old_inputs if has_old_inputs else request.olds)
        news = wire.from_struct(request.news)
        ignored = set(request.ignoreChanges)
        keys: set[str] = set(news) | (set(olds) if has_old_inputs else set[str]())
        detailed: dict[str, provider_pb2.PropertyDiff] = {}
        replaces: list[str] = []
        for key in sorted(keys - ignored - {"__defaults"}):
            old, new = wire.reveal(olds.get(key)), wire.reveal(news.get(key))
            if not wire.is_unknown(new) and old == new:
                continue
            replace = key in rtype.force_new
            if key not in olds:
                kind = provider_pb2.PropertyDiff.ADD_REPLACE if replace else provider_pb2.PropertyDiff.ADD
            elif key not in news:
                kind = provider_pb2.PropertyDiff.DELETE_REPLACE if replace else provider_pb2.PropertyDiff.DELETE
            else:
                kind = provider_pb2.PropertyDiff.UPDATE_REPLACE if replace else provider_pb2.PropertyDiff.UPDATE
            detailed[key] = provider_pb2.PropertyDiff(kind=kind, inputDiff=True)
            if replace:
                replaces.append(key)
        if rtype.plans_changes and request.olds.fields:
            ctx = self._context(request.urn, context)
            recorded = wire.reveal(wire.from_struct(request.olds))
            for key, replace in rtype.planned_changes(ctx, recorded, wire.reveal(news)).items():
                if key in detailed or key in ignored:  # the bridge drops ignored paths from its plan too
                    continue
                kind = provider_pb2.PropertyDiff.UPDATE_REPLACE if replace else provider_pb2.PropertyDiff.UPDATE
                detailed[key] = provider_pb2.PropertyDiff(kind=kind, inputDiff=False)
                if replace:
                    replaces.append(key)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if detailed else provider_pb2.DiffResponse.DIFF_NONE,
            replaces=replaces,
            diffs=sorted(detailed),
            detailedDiff=detailed,
            hasDetailedDiff=True,
            deleteBeforeReplace=bool(replaces) and rtype.delete_before_replace,
        )

    def Create(self, request: provider_pb2.CreateRequest, context: grpc.ServicerContext) -> provider_pb2.CreateResponse:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        inputs = wire.from_struct(request.properties)
        secret_keys = wire.secret_keys(inputs) | set(rtype.secret_outputs)
        if request.preview:
            outputs = rtype.preview(wire.reveal(inputs))
            return provider_pb2.CreateResponse(properties=wire.to_struct(_wrap_secrets(outputs, secret_keys)))
        ctx = self._context(request.urn, context)
        try:
            id_, outputs = rtype.create(ctx, wire.reveal(inputs))
        except Exception as error:  # noqa: BLE001 — reported to the engine as the call's error
            self._journal("create", rtype, request.urn, inputs, error=error)
            _abort(context, error)
        self._journal("create", rtype, request.urn, inputs, id=id_)
        return provider_pb2.CreateResponse(id=id_, properties=wire.to_struct(_wrap_secrets(outputs, secret_keys)))

    def Update(self, request: provider_pb2.UpdateRequest, context: grpc.ServicerContext) -> provider_pb2.UpdateResponse:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        olds, news = wire.from_struct(request.olds), wire.from_struct(request.news)
        secret_keys = wire.secret_keys(news) | wire.secret_keys(olds) | set(rtype.secret_outputs)
        if request.preview:
            outputs = {**wire.reveal(olds), **wire.reveal(news)}
            return provider_pb2.UpdateResponse(properties=wire.to_struct(_wrap_secrets(outputs, secret_keys)))
        ctx = self._context(request.urn, context)
        try:
            outputs = rtype.update(ctx, request.id, wire.reveal(olds), wire.reveal(news))
        except Exception as error:  # noqa: BLE001
            self._journal("update", rtype, request.urn, news, id=request.id, error=error)
            _abort(context, error)
        self._journal("update", rtype, request.urn, news, id=request.id)
        return provider_pb2.UpdateResponse(properties=wire.to_struct(_wrap_secrets(outputs, secret_keys)))

    def Delete(self, request: provider_pb2.DeleteRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        props = wire.from_struct(request.properties)
        inputs = wire.from_struct(request.old_inputs) if request.HasField("old_inputs") else props
        ctx = self._context(request.urn, context)
        try:
            rtype.delete(ctx, request.id, wire.reveal(props))
        except Exception as error:  # noqa: BLE001
            self._journal("delete", rtype, request.urn, inputs, id=request.id, error=error)
            _abort(context, error)
        self._journal("delete", rtype, request.urn, inputs, id=request.id)
        return empty_pb2.Empty()

    def Read(self, request: provider_pb2.ReadRequest, context: grpc.ServicerContext) -> provider_pb2.ReadResponse:  # noqa: N802
        rtype = self._resource_type(request.urn, context)
        props, inputs = wire.from_struct(request.properties), wire.from_struct(request.inputs)
        secret_keys = wire.secret_keys(props) | wire.secret_keys(inputs) | set(rtype.secret_outputs)
        ctx = self._context(request.urn, context)
        try:
            outputs = rtype.read(ctx, request.id, wire.reveal(props))
        except Exception as error:  # noqa: BLE001
            self._journal("read", rtype, request.urn, inputs, id=request.id, error=error)
            _abort(context, error)
        self._journal("read", rtype, request.urn, inputs, id=request.id, found=outputs is not None)
        if outputs is None:
            return provider_pb2.ReadResponse(id="")
        imported = rtype.read_inputs(outputs) if not props else None
        return provider_pb2.ReadResponse(
            id=request.id,
            properties=wire.to_struct(_wrap_secrets(outputs, secret_keys)),
            inputs=wire.to_struct(imported) if imported is not None else request.inputs,
        )

    def Invoke(self, request: provider_pb2.InvokeRequest, context: grpc.ServicerContext) -> provider_pb2.InvokeResponse:  # noqa: N802
        function = self.provider.invokes.get(request.tok)
        if function is None:
            _fail(context, grpc.StatusCode.UNIMPLEMENTED, f"localcloud {self.provider.name}: unknown function {request.tok}")
        args = wire.from_struct(request.args)
        ctx = self._context("", context)
        try:
            result = function(ctx, wire.reveal(args))
        except Exception as error:  # noqa: BLE001
            self.cloud.journal.record("invoke", request.tok, "", args, preview=request.preview, error=_error_text(error))
            _abort(context, error)
        self.cloud.journal.record("invoke", request.tok, "", args, preview=request.preview)
        response = provider_pb2.InvokeResponse()
        getattr(response, "return").CopyFrom(wire.to_struct(result))
        return response

    def _journal(self, op: str, rtype: ResourceType, urn: str, inputs: wire.Props, **extra: Any) -> None:
        if "error" in extra:
            extra["error"] = _error_text(extra["error"])
        shown = rtype.journal_inputs(inputs)
        self.cloud.journal.record(op, rtype.token, urn, shown, rtype.secret_inputs | rtype.secret_outputs, **extra)


def _error_text(error: BaseException) -> str:
    return error.message if isinstance(error, CloudError) else f"{type(error).__name__}: {error}"


def serve(provider: Provider, argv: list[str] | None = None) -> None:
    """Run the plugin: listen on 127.0.0.1, print the port (the engine reads it), serve."""
    parser = argparse.ArgumentParser(description=f"localcloud {provider.name} resource plugin")
    parser.add_argument("engine", nargs="?", help="engine address (unused)")
    parser.parse_known_args(argv)
    server, port = start_server(provider)
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.stop(grace=0.5).wait(2)
    sys.stdout.flush()
    os._exit(0)  # at once: the engine kills plugins it is done with, and gRPC's threads need not linger


def start_server(provider: Provider, cloud: Callable[[], LocalCloud] = open_cloud) -> tuple[grpc.Server, int]:
    """The plugin's gRPC server on a free port of 127.0.0.1, started."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(ProviderServicer(provider, cloud), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
