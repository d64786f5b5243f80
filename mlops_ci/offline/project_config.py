"""What the Pulumi CLI does to a stack's configuration before the program runs, done offline.

The CLI (`sdk/go/common/workspace/config.go`, `mergeConfig`) adds every key declared under
`config:` in Pulumi.yaml with a `default:` (or `value:`) that the stack does not set, as text
(`fmt.Sprintf("%v")`: `true`, `''`); refuses a stack that lacks a project-namespace key with
neither; then checks each declared type and `secret: true`. The mock runtime does none of it, so
`evaluate` calls `apply_project_config` first: the program sees what `pulumi up` would hand it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops_ci.settings.rules import stack_name_problem
from mlops_ci.settings.schema import PROJECT_FILE, load_schema


class ProjectConfigError(Exception):
    """The error the CLI gives before the program runs, in the CLI's words."""


def check_stack_name(stack: str) -> None:
    if stack_name_problem(stack):
        raise ProjectConfigError(f"{stack!r}: stack names may only contain alphanumeric, hyphens, underscores, or periods")


def _conforms(type_: str, text: str) -> bool:
    # The CLI's type check of a primitive (`ValidateConfigValue`) for the types Pulumi.yaml uses.
    if type_ == "boolean":
        return text in ("true", "false")
    if type_ == "integer":
        return text.lstrip("-").isdigit()
    return True


def apply_project_config(
    stack: str,
    config: Mapping[str, str],
    secret_keys: tuple[str, ...] = (),
    project_file: Path = PROJECT_FILE,
) -> dict[str, str]:
    """`config` with the project's defaults merged in, or the CLI's error for a missing or mistyped key."""
    check_stack_name(stack)
    schema = load_schema(project_file)
    merged = dict(config)
    missing: list[str] = []
    # Each declaration with its full key (`branch` is `mlops-ci:branch`), in the CLI's order.
    declarations = [
        (declared, declared.name if ":" in declared.name else f"{schema.project}:{declared.name}")
        for declared in sorted(schema.keys, key=lambda k: k.name)
    ]
    for declared, key in declarations:
        if key in merged:
            continue
        if declared.default_text is None:
            if key.startswith(f"{schema.project}:"):
                missing.append(declared.name)
            continue
        merged[key] = declared.default_text
    if missing:
        noun = "value" if len(missing) == 1 else "values"
        listed = f"'{missing[0]}'" if len(missing) == 1 else ", ".join(f"'{m}'" for m in missing[:-1]) + f" and '{missing[-1]}'"
        raise ProjectConfigError(f"Stack '{stack}' is missing configuration {noun} {listed}")
    for declared, key in declarations:
        if declared.secret and key not in secret_keys:
            raise ProjectConfigError(f"Stack '{stack}' with configuration key '{declared.name}' must be encrypted as it's secret")
        if not _conforms(declared.type, merged[key]):
            raise ProjectConfigError(
                f"Stack '{stack}' with configuration key '{declared.name}' must be of type '{declared.type}'"
            )
    return merged
