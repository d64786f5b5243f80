"""Check every team's stack at once: each `stacks/Pulumi.<team>.yaml` evaluated through the real
program (configuration rules included) and the policy pack, in one command (a large batch in
parallel worker processes), with no Pulumi CLI, no credentials and no cloud call. One failing
stack never stops the others.

    python -m mlops_ci.offline.check [--stacks DIR] [--jobs N]

Exit status: 0 if every stack passes, 1 if any fails, 2 if there is no stack file to check.
"""

# jsonschema's errors and ruamel.yaml's loader are untyped:
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import hashlib
import importlib.resources
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, cast

import jsonschema
import ruamel.yaml
from jsonschema.exceptions import best_match

from mlops_ci.ci.files import job_script_path
from mlops_ci.offline.analyzer import analyze
from mlops_ci.offline.project_config import ProjectConfigError
from mlops_ci.offline.runtime import Evaluation, Registration, evaluate
from mlops_ci.offline.stacks import STACKS_DIR, StackConfig, StackFileError, load_stack_file, stack_files, stack_name
from mlops_ci.policy.rules import POLICIES
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.model import stack_label
from mlops_ci.settings.rules import escaped, terminal_text

# Below this many stacks per worker, a worker's warm-up costs more than its share of stacks saves.
MIN_STACKS_PER_WORKER = 16


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason a stack fails: the rule it breaks and what breaks it."""

    rule: str
    """A policy name, or `config` (the program's settings), `stack-file` or `program` (any other failure,
    a rule that raises included)."""
    subject: str
    """What the finding is about: a resource, a config key, the stack file."""
    message: str
    advisory: bool = False
    """An advisory policy's finding: reported, and the stack still passes."""


@dataclasses.dataclass(frozen=True)
class StackReport:
    stack: str
    findings: list[Finding]
    claims: list[tuple[str, str]] = dataclasses.field(default_factory=list[tuple[str, str]])
    """What the stack takes for itself and no other stack may take: (kind, what)."""

    @property
    def ok(self) -> bool:
        return not any(not finding.advisory for finding in self.findings)


def check_stack(path: Path) -> StackReport:
    """The findings of one stack file. Every policy here is mandatory, so each violation fails it."""
    stack = stack_name(path)
    try:
        stack_config = load_stack_file(path)
        evaluation = evaluate(stack_config.stack, stack_config.config, stack_config.secret_keys, stacks_dir=path.parent)
        violations = analyze(evaluation.registrations, POLICIES)
        findings = [Finding(v.policy, v.subject, v.message, not v.mandatory) for v in violations] + ci_schema_findings(evaluation)
    except StackFileError as error:
        return StackReport(stack, [Finding("stack-file", path.name, problem) for problem in error.problems])
    except ConfigError as error:
        return StackReport(stack, [Finding("config", path.name, problem) for problem in error.problems])
    except ProjectConfigError as error:
        return StackReport(stack, [Finding("config", path.name, str(error))])
    except Exception as error:  # noqa: BLE001 - whatever breaks one team's program or a rule is that stack's finding; the rest still run
        return StackReport(stack, [Finding("program", path.name, f"{type(error).__name__}: {error}")])
    return StackReport(stack, findings, claims(evaluation) + copied_secrets(stack_config))


@functools.cache
def _schema_validator(schema: str) -> jsonschema.Draft7Validator:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / f"{schema}.json"
    return jsonschema.Draft7Validator(json.loads(vendored.read_text()))


def ci_schema_findings(evaluation: Evaluation) -> list[Finding]:
    """Each committed CI file against its platform's published schema (YAML 1.2, as the platforms
    read it: `on:` is a key, not a boolean)."""
    findings: list[Finding] = []
    for committed in evaluation.committed_ci_files():
        document: Any = ruamel.yaml.YAML(typ="safe", pure=True).load(committed.content)
        validator = _schema_validator(committed.platform.ci_schema)
        # The most relevant error (deepest in the document), not the schema's outermost alternative.
        error = cast("jsonschema.ValidationError | None", best_match(validator.iter_errors(document)))
        if error is not None:
            where = "/".join(str(part) for part in cast(Iterable[object], error.absolute_path)) or "(top)"
            findings.append(Finding("ci-schema", committed.path, f"{where}: {error.message}"))
    return findings


# What a stack's delivery names on its CI platform, beside the CI file: a second stack naming the same
# would overwrite it, and `pulumi destroy` of either delete it. Type -> (kind, the inputs that name it).
PLATFORM_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "github:index/actionsSecret:ActionsSecret": ("CI secret", ("repository", "secretName")),
    "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": ("CI secret", ("repository", "environment", "secretName")),
    "github:index/actionsVariable:ActionsVariable": ("CI variable", ("repository", "variableName")),
    "github:index/repositoryEnvironment:RepositoryEnvironment": ("deployment environment", ("repository", "environment")),
    "gitlab:index/projectVariable:ProjectVariable": ("CI variable", ("project", "environmentScope", "key")),
}


def _on_platform(evaluation: Evaluation, registration: Registration, keys: tuple[str, ...]) -> str:
    """`keys` of a platform resource, after its platform's API and owner."""
    provider = evaluation.by_urn(registration.provider_urn or "")
    where = [provider.plain("baseUrl"), provider.plain("owner"), *(registration.plain(key) for key in keys)]
    return " ".join(str(part) for part in where if part)


