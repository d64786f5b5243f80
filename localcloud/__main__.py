"""`python -m localcloud [--state-dir D] COMMAND` for one state directory (default $MLOPS_CI_LOCAL).

start [--idle-timeout S]                  start the storage emulator and token endpoint in the background
stop | status                             status exits 1 if not running
env                                       shell exports for `pulumi up` against this local cloud
repo github OWNER/NAME [--branch main]    create a repository (bare git + numeric ids); GitLab: GROUP/.../PROJECT
ci-env github OWNER/NAME [--dotenv]       what a CI job of the repository gets (GitLab: --protected-ref)
clone-url github OWNER/NAME               the bare repository playing the remote
install-plugins                           into $PULUMI_HOME's plugin cache (instead of PATH)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from localcloud import engine, platform, services
from localcloud.state import ENV_STATE_DIR, open_cloud, state_dir

BIN = Path(__file__).resolve().parent / "bin"
LOOKING = ("stop", "status")
"""Commands that only look at (or stop) a state directory: they never create it."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description="mlops-ci local cloud")
    parser.add_argument("--state-dir", help=f"state directory (default ${ENV_STATE_DIR})")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the storage emulator and the token endpoint in the background")
    start.add_argument(
        "--idle-timeout", type=float, help=f"seconds without activity before they stop (${services.ENV_IDLE_TIMEOUT})"
    )
    commands.add_parser("stop", help="stop them")
    commands.add_parser("status", help="print their URLs; exit 1 if not running")
    commands.add_parser("env", help="print the environment `pulumi up` needs against this local cloud")
    serve = commands.add_parser("serve", help="run the services in the foreground (what `start` launches)")
    serve.add_argument("--idle-timeout", type=float, default=services.DEFAULT_IDLE_TIMEOUT)
    repo = commands.add_parser("repo", help="create a GitHub repository or GitLab project with a branch")
    repo.add_argument("platform", choices=["github", "gitlab"])
    repo.add_argument("path", help="GitHub owner/name, GitLab group[/subgroup...]/project")
    repo.add_argument("--branch", action="append", help="branch to create (repeatable; default main)")
    ci_env = commands.add_parser("ci-env", help="the secrets/variables a CI job of the repository gets (JSON; values in clear)")
    ci_env.add_argument("platform", choices=["github", "gitlab"])
    ci_env.add_argument("path")
    ci_env.add_argument("--protected-ref", action="store_true", help="GitLab: a protected ref (with protected variables)")
    ci_env.add_argument("--dotenv", action="store_true", help="KEY=VALUE lines instead of JSON")
    clone = commands.add_parser("clone-url", help="file:// URL of the repository's bare git repository")
    clone.add_argument("platform", choices=["github", "gitlab"])
    clone.add_argument("path")
    run = commands.add_parser("pulumi", help="pulumi up/preview/destroy of the real program for STACK against this local cloud")
    run.add_argument("operation", choices=["up", "preview", "destroy"])
    run.add_argument("--stack", required=True, help="a stacks/Pulumi.<stack>.yaml")
    for name, text in (
        ("push", "the stack's nextSteps in the team's clone: dvc remote add --default, dvc push, git push"),
        ("ci", "run the committed CI file with the platform's stored variables; exit 0 = green"),
        ("demo", "up, push, ci (green), destroy, ci with the credential CI had (red: revoked)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--stack", required=True)
    commands.add_parser("install-plugins", help="pulumi plugin install the three plugins (tarballs with this checkout's path)")
    args = parser.parse_args(argv)
    if args.command == "install-plugins":
        return install_plugins()
    root = state_dir(args.state_dir, create=args.command not in LOOKING)
    if args.command in LOOKING and not root.is_dir():
        print("not running")  # nothing was ever started there: nothing to create either
        return 1 if args.command == "status" else 0

    if args.command == "start":
        print(json.dumps(services.start(root, args.idle_timeout), indent=2))
    elif args.command == "stop":
        print("stopped" if services.stop(root) else "not running")
    elif args.command == "status":
        running = services.status(root)
        print(json.dumps(running, indent=2) if running else "not running")
        return 0 if running else 1
    elif args.command == "env":
        print(f"export {ENV_STATE_DIR}={root}")
        print(f"export PATH={BIN}:{os.environ.get('PATH', '')}")
        running = services.status(root)
        if running:  # what DVC/gcsfs in CI and the program's credential check need (see shared NOTES)
            print(f"export STORAGE_EMULATOR_HOST={running['storageProxy']}")
            print("export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false")
    elif args.command == "serve":
        services.run(root, args.idle_timeout)
    elif args.command == "ci-env":
        environment = platform.ci_environment(open_cloud(root), args.platform, args.path, args.protected_ref)
        if args.dotenv:
            print("\n".join(f"{key}={value}" for key, value in sorted(environment.items())))
        else:
            print(json.dumps(environment, indent=2, sort_keys=True))
    elif args.command == "clone-url":
        found = platform.find_repository(open_cloud(root), args.platform, args.path)
        if found is None:
            print(f"no {args.platform} repository {args.path} in {root}", file=sys.stderr)
            return 1
        print(Path(found["gitDir"]).as_uri())
    elif args.command == "pulumi":
        return run_pulumi(root, args.stack, args.operation)
    elif args.command == "push":
        return run_push(root, args.stack)
    elif args.command == "ci":
        return run_ci(root, args.stack)
    elif args.command == "demo":
        return run_demo(root, args.stack)
    elif args.command == "repo":
        cloud = open_cloud(root)
        branches = args.branch or ["main"]
        created = platform.create_repository(cloud, args.platform, args.path, branches)
        print(json.dumps(created, indent=2))
    return 0


def _workspace(root: Path, stack: str) -> engine.Workspace | None:
    cli = engine.find_cli()
    if cli is None:
        print("no Pulumi CLI found (set PULUMI_CLI, or install the Pulumi CLI)", file=sys.stderr)
        return None
    return engine.Workspace(root, stack, cli, cloud_dir=root)


def run_pulumi(root: Path, stack: str, operation: str) -> int:
    """The program in `root/project` (a scratch copy), state in `root/backend`, cloud in `root`."""
    space = _workspace(root, stack)
    if space is None:
        return 1
    if operation != "destroy" and space.ensure_repository():
        print(f"created {space.config['mlops-ci:repository']} in the local cloud, seeded with the sample DVC project")
    space.init()
    policy = ["--policy-pack", "policy"]
    args = {
        "up": ["up", "--yes", "--skip-preview", *policy],
        "preview": ["preview", *policy],
        "destroy": ["destroy", "--yes", "--skip-preview"],
    }
    result = space.pulumi(*args[operation], "--stack", stack, check=False)
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if operation == "up" and result.returncode == 0:
        outputs = space.outputs()
        shown = {k: v for k, v in outputs.items() if k != "nextSteps"}
        print("\nOutputs:\n" + json.dumps(shown, indent=2, sort_keys=True))
        print(f"\nNext steps (`make local-push STACK={stack}` does them in the team's clone, {root / 'team-clone'}):")
        print(outputs.get("nextSteps", ""))
    print(f"\nJournal of the provider calls: {root / 'journal.jsonl'}")
    return result.returncode


def run_push(root: Path, stack: str) -> int:
    from localcloud import chapter

    space = _workspace(root, stack)
    if space is None:
        return 1
    outputs = space.outputs()
    cloud = open_cloud(root)
    services.start(root)
    log = chapter.push_data(
        cloud, chapter.Stack.from_config(stack, space.config), str(space.config["gcp:project"]), outputs["dvcRemoteUrl"]
    )
    print(f"dvc push to {outputs['dvcRemoteUrl']} (as the team maintainer) and .dvc/config pushed:\n{log}")
    return 0


def _ci(root: Path, stack: str, kept: dict[str, str] | None = None) -> int:
    """local-ci: the pipeline with the variables the platform stores, or with those a runner `kept`."""
    from localcloud import chapter

    space = _workspace(root, stack)
    if space is None:
        return 1
    services.start(root)
    plan = chapter.Stack.from_config(stack, space.config)
    result = chapter.run_ci(open_cloud(root), plan, kept=kept)
    print(result.log)
    where = "as committed" if result.ci_file_present else "as last committed (pulumi destroy removed it)"
    verdict = "green" if result.returncode == 0 else f"red (exit {result.returncode})"
    print(f"\n{plan.ci_file} {where} at {result.commit[:12]} on {plan.branch}: {verdict}")
    return result.returncode


def run_ci(root: Path, stack: str) -> int:
    return _ci(root, stack)


def _step(steps: list[tuple[str, bool]], name: str, action: Callable[[], bool]) -> bool:
    """Runs one step of the demo and records whether it came out as expected; a step that raises
    is a failed step, said in one line (what failed, and why), never a traceback."""
    try:
        passed = action()
    except Exception as error:  # noqa: BLE001 - the demo says what failed, then destroys what it created
        print(f"\n{name}: failed: {type(error).__name__}: {error}", file=sys.stderr)
        passed = False
    steps.append((name, passed))
    return passed


def run_demo(root: Path, stack: str) -> int:
    """up → push → ci (green) → destroy → ci with what CI had (red: revoked): a key stack's key, a
    keyless stack's provider name (its job then gets the ID token the platform still issues, and
    Google refuses it). Exit 0 when every step came out as expected. Whatever fails, `pulumi destroy`
    runs once `pulumi up` was tried (a failed up can leave resources), so a failed demo leaves nothing up."""
    from localcloud import chapter

    steps: list[tuple[str, bool]] = []
    kept: list[dict[str, str]] = []

    def ci_green() -> bool:
        space = _workspace(root, stack)
        if space is None:
            return False
        plan = chapter.Stack.from_config(stack, space.config)
        kept.append(chapter.platform.ci_environment(open_cloud(root), plan.platform, plan.repository))
        return _ci(root, stack) == 0

    pushed = _step(steps, "pulumi up", lambda: run_pulumi(root, stack, "up") == 0) and _step(
        steps, "dvc push (nextSteps)", lambda: run_push(root, stack) == 0
    )
    if pushed:
        _step(steps, "CI green", ci_green)
    destroyed = _step(steps, "pulumi destroy", lambda: run_pulumi(root, stack, "destroy") == 0)
    if destroyed and dict(steps).get("CI green"):
        print("\nThe same pipeline after destroy, with the variables CI had (a copy a runner kept):")
        _step(steps, "CI red: access revoked", lambda: _ci(root, stack, kept[0]) != 0)
    print("\n" + "\n".join(f"{'ok ' if passed else 'FAILED'} {name}" for name, passed in steps))
    return 0 if len(steps) == 5 and all(passed for _, passed in steps) else 1


def install_plugins() -> int:
    cli = engine.find_cli()
    if cli is None:
        print("no Pulumi CLI found (set PULUMI_CLI)", file=sys.stderr)
        return 1
    destination = services.REPOSITORY / "build" / "localcloud" / "plugins"
    for name, version in engine.PLUGINS.items():
        tarball = engine.plugin_tarball(name, destination)
        subprocess.run([str(cli), "plugin", "install", "resource", name, version, "--file", str(tarball)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
