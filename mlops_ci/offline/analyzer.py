"""The engine's side of a policy check, for offline registrations: what `pulumi preview
--policy-pack policy` would hand the pack's rules, built from what the program registered.

The engine marshals a resource's properties into a protobuf Struct (secrets kept as markers,
unknowns kept, internal `__` keys dropped) and pulumi_policy unmarshals them (secrets unwrapped,
unknowns raising on access). `policy_props` does both, with pulumi_policy's own functions, so a
rule sees here what it sees under the engine. Resource rules get a resource's inputs; stack rules
get every resource's outputs.

Not recorded offline, so absent here: ignoreChanges, aliases, additionalSecretOutputs, custom
timeouts, property dependencies, and the engine's default providers (only explicit providers
are known). No rule of the pack reads them.
"""

# pulumi_policy types a rule's result as `Awaitable[Unknown] | None` (only None is accepted here):
# pyright: reportUnknownMemberType=false
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from google.protobuf import json_format, struct_pb2
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

if TYPE_CHECKING:
    from mlops_ci.offline.runtime import Registration


@dataclasses.dataclass(frozen=True)
class Violation:
    """One report of a rule: which policy, about which resource (None: the stack as a whole)."""

    policy: str
    resource: Registration | None
    message: str
    mandatory: bool = True
    """False for an advisory policy: the engine warns and goes on. A policy without its own level
    takes the pack's, mandatory."""

    @property
    def subject(self) -> str:
        return f"{self.resource.name} ({self.resource.type})" if self.resource else "stack"


def wire_struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties as the engine sends them to an analyzer."""
    struct = struct_pb2.Struct()
    struct.update({key: value for key, value in properties.items() if not key.startswith("__")})
    return struct


def policy_props(properties: Mapping[str, Any]) -> Mapping[str, Any]:
    """Properties as a rule receives them: through the engine's Struct and pulumi_policy's unmarshalling
    (numbers become floats, secrets plain values, unknowns raise `UnknownValueError` when read)."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(wire_struct(properties))))


def _options(registration: Registration) -> PolicyResourceOptions:
    # Registrations record only whether deleteBeforeReplace is true; the engine passes an unset option as None.
    return PolicyResourceOptions(
        protect=registration.protect,
        ignore_changes=[],
        delete_before_replace=True if registration.delete_before_replace else None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=registration.parent or None,
    )


class _Stack:
    """The registrations of one evaluation, looked up by URN."""

    def __init__(self, registrations: Sequence[Registration]) -> None:
        self.registrations = registrations
        self.by_urn = {registration.urn: registration for registration in registrations}

    def provider(self, registration: Registration) -> PolicyProviderResource | None:
        if not registration.provider_urn:
            return None
        provider = self.by_urn[registration.provider_urn]
        return PolicyProviderResource(provider.type, policy_props(provider.inputs), provider.urn, provider.name)

    def resource_args(self, registration: Registration) -> ResourceValidationArgs:
        return ResourceValidationArgs(
            resource_type=registration.type,
            props=policy_props(registration.inputs),
            urn=registration.urn,
            name=registration.name,
            opts=_options(registration),
            provider=self.provider(registration),
        )

    def stack_args(self) -> StackValidationArgs:
        resources = {
            registration.urn: PolicyResource(
                resource_type=registration.type,
                props=policy_props(registration.outputs),
                urn=registration.urn,
                name=registration.name,
                opts=_options(registration),
                provider=self.provider(registration),
                parent=None,
                dependencies=[],
                property_dependencies={},
            )
            for registration in self.registrations
        }
        for registration in self.registrations:
            resource = resources[registration.urn]
            resource.parent = resources.get(registration.parent)
            resource.dependencies = [resources[urn] for urn in registration.dependencies if urn in resources]
        return StackValidationArgs(list(resources.values()))


def analyze(registrations: Sequence[Registration], policies: Sequence[Policy]) -> list[Violation]:
    """Every violation `policies` report for these registrations: resource rules on each resource,
    stack rules on all of them, as the engine's Analyze and AnalyzeStack calls would."""
    stack = _Stack(registrations)
    violations: list[Violation] = []

    def reporter(policy: Policy, resource: Registration | None) -> ReportViolation:
        def report_violation(message: str, urn: str | None = None) -> None:
            # A resource rule's violation is always about its resource; a stack rule names one, or none.
            about = resource if resource is not None else stack.by_urn.get(urn or "")
            violations.append(Violation(policy.name, about, message, policy.enforcement_level != EnforcementLevel.ADVISORY))

        return report_violation

    # Built once and shared, as the rules only read them: unmarshalling is most of the analysis's cost.
    resource_args = [(registration, stack.resource_args(registration)) for registration in registrations]
    results: list[object] = []
    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            validate_resource = cast(Callable[[ResourceValidationArgs, ReportViolation], object], policy.validate)
            results += [validate_resource(args, reporter(policy, registration)) for registration, args in resource_args]
        elif isinstance(policy, StackValidationPolicy):
            validate_stack = cast(Callable[[StackValidationArgs, ReportViolation], object], policy.validate)
            results.append(validate_stack(stack.stack_args(), reporter(policy, None)))
        if any(result is not None for result in results):
            # pulumi_policy returns an awaitable for async rules; dropping it would skip the rule silently.
            raise TypeError(f"policy {policy.name}: asynchronous rules are not supported offline")
    return violations
