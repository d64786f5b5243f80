"""Evaluate the real Pulumi program with no CLI and no cloud: Pulumi's mock runtime, plus a
monitor that records every resource registration as the engine would receive it.

Used by the offline plan, the batch check and the tests alike.
"""

# The SDK's mock classes (MockMonitor, MockResourceArgs, MockCallArgs) leave their members untyped:
# pyright: reportUnknownMemberType=false
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import hashlib
import json
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_gcp as gcp
from google.protobuf import text_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings

from mlops_ci import direct_calls
from mlops_ci.ci.files import job_script_path
from mlops_ci.offline.answers import COMPUTED, LOOKUPS, numeric_id
from mlops_ci.offline.project_config import apply_project_config
from mlops_ci.platforms import PLATFORMS, Platform
from mlops_ci.platforms.base import type_token
from mlops_ci.settings.schema import PROJECT_FILE
from mlops_ci.settings.stack_file import stacks_folder

# The program beside the project file: this repository's `__main__.py`, or a project's that uses the package.
PROGRAM = PROJECT_FILE.parent / "__main__.py"
PROJECT = "mlops-ci"


def reveal(value: Any) -> Any:
    """The value with every secret marker removed (for comparisons)."""
    if rpc.is_rpc_secret(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in cast(dict[str, Any], value).items()}
    if isinstance(value, list):
        return [reveal(v) for v in cast(list[Any], value)]
    return value


