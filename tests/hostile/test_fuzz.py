"""Property tests of the rules: whatever a stack file holds, the program either runs or refuses with
`ConfigError` (or the CLI's own error) before any resource, every problem printable ASCII and naming its
key; the stack-file reader answers any text with a value or one `StackFileError`."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_ci.offline.project_config import ProjectConfigError
from mlops_ci.offline.stacks import StackFileError, load_stack_file
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.schema import SCHEMA
from tests.helpers import CountingMocks, config_for, run

KEYS = [f"mlops-ci:{name}" for name in SCHEMA.names] + ["gcp:project", "github:baseUrl", "gitlab:baseUrl"]
# Any text, control and bidirectional characters included, and the values the rules are about.
values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "true", "false", "..", "dvc.yaml", "g00gle", "10.0.0.1", "EU", "workload-identity", "admin", "\u202e"]),
)
extra_keys = st.tuples(st.sampled_from(["gcp", "mlops-ci", "github", "gitlab", "mlopsci", "x"]), st.text(min_size=1, max_size=20))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    extra=st.lists(extra_keys, max_size=2),
    platform=st.sampled_from(["github", "gitlab"]),
)
def test_any_config_runs_or_is_refused_before_any_resource(
    chosen: dict[str, str], extra: list[tuple[str, str]], platform: str
) -> None:
    config = config_for(platform) | chosen | {f"{namespace}:{name}": "x" for namespace, name in extra if ":" not in name}
    mocks = CountingMocks()
    refused: Exception | None = None
    try:
        run(platform, {key.replace(":", "__"): value for key, value in config.items()}, mocks=mocks)
    except (ConfigError, ProjectConfigError) as error:
        refused = error
    if refused is not None:
        problems = refused.problems if isinstance(refused, ConfigError) else [str(refused)]
        assert problems
        for problem in problems:
            # Nothing unprintable or look-alike reaches a terminal.
            assert problem.isascii(), problem
            assert problem.isprintable(), problem
            assert ":" in problem.split(" ")[0] or problem.startswith(("PULUMI_CONFIG", "Stack")), problem
        assert [c for c in mocks.created if not c.startswith("pulumi:providers:")] == []


yaml_fragments = st.sampled_from(
    ["config:", "  gcp:project: acme-ml-test", "  t:x: &a [1, 2]", "  t:y: *a", "- x", "? [a]", "  : b", "{", "[", "!!set",
     "&b", "*b", "  secure: v1:x", "encryptionsalt: v1:x", "  mlops-ci:branch: '\\e'", "\t", '"\\u202e"', "~",
     "0x" + "f" * 40, "9" * 500]
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(yaml_fragments, st.text(max_size=30)), max_size=12))
def test_any_stack_file_is_read_or_refused_in_one_error(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "Pulumi.fuzz.yaml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    message = ""
    try:
        load_stack_file(path)
    except (StackFileError, ProjectConfigError) as error:
        message = str(error)
    assert all(line.isascii() and line.isprintable() for line in message.split("\n")), message
