"""A small ML project, as a team would keep it: a generated data set tracked with `dvc add`, a
prepare -> train -> evaluate pipeline of plain Python scripts, `params.yaml`, a metrics file,
and `requirements-freeze.txt` bringing dvc[gs] (the guide's frozen requirements). Stdlib only,
so the stages need nothing but Python."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Mapping
from pathlib import Path

from .commands import E2E_VENV, run

REQUIREMENTS = "dvc[gs]\n"
# Every stage appends its name here (git-ignored, so a fresh clone has none): a CI job that
# re-ran a stage leaves this file behind.
STAGE_LOG = "stage-runs.log"
# Everything DVC restores from the remote: the tracked data set and each stage's outputs.
OUTPUTS = (
    "data/raw.csv",
    "data/prepared/train.csv",
    "data/prepared/test.csv",
    "models/model.json",
    "metrics.json",
)
GIT_TIMEOUT = 30
DVC_TIMEOUT = 180

FILES = {
    "requirements-freeze.txt": REQUIREMENTS,
    ".gitignore": f"/{STAGE_LOG}\n/.venv/\n",
    "params.yaml": """\
        prepare:
          test_fraction: 0.25
          seed: 7
        train:
          epochs: 400
          learning_rate: 0.1
        """,
    "dvc.yaml": """\
        stages:
          prepare:
            cmd: python src/prepare.py data/raw.csv data/prepared ${prepare.test_fraction} ${prepare.seed}
            deps: [src/prepare.py, data/raw.csv]
            params: [prepare]
            outs: [data/prepared]
          train:
            cmd: python src/train.py data/prepared/train.csv models/model.json ${train.epochs} ${train.learning_rate}
            deps: [src/train.py, data/prepared]
            params: [train]
            outs: [models/model.json]
          evaluate:
            cmd: python src/evaluate.py models/model.json data/prepared/test.csv metrics.json
            deps: [src/evaluate.py, models/model.json, data/prepared]
            metrics: [metrics.json]
        """,
    "src/prepare.py": f"""\
        import csv, random, sys
        from pathlib import Path

        source, target, test_fraction, seed = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
        with open("{STAGE_LOG}", "a") as log:
            log.write("prepare\\n")
        header, *rows = csv.reader(source.read_text().splitlines())
        random.Random(seed).shuffle(rows)
        cut = int(len(rows) * test_fraction)
        target.mkdir(parents=True, exist_ok=True)
        for name, part in (("test.csv", rows[:cut]), ("train.csv", rows[cut:])):
            with open(target / name, "w", newline="") as out:
                csv.writer(out).writerows([header, *part])
        """,
    "src/train.py": f"""\
        import csv, json, sys
        from pathlib import Path

        source, target, epochs, rate = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        with open("{STAGE_LOG}", "a") as log:
            log.write("train\\n")
        _, *rows = csv.reader(source.read_text().splitlines())
        points = [(float(x), float(y)) for x, y in rows[:1000]]  # a sample: the stage stays quick
        weight = bias = 0.0
        for _ in range(epochs):  # least squares by gradient descent
            errors = [(weight * x + bias - y, x) for x, y in points]
            weight -= rate * 2 * sum(e * x for e, x in errors) / len(points)
            bias -= rate * 2 * sum(e for e, _ in errors) / len(points)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({{"weight": weight, "bias": bias}}, indent=2) + "\\n")
        """,
    "src/evaluate.py": f"""\
        import csv, json, sys
        from pathlib import Path

        model_file, test_file, metrics_file = map(Path, sys.argv[1:4])
        with open("{STAGE_LOG}", "a") as log:
            log.write("evaluate\\n")
        model = json.loads(model_file.read_text())
        _, *rows = csv.reader(test_file.read_text().splitlines())
        points = [(float(x), float(y)) for x, y in rows]
        mse = sum((model["weight"] * x + model["bias"] - y) ** 2 for x, y in points) / len(points)
        metrics_file.write_text(json.dumps({{"mse": round(mse, 6), "test_points": len(points)}}, indent=2) + "\\n")
        """,
}


def raw_data(rows: int = 120_000) -> str:
    """y = 3x + 2 plus noise, the same on every run: ~2.4 MB, so that what a job downloads
    shows in its bytes and time."""
    generator = random.Random(20240501)
    lines = ["x,y"]
    for _ in range(rows):
        x = generator.uniform(-1, 1)
        lines.append(f"{x:.6f},{3 * x + 2 + generator.gauss(0, 0.1):.6f}")
    return "\n".join(lines) + "\n"


def tool_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with .venv-e2e first on PATH: its dvc, and its python for the stage commands."""
    return {**env, "PATH": f"{E2E_VENV / 'bin'}:{env['PATH']}"}


def dvc(project: Path, env: Mapping[str, str], *args: str) -> str:
    return run([E2E_VENV / "bin/dvc", *args], cwd=project, env=tool_env(env), timeout=DVC_TIMEOUT).stdout


def git(repository: Path, env: Mapping[str, str], *args: str | Path) -> str:
    return run(["git", *args], cwd=repository, env=env, timeout=GIT_TIMEOUT).stdout


def commit_all(repository: Path, env: Mapping[str, str], message: str) -> None:
    git(repository, env, "add", "--all")
    git(repository, env, "commit", "--quiet", "--message", message)


def change_parameter(project: Path, env: Mapping[str, str]) -> None:
    """A commit that changes a parameter of `train`, without running the pipeline: the job
    re-runs train and evaluate, not prepare."""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 400", "epochs: 20"))
    commit_all(project, env, "Fewer epochs")


def build(project: Path, env: Mapping[str, str]) -> None:
    """The project with every stage run once and all of it committed; outputs and the data set
    sit in the local DVC cache only (git ignores them)."""
    for name, text in FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    (project / "data").mkdir(exist_ok=True)
    (project / "data/raw.csv").write_text(raw_data())
    git(project, env, "init", "--quiet")
    dvc(project, env, "init", "--quiet")
    dvc(project, env, "add", "--quiet", "data/raw.csv")
    dvc(project, env, "repro", "--quiet")
    commit_all(project, env, "A DVC pipeline: prepare, train, evaluate")