@dataclasses.dataclass(frozen=True)
class Registration:
    """One `RegisterResource` request: what `pulumi up` would send to the engine."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    """Wire inputs (camelCase); secrets keep their marker (`pulumi.runtime.rpc.is_rpc_secret`)."""
    outputs: dict[str, Any]
    """What the mocks answered for the cloud (computed outputs included)."""
    dependencies: tuple[str, ...]
    """URNs this resource waits for (explicit `depends_on` and inputs from other resources)."""
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: tuple[str, ...]
    import_id: str
    """The id of an existing cloud resource the engine adopts instead of creating it; empty: create."""
    ignore_changes: tuple[str, ...]
    error_hooks: tuple[str, ...]
    """Names of the error hooks the engine calls when an operation on the resource fails."""
    aliases: tuple[str, ...] = ()
    """Where the resource was before (`aliases`), each as the engine receives it (protobuf text)."""

    def plain(self, key: str) -> Any:
        return reveal(self.inputs.get(key))

    @property
    def provider_urn(self) -> str | None:
        """URN of the explicit provider, if any (a provider reference is "<urn>::<id>")."""
        return self.provider.rsplit("::", 1)[0] if self.provider else None


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps each registration request, in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.refused: list[str] = []
        """Look-ups the real provider would refuse, or that a default provider would serve."""
        self.component_outputs: dict[str, dict[str, Any]] = {}
        """What each component registered as its outputs (`register_outputs`), by URN."""

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN (`resource.NewURN`): the parent's whole type chain, without the root
        stack's type. The SDK's mock puts in the parent's last type, the root stack's included."""
        parent_type = parent.split("::")[2] if parent else ""
        if parent_type and parent_type != ROOT_STACK_TYPE:
            type_ = f"{parent_type}${type_}"
        return "::".join(["urn:pulumi:" + pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = cast(Any, super().RegisterResource(request))
        if request.type != ROOT_STACK_TYPE:
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=request.custom,
                    parent=request.parent,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    outputs=cast(dict[str, Any], self.resources[response.urn].state),
                    dependencies=tuple(request.dependencies),
                    provider=request.provider,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    replace_on_changes=tuple(request.replaceOnChanges),
                    import_id=request.importId,
                    ignore_changes=tuple(request.ignoreChanges),
                    error_hooks=tuple(request.hooks.on_error),
                    aliases=tuple(text_format.MessageToString(alias, as_one_line=True) for alias in request.aliases),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.component_outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.tok != "pulumi:pulumi:getResource":
            self.check_lookup(request.tok, rpc.deserialize_properties(request.args), request.provider)
        return super().Invoke(request)

    def check_lookup(self, token: str, args: dict[str, Any], provider_reference: str) -> None:
        """A look-up goes through the program's explicit provider of its package (a default provider
        reads the stack's own `gcp:`/`github:` keys, which nothing validated), with arguments that
        provider would accept (`answers.Lookup.problem`); otherwise it is noted as refused."""
        package = token.split(":", 1)[0]
        urn = provider_reference.rsplit("::", 1)[0]
        provider = next((r for r in self.registrations if provider_reference and r.urn == urn), None)
        if provider is None or provider.type != f"pulumi:providers:{package}" or provider.name.startswith("default"):
            self.refused.append(f"{token}: not through the program's explicit {package} provider ({urn or 'default'})")
        elif token in LOOKUPS and (problem := LOOKUPS[token].problem(args, reveal(provider.inputs))):
            self.refused.append(f"{token}: {problem}")


class LookupRefusedError(Exception):
    """The program asked a look-up that the real provider would refuse or a default provider would serve."""

    def __init__(self, refused: Sequence[str]) -> None:
        super().__init__("look-ups the real providers would refuse:\n" + "\n".join(f"- {r}" for r in refused))
        self.refused = list(refused)


class OfflineMocks(pulumi.runtime.Mocks):
    """Answers for the outputs the cloud would compute, deterministic for a given input."""

    def key_file(self, email: str, project: str) -> dict[str, str]:
        """The JSON key file Google would return; here a placeholder without key material."""
        digest = hashlib.sha256(email.encode()).hexdigest()
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": digest[:40],
            "private_key": f"offline-placeholder-{digest[40:]}",
            "client_email": email,
            "client_id": str(int(digest[:16], 16)),
            "token_uri": "https://oauth2.googleapis.com/token",
        }

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        wire_inputs = cast(dict[str, Any], args.inputs)  # the SDK types them as a bare dict
        outputs = dict(wire_inputs)
        inputs = reveal(wire_inputs)
        if args.typ == type_token(gcp.serviceaccount.Account):
            email = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
            outputs |= {
                "email": email,
                "name": f"projects/{inputs['project']}/serviceAccounts/{email}",
                "member": f"serviceAccount:{email}",
                "uniqueId": str(int(hashlib.sha256(email.encode()).hexdigest()[:20], 16)),
            }
        elif args.typ == type_token(gcp.storage.Bucket):
            outputs |= {"url": f"gs://{inputs['name']}", "selfLink": f"storage/v1/b/{inputs['name']}"}
        elif args.typ == type_token(gcp.iam.WorkloadIdentityPool):
            outputs["name"] = self._pool_name(inputs)
        elif args.typ == type_token(gcp.iam.WorkloadIdentityPoolProvider):
            outputs["name"] = f"{self._pool_name(inputs)}/providers/{inputs['workloadIdentityPoolProviderId']}"
        elif args.typ == type_token(gcp.serviceaccount.Key):
            account_name = inputs["serviceAccountId"]
            project, email = account_name.split("/")[1], account_name.rsplit("/", 1)[1]
            key_file = json.dumps(self.key_file(email, project), indent=2)
            outputs |= {"privateKey": base64.b64encode(key_file.encode()).decode()}
        if args.typ in COMPUTED:
            outputs |= COMPUTED[args.typ](inputs)
        return f"{args.name}-id", outputs

    @staticmethod
    def _pool_name(inputs: dict[str, Any]) -> str:
        number = numeric_id(inputs["project"])
        return f"projects/{number}/locations/global/workloadIdentityPools/{inputs['workloadIdentityPoolId']}"

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        """Each look-up as `answers.LOOKUPS` plays it."""
        if args.token not in LOOKUPS:
            raise NotImplementedError(f"no offline answer for {args.token}")
        try:
            return LOOKUPS[args.token].answer(cast(dict[str, Any], args.args))
        except LookupError as not_found:
            # The API's "not found" where the provider fails the look-up: the invoke fails, as with the real provider.
            return {}, [("", str(not_found))]


class OfflineCalls(direct_calls.DirectCalls):
    """The outside world as the offline runtime plays it: every key accepted at once, a GitLab
    plan that allows everything, a GitHub token that may commit workflows on an unruled branch, the
    same nonce every time (one plan for one stack file)."""

    def credential_refusal(self, key_base64: str, bucket: str, permissions: Sequence[str]) -> str | None:
        return None

    def gitlab_plan(self, base_url: str, token: str, namespace_id: int) -> str | None:
        return "default"

    def github_access(self, api_url: str, token: str, repository: str, branch: str) -> direct_calls.GithubAccess | None:
        return direct_calls.GithubAccess(scopes=("repo", "workflow"), blocking_rulesets=())

    def nonce(self) -> str:
        return "offline"


OFFLINE_CALLS = OfflineCalls()


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call at once on the calling thread. The SDK hands every monitor call to the loop's
    executor; the mock monitor answers synchronously, so a thread hand-off only costs time (about
    a third of an evaluation), and the event loops Pulumi opens on worker threads are never closed."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 — handed to the awaiting caller, as a thread would
            future.set_exception(error)
        return future


@dataclasses.dataclass(frozen=True)
class CommittedCiFile:
    """A CI file as the program commits it, and the platform that runs it."""

    platform: Platform
    registration: Registration
    path: str
    content: str


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One run of the program: its registrations, in order, and its stack exports."""

    stack: str
    registrations: list[Registration]
    exports: dict[str, Any]
    secret_exports: frozenset[str]
    component_outputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict[str, dict[str, Any]])
    """What each component registered as its outputs, by URN: the engine keeps them in the state."""

    def find(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        found = self.find(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def committed_files(self) -> list[CommittedCiFile]:
        """Every file the program commits to the team's repository: the job script and the CI file."""
        # Only the platform in use has its SDK loaded: ask each platform whose provider is registered.
        registered = {registration.type for registration in self.registrations}
        return [
            CommittedCiFile(platform, registration, registration.plain(path_key), registration.plain("content"))
            for platform in PLATFORMS.values()
            if f"pulumi:providers:{platform.name}" in registered
            for type_, path_key in [platform.ci_file_resource]
            for registration in self.find(type_)
        ]

    def committed_ci_files(self) -> list[CommittedCiFile]:
        """The CI files the program commits (not the job script they call)."""
        return [committed for committed in self.committed_files() if committed.path != job_script_path(self.stack)]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def waits_for(self, registration: Registration) -> list[Registration]:
        """Resources that must exist before this one: its dependencies and its provider."""
        urns = set(registration.dependencies)
        if registration.provider_urn:
            urns.add(registration.provider_urn)
        return sorted((self.by_urn(urn) for urn in urns), key=lambda r: r.name)

    def steps(self) -> list[list[Registration]]:
        """Custom resources grouped by the step `pulumi up` can create them in: each waits only
        for resources of earlier steps; a step's resources can be created in parallel."""
        step_of: dict[str, int] = {}

        def step(registration: Registration) -> int:
            if registration.urn not in step_of:
                before = [step(r) for r in self.waits_for(registration) if r.custom]
                step_of[registration.urn] = 1 + max(before, default=0)
            return step_of[registration.urn]

        steps: list[list[Registration]] = []
        for registration in self.registrations:
            if registration.custom:
                index = step(registration)
                steps.extend([] for _ in range(index - len(steps)))
                steps[index - 1].append(registration)
        return [sorted(group, key=lambda r: (r.type, r.name)) for group in steps]


def evaluate(
    stack: str,
    config: dict[str, str],
    secret_keys: tuple[str, ...] = (),
    mocks: pulumi.runtime.Mocks | None = None,
    program: Path = PROGRAM,
    stacks_dir: Path | None = None,
) -> Evaluation:
    """Run `program` as `pulumi up` would for `stack` with `config`, against mocks: first the CLI's
    merge of the project's config declarations (`ProjectConfigError` where the CLI would refuse). The
    stack file is in `stacks_dir` (by default Pulumi.yaml's `stackConfigDir`)."""
    config = apply_project_config(stack, config, secret_keys)
    if str(program.parent) not in sys.path:
        sys.path.insert(0, str(program.parent))
    loop, monitor = _mocked_runtime(stack, config, secret_keys, mocks or OfflineMocks())
    folder = stacks_folder.set(stacks_dir)
    try:
        exports, secret_exports = _run_program(program, loop, monitor)
    finally:
        stacks_folder.reset(folder)
    return Evaluation(stack, list(monitor.registrations), exports, frozenset(secret_exports), dict(monitor.component_outputs))


def _mocked_runtime(
    stack: str, config: dict[str, str], secret_keys: tuple[str, ...], mocks: pulumi.runtime.Mocks
) -> tuple[asyncio.AbstractEventLoop, RecordingMonitor]:
    """A new event loop whose executor runs inline, and Pulumi's mock runtime for `stack` with
    `config`, answered by `mocks` through a monitor that records every registration."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(InlineExecutor())
    asyncio.set_event_loop(loop)
    runtime_settings.reset_options()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    return loop, monitor


async def _collect_exports(exports: dict[str, Any], secret_exports: set[str]) -> None:
    """The stack's exports into `exports`, the names of the secret ones into `secret_exports`."""
    # The root stack resource keeps its exports in `outputs`, which `Resource` does not declare.
    root = cast(Any, runtime_settings.get_root_resource())
    stack_outputs = cast(dict[str, Any], root.outputs if root else {})
    for name, value in stack_outputs.items():
        output = pulumi.Output.from_input(value)
        exports[name] = await output.future()
        if await output.is_secret():
            secret_exports.add(name)


def _run_program(program: Path, loop: asyncio.AbstractEventLoop, monitor: RecordingMonitor) -> tuple[dict[str, Any], set[str]]:
    """Run `program` as `__main__` under the mock runtime with the offline direct calls, then close
    `loop`: its exports and the names of the secret ones. A refused look-up is the error."""
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()

    @pulumi.runtime.test
    def run() -> Any:
        runpy.run_path(str(program), run_name="__main__")
        return _collect_exports(exports, secret_exports)

    try:
        with direct_calls.replaced_by(OFFLINE_CALLS):
            run()
    except Exception as failed:
        if monitor.refused:  # the refusal first: the program's failure may only follow from the look-up's answer
            raise LookupRefusedError(monitor.refused) from failed
        raise
    finally:
        loop.close()
    if monitor.refused:
        raise LookupRefusedError(monitor.refused)
    return exports, secret_exports
