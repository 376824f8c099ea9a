"""Shared fixtures: a CLI runner, a runs folder, and the shared sample data (if present)."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medml_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_cli(*args: str) -> CliResult:
    """Invoke the real Typer app in-process, with stdout and stderr kept apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def no_hang():
    """A FIFO opened by mistake blocks forever: turn that into a failure, not a stuck suite."""

    def stuck(signum, frame):
        raise RuntimeError("medml blocked reading a non-regular file")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data from the repository root; tests that need it skip, saying why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}; it is provided beside the "
                    "repository on the development machine")
    return SHARED_DATA


def read_metrics(run: Path) -> dict:
    return json.loads((Path(run) / "metrics.json").read_text())


def write_config(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def train_text(folder: Path, text: str) -> Path:
    """Train the config ``text`` (written into ``folder``) into ``folder / "runs"``; the run."""
    result = run_cli("--quiet", "train", write_config(folder, text), "--runs-dir",
                     folder / "runs")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def train_runs(folder: Path, configs: dict[str, tuple[str, list[str]]]) -> dict[str, Path]:
    """Train each ``name: (shipped config, extra CLI args)`` into ``folder``; name -> run."""
    out = {}
    for name, (config, extra) in configs.items():
        result = run_cli("train", CONFIGS / f"{config}.yaml", "--runs-dir", folder, *extra)
        assert result.exit_code == 0, f"{name}: {result.stderr}"
        out[name] = Path(result.last_line)
    return out


def export_bundles(runs: dict[str, Path], *args: str) -> dict[str, Path]:
    """``medml export`` each run (with ``args``); name -> bundle folder."""
    out = {}
    for name, run in runs.items():
        result = run_cli("export", run, *args)
        assert result.exit_code == 0, f"{name}: {result.stderr}"
        out[name] = Path(result.last_line)
    return out


def run_data(run: Path):
    """(the run's features as its model reads them, the same rows as a predict input table
    with ids), both from medml's own loader of the run's config."""
    from medml_cli.data.base import prepare_features
    from medml_cli.workflows.run_model import (
        align_category_spelling,
        load_run_config,
        load_schema,
    )
    from medml_cli.workflows.train import load_dataset

    schema = load_schema(run)
    dataset = load_dataset(load_run_config(run))
    X = align_category_spelling(prepare_features(dataset.X, schema, "data", context="input"),
                                schema)
    frame = dataset.X.copy()
    if schema.id_column:
        frame.insert(0, schema.id_column, dataset.ids.to_numpy())
    return X, frame
