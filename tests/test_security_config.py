"""Config and command-line hardening: bounded YAML, YAML 1.2 scalars, numbers that keep
scikit-learn's meaning, safe run names, and gates that follow each metric's direction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIGS, run_cli, write_config

HEART = "task: heart-disease\nmodel: {type: logistic-regression}\n"
QUICK = ["--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false"]


def billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return HEART + text.replace("a: &a", "zz: &a", 1)


def test_alias_bomb_is_refused_fast_without_growing(tmp_path):
    """9 levels of 9 aliases: refused with exit 2, in a child capped at 1 GB of memory."""
    config = write_config(tmp_path, billion_laughs())
    capped = ("import resource,sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
              "from medml_cli.cli import main; sys.argv=['medml','config','validate',"
              f"{str(config)!r}]; main()")
    proc = subprocess.run([sys.executable, "-c", capped], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "aliases" in proc.stderr and "billion laughs" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_alias_bomb_in_set_value_and_deep_nesting(tmp_path):
    config = write_config(tmp_path, HEART)
    bomb = "[" + ",".join(["[" + ",".join(["x"] * 9) + "]"] * 9) + "]"
    assert run_cli("config", "validate", config, "--set", f"model.C={bomb}").exit_code == 2
    deep = write_config(tmp_path, HEART + "x: " + "[" * 3000 + "]" * 3000 + "\n", "deep.yaml")
    result = run_cli("config", "validate", deep)
    assert result.exit_code == 2 and "nested too deeply" in result.stderr


def test_config_that_is_a_device_or_fifo_is_refused(tmp_path):
    result = run_cli("config", "validate", "/dev/zero")
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    fifo = tmp_path / "exp.yaml"
    os.mkfifo(fifo)
    result = run_cli("train", fifo, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_yaml_12_scalars_keep_answers_and_codes_as_text(tmp_path):
    from medml_cli.config.loader import parse_yaml_text
    from medml_cli.config.overrides import parse_override

    data, _ = parse_yaml_text("a: yes\nb: no\nc: on\nd: 007\ne: 1:30\nf: true\ng: 1e-3\n"
                              "h: 2024-01-01\ni: 12\n", "x.yaml")
    assert data == {"a": "yes", "b": "no", "c": "on", "d": "007", "e": "1:30", "f": True,
                    "g": 0.001, "h": "2024-01-01", "i": 12}
    assert parse_override("data.positive_class=yes") == (["data", "positive_class"], "yes")
    assert parse_override("data.positive_class=00002")[1] == "00002"
    config = write_config(tmp_path, "task: tabular-classification\n"
                                    "data: {type: csv, path: t.csv, target: y}\n")
    shown = run_cli("config", "show", config, "--set", "data.positive_class=yes")
    assert shown.exit_code == 0, shown.stderr
    resolved = yaml.safe_load(shown.stdout)  # YAML 1.1 readers see the same value
    assert resolved["data"]["positive_class"] == "yes"


def test_resolved_config_round_trips_ambiguous_strings():
    from medml_cli.config.yaml_io import dump_yaml, load_yaml_value

    data = {"a": "yes", "b": "007", "c": "1e3", "d": "true", "e": "null", "f": "12", "g": 1.0}
    text = dump_yaml(data)
    assert load_yaml_value(text) == data and yaml.safe_load(text) == data


@pytest.mark.parametrize("override, field", [
    ("model.n_estimators=true", "model.n_estimators"),
    ("seed=false", "seed"),
    ("evaluation.threshold=true", "evaluation.threshold"),
    ("evaluation.bootstrap=true", "evaluation.bootstrap"),
])
def test_booleans_are_refused_for_numbers(tmp_path, override, field):
    result = run_cli("config", "validate", CONFIGS / "heart_disease_rf.yaml", "--set", override)
    assert result.exit_code == 2
    assert f"{field}: " in result.stderr and "is a boolean" in result.stderr
    assert f"--set {override}" in result.stderr


def test_max_features_keeps_scikit_learns_int_float_meaning(tmp_path):
    runs = tmp_path / "runs"
    one = run_cli("train", CONFIGS / "heart_disease_rf.yaml", "--runs-dir", runs, *QUICK,
                  "--set", "model.max_features=1", "--set", "model.n_estimators=20")
    assert one.exit_code == 0, one.stderr
    run = Path(one.last_line)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["max_features"] == 1
    from medml_cli.runs.artifacts import load_sklearn_model

    forest = load_sklearn_model(run / "model")[-1]
    assert forest.max_features == 1 and isinstance(forest.max_features, int)
    shown = run_cli("config", "show", CONFIGS / "heart_disease_rf.yaml",
                    "--set", "model.max_features=1.0")
    assert yaml.safe_load(shown.stdout)["model"]["max_features"] == 1.0
    zero = run_cli("config", "validate", CONFIGS / "heart_disease_rf.yaml",
                   "--set", "model.max_features=0")
    assert zero.exit_code == 2 and "at least 1" in zero.stderr


@pytest.mark.parametrize("name", ["ab\n", "a\tb", "a\x1bb", "new\nline", "-lead", "a b"])
def test_run_names_with_control_characters_are_refused(tmp_path, name):
    result = run_cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir",
                     tmp_path / "runs", "--name", name)
    assert result.exit_code == 2 and "--name" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def heart_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("gates") / "runs"
    result = run_cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs, *QUICK)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_gates_compare_in_each_metrics_direction(heart_run):
    metrics = json.loads((heart_run / "metrics.json").read_text())["metrics"]
    brier, auroc = metrics["brier"], metrics["auroc"]
    passed = run_cli("evaluate", heart_run, "--fail-under", f"brier={brier + 0.05:.3f}",
                     "--fail-under", f"auroc={auroc - 0.05:.3f}", "--json")
    assert passed.exit_code == 0, passed.stderr
    gates = {g["metric"]: g for g in json.loads(passed.stdout)["gates"]}
    assert gates["brier"]["passed"] and gates["brier"]["direction"] == "max"
    assert gates["auroc"]["direction"] == "min"
    failed = run_cli("evaluate", heart_run, "--fail-under", f"brier={brier - 0.05:.3f}")
    assert failed.exit_code == 1
    assert "is above the maximum" in failed.stderr and "lower is better" in failed.stderr
    low = run_cli("evaluate", heart_run, "--fail-under", f"log_loss={metrics['log_loss'] / 2}")
    assert low.exit_code == 1 and "log_loss" in low.stderr


@pytest.mark.parametrize("spec", ["auroc=nan", "auroc=inf", "brier=-inf", "auroc=high"])
def test_gate_threshold_must_be_a_finite_number(heart_run, spec):
    result = run_cli("evaluate", heart_run, "--fail-under", spec)
    assert result.exit_code == 2 and "--fail-under" in result.stderr


def test_gate_direction_unit():
    from medml_cli.evaluation.gates import Gate

    assert Gate("rmse", 50).passes(40) and not Gate("rmse", 50).passes(60)
    assert Gate("r2", 0.4).passes(0.5) and not Gate("r2", 0.4).passes(float("nan"))
    assert not Gate("brier@365", 0.2).higher_is_better and not Gate("brier", 0.2).passes(None)
