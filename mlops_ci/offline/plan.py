"""The offline plan: evaluate a team's stack file through the real program, with no Pulumi CLI,
no credentials and no cloud call; print every resource, what it waits for, and write the CI
file the stack would commit.

    python -m mlops_ci.offline.plan [STACK] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from pulumi.runtime import rpc

from mlops_ci.offline.project_config import ProjectConfigError, check_stack_name
from mlops_ci.offline.runtime import Evaluation, Registration, evaluate
from mlops_ci.offline.stacks import STACKS_DIR, StackFileError, load_stack_file, shown_path
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.rules import escaped, terminal_text

DEFAULT_STACK = "vision-team"
# Resource options that change what `pulumi up` / `pulumi destroy` do, shown when set.
OPTION_FIELDS = ("protect", "retain_on_delete", "delete_before_replace")


def describe_value(value: Any) -> str:
    if rpc.is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, str) and "\n" in value:
        return f"<{value.count(chr(10))} lines>"
    if isinstance(value, dict):
        items = sorted(cast(dict[str, Any], value).items())
        return "{" + ", ".join(f"{k}: {describe_value(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(describe_value(v) for v in cast(list[Any], value)) + "]"
    return json.dumps(value) if not isinstance(value, str) else value


def describe_resource(evaluation: Evaluation, registration: Registration) -> list[str]:
    lines = [f"  + {registration.type}  {registration.name}"]
    lines += [f"      {key} = {describe_value(registration.inputs[key])}" for key in sorted(registration.inputs)]
    waits = [r.name for r in evaluation.waits_for(registration) if r.custom]
    if waits:
        lines.append(f"      waits for: {', '.join(sorted(waits))}")
    options = [field for field in OPTION_FIELDS if getattr(registration, field)]
    if options:
        lines.append(f"      options: {', '.join(options)}")
    return lines


def ci_files(evaluation: Evaluation) -> dict[str, str]:
    """Path -> content of the CI file and the job script, exactly as the program would commit them."""
    return {committed.path: committed.content for committed in evaluation.committed_files()}


def credential_mode(evaluation: Evaluation) -> str:
    if "workloadIdentityProvider" in evaluation.exports:
        return "auth workload-identity (keyless: no key, CI exchanges its OIDC token)"
    return f"auth key (service-account key in {evaluation.exports['secretName']})"


def render_plan(evaluation: Evaluation, stack_file: Path, written: dict[str, Path]) -> str:
    steps = evaluation.steps()
    lines = [
        f"mlops-ci offline plan for stack {evaluation.stack} ({stack_file.name})",
        "No Pulumi CLI, no credentials, no cloud call: the program ran against Pulumi's mock runtime.",
        f"Credential: {credential_mode(evaluation)}",
        "",
        f"Resources `pulumi up` would create: {sum(map(len, steps))}, in {len(steps)} steps"
        " (a step's resources are created in parallel, each after what it waits for).",
    ]
    for number, step in enumerate(steps, 1):
        lines.append(f"Step {number}:")
        for registration in step:
            lines += describe_resource(evaluation, registration)
    lines += ["", "Stack exports:"]
    for name, value in evaluation.exports.items():
        shown = "[secret]" if name in evaluation.secret_exports else str(value)
        # A multi-line export (nextSteps) reads as a block under its name.
        lines.append(
            f"  {name} =\n" + "\n".join(f"      {line}" for line in shown.splitlines())
            if "\n" in shown
            else f"  {name} = {shown}"
        )
    lines += ["", "CI file the stack would commit:"]
    lines += [f"  {path} -> {target}" for path, target in written.items()]
    return "\n".join(lines) + "\n"


def plan(stack: str, out: Path, stacks_dir: Path = STACKS_DIR) -> str:
    check_stack_name(stack)
    if stack in (".", ".."):  # a name the CLI accepts, but as a folder under `out` it is `out` or its parent
        raise ProjectConfigError(f"{stack!r}: a stack name that is not a folder name (the plan writes to {out}/<stack>)")
    stack_file = stacks_dir / f"Pulumi.{stack}.yaml"
    if not (stack_file.is_file() or stack_file.is_symlink()):  # a link is refused as such
        known = ", ".join(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack file {shown_path(stack_file)} (stacks: {escaped(known)})")
    stack_config = load_stack_file(stack_file)
    evaluation = evaluate(stack_config.stack, stack_config.config, stack_config.secret_keys, stacks_dir=stacks_dir)
    written: dict[str, Path] = {}
    for path, content in ci_files(evaluation).items():
        target = out / stack / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        written[path] = target
    return render_plan(evaluation, stack_file, written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("stack", nargs="?", default=DEFAULT_STACK, help=f"stack name in stacks/ (default {DEFAULT_STACK})")
    parser.add_argument("--out", type=Path, default=Path("build/plan"), help="folder for the CI file (default build/plan)")
    parser.add_argument("--stacks", type=Path, default=STACKS_DIR, help=f"folder of the stack files (default {STACKS_DIR})")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(terminal_text(plan(args.stack, args.out, args.stacks)))
    except (ConfigError, ProjectConfigError, StackFileError) as error:
        print(terminal_text(f"error: {error}"), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
