"""Recording provenance never runs a command named by the config folder's git repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo),
                                          "PATH": "/usr/bin:/bin"}).stdout.strip()


def _hostile_repo(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A repo holding a config whose .git/config names commands via fsmonitor and a filter."""
    repo = tmp_path / "experiment"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "exp.yaml").write_text("task: heart-disease\nmodel: {type: logistic-regression}\n"
                                   "evaluation: {bootstrap: 0, plots: false}\n")
    (repo / "notes.txt").write_text("v1\n")
    (repo / ".gitattributes").write_text("*.txt filter=evil\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "init")
    fsmonitor_marker = tmp_path / "fsmonitor-ran"
    filter_marker = tmp_path / "filter-ran"
    with open(repo / ".git" / "config", "a") as handle:
        handle.write(f"[core]\n\tfsmonitor = touch {fsmonitor_marker}; false\n"
                     f'[filter "evil"]\n\tclean = "touch {filter_marker}; cat"\n'
                     f"\tsmudge = touch {filter_marker}; cat\n")
    (repo / "notes.txt").write_text("v2, edited after the commit\n")  # status must look
    return repo, fsmonitor_marker, filter_marker


def test_hostile_repository_is_real(tmp_path):
    """The fixture's commands do run under plain `git status`, so the next test means something."""
    repo, fsmonitor_marker, filter_marker = _hostile_repo(tmp_path)
    subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                   env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": "/usr/bin:/bin"})
    assert fsmonitor_marker.exists() or filter_marker.exists()


def test_train_records_commit_without_running_repository_commands(tmp_path):
    repo, fsmonitor_marker, filter_marker = _hostile_repo(tmp_path)
    result = run_cli("train", repo / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    assert not fsmonitor_marker.exists(), "core.fsmonitor ran"
    assert not filter_marker.exists(), "a clean/smudge filter ran"
    env = json.loads((Path(result.last_line) / "environment.json").read_text())
    assert env["config_git"]["commit"] == _git(repo, "rev-parse", "HEAD")
    assert env["config_git"]["dirty"] is True  # notes.txt was edited after the commit


def test_clean_checkout_is_not_dirty_and_packed_refs_are_read(tmp_path):
    from medml_cli.runs.environment import git_commit

    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("x\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "c")
    _git(repo, "pack-refs", "--all")
    (repo / "sub").mkdir()
    info = git_commit(repo / "sub")
    assert info == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "a.txt").write_text("changed\n")
    assert git_commit(repo)["dirty"] is True


def test_folder_outside_any_repository(tmp_path):
    from medml_cli.runs.environment import git_commit

    assert git_commit(tmp_path) is None


def test_a_run_refused_before_recording_leaves_no_git_check_behind(tmp_path, monkeypatch):
    """The git checks start before the data are read; a data error stops them and removes
    their stand-in git dir."""
    import tempfile

    from medml_cli.config.loader import validate_config_data
    from medml_cli.errors import DataError
    from medml_cli.runs import environment
    from medml_cli.workflows.train import run_experiment

    repo, _, _ = _hostile_repo(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(environment.subprocess, "Popen", recording_popen)
    cfg = validate_config_data({"task": "tabular-classification",
                                "data": {"type": "csv", "path": str(tmp_path / "absent.csv"),
                                         "target": "y"},
                                "model": {"type": "logistic-regression"}})
    with pytest.raises(DataError, match="file not found"):
        run_experiment(cfg, runs_dir=tmp_path / "runs", config_path=repo / "exp.yaml")
    assert started, "the git check did not start before the data were read"
    assert all(process.poll() is not None for process in started)
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "runs").exists()