def claims(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(kind, what) of everything one stack takes for itself: its file's name, the bucket, the service
    account (its email names the project), the stack label, the CI file and job script in its repository and branch, and the
    secrets, variables and environment it names there."""
    taken = [
        # Two stack files whose names differ in case only are one file on a case-insensitive checkout
        # (macOS, Windows): which one `pulumi up` reads there depends on the checkout.
        ("stack file", f"Pulumi.{evaluation.stack}.yaml"),
        ("bucket", f"gs://{evaluation.exports['bucketName']}"),
        # None in direct keyless mode: the grants go to the repository's principal set.
        *(("service account", email) for email in [evaluation.exports.get("serviceAccountEmail")] if email),
        # How pre-flight tells this stack's bucket from another's: two stacks with one label could
        # each adopt, grant on and delete the other's.
        ("stack label", stack_label(evaluation.stack)),
    ]
    script = job_script_path(evaluation.stack)
    for committed in evaluation.committed_files():
        where = _on_platform(evaluation, committed.registration, ("repository", "project", "branch"))
        # The job script is the stack's own by its name, but two names alike are one file on a case-insensitive checkout.
        taken.append(("job script" if committed.path == script else "CI file", f"{where} {committed.path}"))
    for registration in evaluation.registrations:
        if registration.type in PLATFORM_NAMES:
            kind, keys = PLATFORM_NAMES[registration.type]
            taken.append((kind, _on_platform(evaluation, registration, keys)))
    return taken


def copied_secrets(stack_config: StackConfig) -> list[tuple[str, str]]:
    """Each salt and `secure:` value of a stack file, by its digest: `pulumi stack init` draws a new
    salt and `pulumi config set --secret` a new nonce, so one in two files was copied, and `pulumi up`
    with the platform's passphrase would hand one team's token to the other's stack."""
    return [("encrypted value", f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:16]}") for text in stack_config.encrypted]


def _compared(what: str) -> str:
    """A claim as compared: regardless of case (GitHub and GitLab paths, GitHub's secret and variable
    names and Google's names are case-insensitive) and of a base URL's trailing '/'."""
    return re.sub(r"/+(?= |$)", "", what.casefold())


def with_clashes(reports: list[StackReport]) -> list[StackReport]:
    """`reports`, each stack that claims what another claims failing with a finding naming both."""
    claimants: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for report in reports:
        for kind, what in dict.fromkeys(report.claims):
            claimants[kind, _compared(what)].append(report.stack)
    clashing: list[StackReport] = []
    for report in reports:
        clashes = [
            Finding(
                "clash",
                f"{kind} {what}",
                f"also claimed by {', '.join(other for other in claimants[kind, _compared(what)] if other != report.stack)}",
            )
            for kind, what in dict.fromkeys(report.claims)
            if len(claimants[kind, _compared(what)]) > 1
        ]
        clashing.append(dataclasses.replace(report, findings=report.findings + clashes))
    return clashing


def default_jobs(stack_count: int) -> int:
    """One worker per CPU this process may use, as long as each gets enough stacks: a worker first
    repeats the lazy imports of the program's SDKs (~0.4 s, some 15 stacks' worth; the 4 stacks of
    this repository check faster in one process)."""
    return max(1, min(len(os.sched_getaffinity(0)), stack_count // MIN_STACKS_PER_WORKER))


def check_all(paths: list[Path], jobs: int) -> list[StackReport]:
    """The reports of `paths`, in order. Pulumi's mock runtime is process-global, so stacks run in
    parallel processes, not threads, forked after this module's imports (~0.5 s)."""
    workers = min(jobs, len(paths))
    if workers <= 1:
        return [check_stack(path) for path in paths]
    # Forking is safe here: the command has started no thread yet (the SDK starts them per evaluation).
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(check_stack, paths, chunksize=math.ceil(len(paths) / workers)))


def render(reports: list[StackReport]) -> str:
    """One line per passing stack, one per finding of a failing stack (each naming stack and rule), a total."""
    lines: list[str] = []
    for report in reports:
        stack = escaped(report.stack)  # the file's name: any character but '/'
        if report.ok:
            lines.append(f"OK    {stack}")
        lines += [
            f"{'WARN' if f.advisory else 'FAIL'}  {stack}  [{f.rule}]  {escaped(f.subject)}: {escaped(f.message)}"
            for f in report.findings
        ]
    failed = sum(not report.ok for report in reports)
    lines.append(f"{len(reports)} stacks checked: {len(reports) - failed} OK, {failed} failed")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--stacks", type=Path, default=STACKS_DIR, help=f"folder of Pulumi.<stack>.yaml files (default {STACKS_DIR})"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help=f"stacks evaluated in parallel processes (default: one per CPU, at most one per {MIN_STACKS_PER_WORKER} stacks)",
    )
    args = parser.parse_args(argv)
    paths = stack_files(args.stacks)
    if not paths:
        # A check that checks nothing must not pass: a wrong --stacks would hide every stack.
        print(terminal_text(f"error: no Pulumi.<stack>.yaml in {args.stacks}"), file=sys.stderr)
        return 2
    reports = with_clashes(check_all(paths, args.jobs or default_jobs(len(paths))))
    sys.stdout.write(terminal_text(render(reports)))
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
