"""Typed run records (status, metrics, model card, environment): one writer and one reader
each, ``format_version`` 2, version-1 files (no format_version) still read, damaged files
refused naming the file, multi-class cards, and runs list/show over multi-class metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medml_cli.errors import ModelLoadError, RunNotUsableError
from medml_cli.runs.artifacts import write_model_json
from medml_cli.runs.records import (
    FORMAT_VERSION,
    EnvironmentRecord,
    MetricsRecord,
    ModelCard,
    StatusRecord,
    read_card,
    read_environment,
    read_metrics,
    read_status,
    write_card,
    write_environment,
    write_metrics,
    write_status,
)
from medml_cli.workflows.run_model import load_card
from tests.conftest import CONFIGS, run_cli

# what medml before typed records wrote (version 1: no format_version)
V1_STATUS = {"state": "completed", "name": "heart-disease-logreg",
             "started": "2026-12-01T23:28:35+00:00", "pid": 3809,
             "ended": "2026-12-01T23:28:42+00:00"}
V1_METRICS = {
    "task": "heart-disease", "problem": "binary-classification", "model": "logistic-regression",
    "data": "uci-heart-disease", "synthetic": False, "split": {"method": "kfold", "folds": 5},
    "threshold": 0.5, "metrics": {"auroc": 0.917, "brier": 0.115, "ppv": None},
    "baseline": {"auroc": 0.5}, "intervals": {"auroc": [0.88, 0.95]},
    "n": {"samples": 303, "events": 139, "non_events": 164},
    "per_fold": [{"fold": 0, "auroc": 0.9}], "fold_summary": {}, "primary_metric": "auroc",
    "threshold_method": "fixed", "confidence": 0.95, "bootstrap_resamples": 1000,
    "calibration": {"calibration_slope": 1.29}, "plots": ["roc.png"], "seconds": 4.9,
}
V1_CARD = {
    "format": "skops", "file": "model.skops", "task": "heart-disease",
    "problem": "binary-classification", "model": "logistic-regression", "input_kind": "tabular",
    "threshold": 0.5, "threshold_method": "fixed", "classes": ["no disease", "disease"],
    "features": ["age", "sex"], "target": "disease", "id_column": "patient_id",
    "trained_on_rows": 303, "synthetic_data": False, "medml_version": "0.1.0",
}
V1_IMAGE_CARD = {
    "format": "keras", "file": "model.keras", "task": "lung-nodule", "problem":
    "binary-classification", "model": "cnn3d", "input_kind": "volume3d",
    "input_shape": [32, 32, 32, 1], "spatial_dims": 3, "intensity": ["hu", -1000.0, 400.0],
    "threshold": 0.42, "threshold_method": "youden", "classes": ["benign", "malignant"],
    "trained_on_images": 120, "synthetic_data": True, "medml_version": "0.1.0",
}
V1_ENVIRONMENT = {
    "python": "3.11.7", "implementation": "CPython", "platform": "Linux", "machine": "x86_64",
    "cpu_count": 2, "packages": {"medml": "0.1.0", "tensorflow": None},
    "git_commit": "a" * 40, "git_dirty": False, "config_git": {"commit": "b" * 40,
                                                              "dirty": None},
    "command": ["medml", "train", "x.yaml"], "data_sha256": {"heart.csv": "c" * 64},
}
MULTICLASS_CARD = {**V1_CARD, "problem": "multiclass", "threshold": None,
                   "classes": ["normal", "benign", "malignant"]}


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- round trips
def test_status_round_trip(tmp_path):
    path = write_status(tmp_path, {**V1_STATUS, "error": None, "resumed": "later"})
    assert path == tmp_path / "status.json" and _json(path)["format_version"] == FORMAT_VERSION
    status = read_status(tmp_path, strict=True)
    assert isinstance(status, StatusRecord) and status.state == "completed"
    assert status.pid == 3809 and status.resumed == "later" and status.format_version == 2
    assert status.get("name") == "heart-disease-logreg" and status["started"]
    assert status.get("error_type", "none") == "none"  # not in the file: the default
    write_status(tmp_path, status)  # a record read back is written the same way
    assert read_status(tmp_path) == status


def test_metrics_round_trip_keeps_every_block(tmp_path):
    write_metrics(tmp_path, V1_METRICS)
    data = _json(tmp_path / "metrics.json")
    assert data == {"format_version": 2, **V1_METRICS}  # nothing added but the version
    metrics = read_metrics(tmp_path)
    assert isinstance(metrics, MetricsRecord) and metrics.metrics["auroc"] == 0.917
    assert metrics.metrics["ppv"] is None
    assert metrics.interval("auroc") == [0.88, 0.95] and metrics.primary_metric == "auroc"
    assert metrics.n["samples"] == 303 and metrics["calibration"]["calibration_slope"] == 1.29
    other = tmp_path / "evaluation" / "metrics.json"  # a file path works too (evaluations)
    other.parent.mkdir()
    write_metrics(other, metrics)
    assert read_metrics(other) == metrics


def test_multiclass_metrics_with_per_class(tmp_path):
    record = {"task": "t", "problem": "multiclass", "primary_metric": "macro_auroc",
              "metrics": {"macro_auroc": 0.8, "weighted_auroc": 0.79, "macro_f1": 0.6},
              "per_class": {"a": {"auroc": 0.9, "sensitivity": 0.5, "ppv": 0.4, "n": 10}},
              "n": {"samples": 30, "per_class": {"a": 10}}, "threshold": None}
    write_metrics(tmp_path, record)
    metrics = read_metrics(tmp_path)
    assert metrics.per_class["a"].auroc == 0.9 and metrics.per_class["a"].n == 10


def test_card_round_trip_goes_through_the_manifest(tmp_path):
    folder = tmp_path / "model"
    write_card(folder, V1_CARD)
    manifest = _json(folder / "manifest.json")
    assert "card.json" in manifest["files"]
    assert _json(folder / "card.json") == {"format_version": 2, **V1_CARD}
    card = read_card(folder)
    assert isinstance(card, ModelCard) and card.threshold == 0.5
    assert card.classes == ["no disease", "disease"] and card.format == "skops"
    write_card(folder, ModelCard.model_validate(V1_IMAGE_CARD))
    assert read_card(folder).intensity == ["hu", -1000.0, 400.0]
    # an edit after writing is a checksum failure
    (folder / "card.json").write_text(json.dumps({**V1_CARD, "threshold": 0.9}))
    with pytest.raises(ModelLoadError, match="card.json was changed after training"):
        read_card(folder)


def test_environment_round_trip(tmp_path):
    write_environment(tmp_path, V1_ENVIRONMENT)
    env = read_environment(tmp_path)
    assert isinstance(env, EnvironmentRecord) and env.config_git.commit == "b" * 40
    assert env.data_sha256 == {"heart.csv": "c" * 64} and env.packages["tensorflow"] is None
    assert _json(tmp_path / "environment.json")["format_version"] == 2


# --------------------------------------------------------------------------- version 1 files
def test_version_1_files_read(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps(V1_STATUS))
    (tmp_path / "metrics.json").write_text(json.dumps(V1_METRICS))
    (tmp_path / "environment.json").write_text(json.dumps(V1_ENVIRONMENT))
    write_model_json(tmp_path / "model", "card.json", V1_CARD)  # how train writes it today
    assert read_status(tmp_path, strict=True).format_version == 1
    assert read_metrics(tmp_path).format_version == 1
    assert read_environment(tmp_path).format_version == 1
    card = read_card(tmp_path / "model")
    assert card.format_version == 1 and "format_version" not in card
    # load_card gives back exactly the keys of the file, as a dict
    assert load_card(tmp_path) == V1_CARD


def test_minimal_status_of_older_runs(tmp_path):
    (tmp_path / "status.json").write_text('{"state": "failed", "error": "boom"}')
    status = read_status(tmp_path, strict=True)
    assert status.state == "failed" and status.error == "boom" and status.name is None


# --------------------------------------------------------------------------- damaged files
DAMAGED = [
    ("status.json", '{"state": 1}', "no `state` string"),
    ("status.json", '{"state": "done"}', "unknown `state`"),
    ("status.json", '{"state": "completed", "pid": "12"}', "invalid `pid`"),
    ("status.json", '{"state": "completed", "ended": 3}', "`ended` that is not a string"),
    ("metrics.json", '{"metrics": {"auroc": "high"}}', "metric `auroc` that is not a number"),
    ("metrics.json", '{"metrics": {"auroc": true}}', "metric `auroc` that is not a number"),
    ("metrics.json", '{"metrics": [1, 2]}', "`metrics` that is not a JSON object"),
    ("metrics.json", '{"metrics": {}, "intervals": {"auroc": [1]}}', "not [low, high]"),
    ("metrics.json", '{"task": "t"}', "no `metrics`"),
    ("metrics.json", '{"metrics": {}, "problem": ""}', "invalid `problem`"),
    ("metrics.json", '{"metrics": {}, "threshold": "0.5"}', "invalid `threshold`"),
    ("metrics.json", '{"metrics": {}, "format_version": "2"}', "invalid `format_version`"),
    ("metrics.json", '{"metrics": {}', "not valid JSON"),
    ("environment.json", '{"data_sha256": ["a"]}', "invalid `data_sha256`"),
    ("environment.json", '{"cpu_count": 2.5}', "invalid `cpu_count`"),
    ("environment.json", '[]', "holds a JSON array"),
]
READERS = {"status.json": lambda p: read_status(p, strict=True), "metrics.json": read_metrics,
           "environment.json": read_environment}


@pytest.mark.parametrize(("name", "text", "expect"), DAMAGED,
                         ids=[f"{n}: {e}" for n, _, e in DAMAGED])
def test_damaged_record_names_the_file(tmp_path, name, text, expect):
    (tmp_path / name).write_text(text)
    with pytest.raises(RunNotUsableError) as caught:
        READERS[name](tmp_path)
    message = str(caught.value)
    assert str(tmp_path / name) in message and expect in message, message
    assert "Fix:" in message and "\n" not in message


def test_tolerant_status_reads_unknown(tmp_path):
    assert read_status(tmp_path).state == "unknown"  # missing
    (tmp_path / "status.json").write_text("[1]")
    assert read_status(tmp_path).state == "unknown"
    with pytest.raises(RunNotUsableError, match="holds a JSON array"):
        read_status(tmp_path, strict=True)


def test_newer_format_is_refused_with_an_upgrade_hint(tmp_path):
    (tmp_path / "metrics.json").write_text('{"format_version": 99, "metrics": {}}')
    with pytest.raises(RunNotUsableError, match="written by a newer medml.*upgrade medml"):
        read_metrics(tmp_path)


def test_writers_refuse_what_readers_would(tmp_path):
    with pytest.raises(ValueError, match="metric `auroc` that is not a number"):
        write_metrics(tmp_path, {"metrics": {"auroc": "x"}})
    with pytest.raises(ValueError, match="unknown `state`"):
        write_status(tmp_path, {"state": "done"})
    with pytest.raises(ValueError, match="invalid `threshold`"):
        write_card(tmp_path / "model", {**V1_CARD, "threshold": 1.5})
    assert not list(tmp_path.rglob("*.json"))


def test_writers_clean_numpy_and_nan(tmp_path):
    import numpy as np

    write_metrics(tmp_path, {"metrics": {"auroc": np.float64(0.7), "brier": float("nan")},
                             "n": {"samples": np.int64(3)}})
    metrics = read_metrics(tmp_path)
    assert metrics.metrics == {"auroc": 0.7, "brier": None} and metrics.n["samples"] == 3


# --------------------------------------------------------------------------- card rules
def _card(tmp_path: Path, card: dict) -> ModelCard:
    write_model_json(tmp_path / "model", "card.json", card)  # unvalidated, as an edit would be
    return read_card(tmp_path / "model")


CARD_CASES = [
    ({**V1_CARD, "threshold": 1.5}, "`threshold` (1.5; expected a probability between 0 and 1)"),
    ({**V1_CARD, "threshold": None}, "expected a probability between 0 and 1"),
    ({**V1_CARD, "classes": ["a", "b", "c"]}, "expected a list of the two class labels"),
    ({**V1_CARD, "format": "pickle"}, "`format` (\"pickle\"; expected skops or keras)"),
    ({**V1_CARD, "problem": 3}, "`problem` (3; expected str)"),
    ({**V1_CARD, "problem": ""}, "invalid `problem`"),
    ({**V1_IMAGE_CARD, "spatial_dims": "3"}, "`spatial_dims` (\"3\"; expected int)"),
    ({**V1_IMAGE_CARD, "threshold": "high"}, "`threshold` (\"high\"; expected int or float)"),
    ({**MULTICLASS_CARD, "threshold": 0.5}, "`threshold` (0.5; expected null"),
    ({**MULTICLASS_CARD, "classes": ["a", "b"]}, "three or more distinct class labels"),
    ({**MULTICLASS_CARD, "classes": None}, "three or more distinct class labels"),
    ({**MULTICLASS_CARD, "classes": ["a", "a", "b"]}, "three or more distinct class labels"),
    ({**V1_CARD, "features": "age"}, "invalid `features`"),
]


@pytest.mark.parametrize(("card", "expect"), CARD_CASES, ids=[e for _, e in CARD_CASES])
def test_card_rules(tmp_path, card, expect):
    with pytest.raises(RunNotUsableError) as caught:
        _card(tmp_path, card)
    message = str(caught.value)
    assert "card.json (the model card)" in message and expect in message, message
    assert "damaged or edited after training" in message


def test_valid_cards_of_each_problem(tmp_path):
    card = _card(tmp_path, MULTICLASS_CARD)
    assert card.threshold is None and len(card.classes) == 3
    keras_multiclass = {**V1_IMAGE_CARD, "problem": "multiclass", "threshold": None,
                        "classes": ["a", "b", "c"]}
    assert _card(tmp_path, keras_multiclass).problem == "multiclass"
    regression = {**V1_CARD, "problem": "regression", "threshold": None, "classes": []}
    assert _card(tmp_path, regression).classes == []
    assert _card(tmp_path, {**V1_CARD, "classes": None}).classes is None
    assert _card(tmp_path, {**V1_CARD, "threshold": 1}).threshold == 1.0


# --------------------------------------------------------------------------- through the CLI
@pytest.fixture(scope="module")
def heart_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs,
                     "--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_trained_run_records_carry_the_format_version(heart_run):
    for name in ("status.json", "environment.json", "metrics.json"):
        assert _json(heart_run / name)["format_version"] == FORMAT_VERSION, name
    assert read_status(heart_run, strict=True).state == "completed"
    assert read_metrics(heart_run).primary_metric == "auroc"
    assert read_environment(heart_run).data_sha256
    card = read_card(heart_run / "model")
    assert card.problem == "binary-classification" and card.format == "skops"
    assert load_card(heart_run)["threshold"] == card.threshold


def test_card_and_metrics_writers_take_what_train_builds(heart_run, tmp_path):
    card = _json(heart_run / "model" / "card.json")
    metrics = _json(heart_run / "metrics.json")
    write_card(tmp_path / "model", {k: v for k, v in card.items() if k != "format_version"})
    write_metrics(tmp_path, metrics)
    assert _json(tmp_path / "model" / "card.json")["format_version"] == 2
    assert read_card(tmp_path / "model").as_dict() == {**card, "format_version": 2}
    assert _json(tmp_path / "metrics.json") == {**metrics, "format_version": 2}


def test_runs_list_and_show(heart_run):
    runs = heart_run.parent
    listed = run_cli("runs", "list", "--runs-dir", runs, "--json")
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["state"] == "completed" and row["problem"] == "binary-classification"
    assert row["primary_metric"] == "auroc" and 0.5 < row["auroc"] <= 1
    shown = run_cli("runs", "show", heart_run, "--json")
    assert shown.exit_code == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["status"]["format_version"] == 2
    assert info["metrics"]["auroc"] == pytest.approx(row["auroc"])
    assert info["environment"]["data_sha256"]
    table = run_cli("runs", "show", heart_run)
    assert table.exit_code == 0 and "held-out metrics" in table.stdout


def _multiclass_run(runs: Path, name: str, macro_auroc: float, log_loss: float) -> Path:
    runs.mkdir(exist_ok=True)
    run = runs / f"20260101-00000{len(list(runs.iterdir()))}-{name}-abcdef"
    run.mkdir()
    (run / "config.yaml").write_text(f"task: tumour-type\nname: {name}\nseed: 1\n")
    write_status(run, {"state": "completed", "name": name, "started": "2026-01-01T00:00:00"})
    write_metrics(run, {
        "task": "tumour-type", "problem": "multiclass", "model": "random-forest",
        "primary_metric": "macro_auroc", "threshold": None,
        "metrics": {"macro_auroc": macro_auroc, "weighted_auroc": macro_auroc - 0.01,
                    "macro_f1": 0.5, "accuracy": 0.6, "log_loss": log_loss},
        "intervals": {"macro_auroc": [macro_auroc - 0.1, macro_auroc + 0.05]},
        "per_class": {"glioma": {"auroc": 0.9, "sensitivity": 0.8, "ppv": 0.7, "n": 12}},
        "n": {"samples": 40}})
    return run


def test_runs_list_show_compare_multiclass(tmp_path):
    runs = tmp_path / "runs"
    first = _multiclass_run(runs, "mc-a", 0.71, 0.9)
    second = _multiclass_run(runs, "mc-b", 0.83, 1.2)
    table = run_cli("runs", "list", "--runs-dir", runs)
    assert table.exit_code == 0, table.stderr
    assert "macro_auroc" in table.stdout and "0.830" in table.stdout
    best = json.loads(run_cli("runs", "list", "--runs-dir", runs, "--sort", "macro_auroc",
                              "--json").stdout)
    assert [r["name"] for r in best] == ["mc-b", "mc-a"]  # higher is better
    lowest_loss = json.loads(run_cli("runs", "list", "--runs-dir", runs, "--sort", "log_loss",
                                     "--json").stdout)
    assert [r["name"] for r in lowest_loss] == ["mc-a", "mc-b"]  # lower is better
    shown = run_cli("runs", "show", second)
    assert shown.exit_code == 0 and "per class" in shown.stdout and "glioma" in shown.stdout
    compared = run_cli("runs", "compare", first, second, "--json")
    assert compared.exit_code == 0, compared.stderr
    metrics = json.loads(compared.stdout)["metrics"]
    assert metrics[second.name]["macro_auroc"]["value"] == 0.83
    assert metrics[second.name]["macro_auroc"]["ci"] == [pytest.approx(0.73),
                                                         pytest.approx(0.88)]


def test_written_yaml_loads_as_pyyaml_safe_load_does():
    """A run's config.yaml is read with libyaml's loader where PyYAML has it: the same data
    as yaml.safe_load for every shipped config, and the same error class for a damaged one."""
    import yaml

    from medml_cli.config.loader import config_to_yaml, load_experiment_config
    from medml_cli.config.yaml_io import load_written_yaml

    for path in sorted(Path("configs").glob("*.yaml")):
        text = config_to_yaml(load_experiment_config(path))
        assert load_written_yaml(text) == yaml.safe_load(text), path
    for damaged in ["a: [1, 2", "a: b: c", "\tx: 1", "a: &x 1\nb: *y"]:
        with pytest.raises(yaml.YAMLError):
            yaml.safe_load(damaged)
        with pytest.raises(yaml.YAMLError):
            load_written_yaml(damaged)
