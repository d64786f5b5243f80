#!/usr/bin/env python3
"""Compares a pulumi-github schema (JSON, e.g. `pulumi package get-schema <plugin>`) with what the Python SDK
pulumi_github installed next to this interpreter sends and expects on the wire.

For each checked resource: its token, input and output property names (camelCase, as on the wire), which
inputs are required, which outputs the SDK marks secret, and the shape of every property (string, list of
objects, map...), recursing into object types. For each function: token, argument and result names and
shapes. A shape mismatch (a list in the SDK, one object in the schema) means the plugin and the SDK disagree
on the wire.

  python compare_schema.py SCHEMA.json            # the resources and functions mlops-ci uses
  python compare_schema.py SCHEMA.json --all      # every resource and function of the SDK

Prints one line per difference and a closing "N passed, N failed" line; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import collections.abc
import importlib
import importlib.metadata
import inspect
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

import pulumi
import pulumi_github  # pyright: ignore[reportMissingTypeStubs]

RESOURCES = [
    "ActionsSecret",
    "ActionsVariable",
    "RepositoryFile",
    "RepositoryEnvironment",
    "RepositoryEnvironmentDeploymentPolicy",
    "ActionsEnvironmentSecret",
]
FUNCTIONS = ["getRepository", "getUser", "getBranch", "getRepositoryFile", "getBranchProtectionRules"]
TOKEN = re.compile(r"['\"](github:[A-Za-z0-9_/]+:[A-Za-z0-9_]+)['\"]")
SECRETS = re.compile(r"additional_secret_outputs=\[([^\]]*)\]")
ARGS = re.compile(r"__args__\['(\w+)'\]")

Shape = tuple[Any, ...]


def wire_properties(cls: type) -> dict[str, Any]:
    """Wire name -> getter function of every @pulumi.getter property of cls (as pulumi's _py_properties)."""
    found: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        for value in vars(base).values():
            getter: Any = value.fget if isinstance(value, property) else None
            if hasattr(getter, "_pulumi_name"):
                found[str(getter._pulumi_name)] = getter
    return found


def annotation(fn: Any) -> tuple[Any, dict[str, Any]]:
    """The return annotation of a getter, unevaluated, and the globals its forward references live in."""
    inner = inspect.unwrap(fn)
    return inner.__annotations__["return"], inner.__globals__


def py_shape(note: Any, scope: dict[str, Any]) -> Shape:
    """Reduces an SDK annotation (pulumi.Input[Optional[Sequence[...]]] ...) to a comparable shape."""
    if isinstance(note, str | typing.ForwardRef):
        text = note if isinstance(note, str) else note.__forward_arg__
        if text.startswith("Output["):
            return ("ignore",)  # pulumi.Input's Output[T] alternative: T is there too
        return py_shape(eval(text, scope), scope)  # a class name of the SDK
    origin, args = typing.get_origin(note), typing.get_args(note)
    if origin is typing.Union:
        shapes = {py_shape(a, scope) for a in args if a is not type(None)}
        shapes.discard(("ignore",))
        if len(shapes) != 1:
            return ("union", *sorted(map(str, shapes)))
        return shapes.pop()
    if origin is collections.abc.Awaitable:
        return ("ignore",)
    if origin is pulumi.Output:
        return py_shape(args[0], scope)
    if origin in (collections.abc.Sequence, list):
        return ("array", py_shape(args[0], scope))
    if origin in (collections.abc.Mapping, dict):
        return ("map", py_shape(args[1], scope))
    if isinstance(note, type) and typing.is_typeddict(note):
        return ("ignore",)  # the ...ArgsDict alternative of an ...Args class
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if note in simple:
        return (simple[note],)
    if note is Any:
        return ("any",)
    if isinstance(note, type):
        return ("object", note)
    return ("unknown", str(note))


def schema_shape(spec: dict[str, Any]) -> Shape:
    ref = spec.get("$ref")
    if isinstance(ref, str):
        return ("any",) if ref == "pulumi.json#/Any" else ("object", ref.removeprefix("#/types/"))
    kind = spec.get("type")
    if kind == "array":
        return ("array", schema_shape(spec["items"]))
    if kind == "object":
        return ("map", schema_shape(spec.get("additionalProperties", {"$ref": "pulumi.json#/Any"})))
    return (str(kind),)


class Comparison:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"DIFF {what}")

    def names(self, where: str, sdk: set[str], schema: set[str]) -> None:
        self.check(sdk <= schema, f"{where}: in the SDK, not in the schema: {sorted(sdk - schema)}")
        self.check(schema <= sdk, f"{where}: in the schema, not in the SDK: {sorted(schema - sdk)}")

    def shapes(self, where: str, getters: dict[str, Any], props: dict[str, Any], depth: int = 0) -> None:
        for name in sorted(set(getters) & set(props)):
            self.shape(f"{where}.{name}", py_shape(*annotation(getters[name])), schema_shape(props[name]), depth)

    def shape(self, where: str, sdk: Shape, schema: Shape, depth: int) -> None:
        if sdk[0] == "object" and schema[0] == "object" and depth < 6:
            spec = self.schema["types"].get(schema[1], {})
            getters = wire_properties(sdk[1])
            props: dict[str, Any] = spec.get("properties", {})
            self.names(f"{where} ({schema[1]})", set(getters), set(props))
            self.shapes(where, getters, props, depth + 1)
            return
        if sdk[0] in ("array", "map") and sdk[0] == schema[0]:
            self.shape(where + "[]", sdk[1], schema[1], depth)
            return
        sdk_text = "object" if sdk[0] == "object" else str(sdk)
        schema_text = "object" if schema[0] == "object" else str(schema)
        self.check(sdk_text == schema_text, f"{where}: the SDK has {sdk_text}, the schema {schema_text}")

    def resource(self, cls: type) -> None:
        source = inspect.getsource(cls)
        token = next(t for t in TOKEN.findall(source) if t.endswith(":" + cls.__name__))
        spec = self.schema["resources"].get(token)
        self.check(spec is not None, f"{token}: resource missing from the schema")
        if spec is None:
            return
        # The SDK names it <Resource>InitArgs when a nested type already took <Resource>Args.
        args_name = re.search(r"get_resource_args_opts\((\w+),", source)
        args_cls = getattr(importlib.import_module(cls.__module__), args_name[1] if args_name else cls.__name__ + "Args")
        inputs = wire_properties(args_cls)
        self.names(f"{token} inputs", set(inputs), set(spec.get("inputProperties", {})))
        self.shapes(f"{token} input", inputs, spec.get("inputProperties", {}))
        init = inspect.signature(args_cls.__init__).parameters.values()
        py_required = {p.name for p in init if p.default is inspect.Parameter.empty and p.name != "__self__"}
        to_wire = {py: wire for wire, fn in inputs.items() for py in [fn.__name__]}
        self.check(
            {to_wire.get(n, n) for n in py_required} == set(spec.get("requiredInputs", [])),
            f"{token}: required inputs differ: SDK {sorted(py_required)}, schema {sorted(spec.get('requiredInputs', []))}",
        )
        outputs = wire_properties(cls)
        self.names(f"{token} outputs", set(outputs), set(spec.get("properties", {})))
        self.shapes(f"{token} output", outputs, spec.get("properties", {}))
        sdk_secret = {s.strip().strip("\"'") for m in SECRETS.findall(source) for s in m.split(",") if s.strip()}
        schema_secret = {k for k, v in spec.get("properties", {}).items() if v.get("secret")}
        self.check(sdk_secret <= schema_secret, f"{token}: secret in the SDK only: {sorted(sdk_secret - schema_secret)}")

    def function(self, fn: Any) -> None:
        source = inspect.getsource(fn)
        token = TOKEN.findall(source)[0]
        spec = self.schema["functions"].get(token)
        self.check(spec is not None, f"{token}: function missing from the schema")
        if spec is None:
            return
        self.names(f"{token} arguments", set(ARGS.findall(source)), set(spec.get("inputs", {}).get("properties", {})))
        result = wire_properties(py_shape(*annotation(fn))[1])
        props: dict[str, Any] = spec.get("outputs", {}).get("properties", {})
        self.names(f"{token} results", set(result), set(props))
        self.shapes(f"{token} result", result, props)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("schema", type=Path)
    parser.add_argument("--all", action="store_true", help="every resource and function of the SDK")
    opts = parser.parse_args()
    comparison = Comparison(json.loads(opts.schema.read_text()))
    module: Any = pulumi_github
    members = typing.cast(dict[str, Any], vars(module))
    if opts.all:
        resources = [c for c in members.values() if isinstance(c, type) and issubclass(c, pulumi.CustomResource)]
        resources = [c for c in resources if c.__name__ != "Provider"]
        functions = [f for n, f in members.items() if n.startswith("get_") and not n.endswith("_output") and callable(f)]
    else:
        resources = [getattr(module, name) for name in RESOURCES]
        functions = [getattr(module, snake(name)) for name in FUNCTIONS]
    for cls in resources:
        comparison.resource(cls)
    for fn in functions:
        comparison.function(fn)
    print(f"pulumi_github {importlib.metadata.version('pulumi_github')}: {len(resources)} resources, {len(functions)} functions")
    print(f"schema comparison: {comparison.passed} passed, {comparison.failed} failed")
    return 1 if comparison.failed else 0


if __name__ == "__main__":
    sys.exit(main())
