"""Tuning inside a run (`tune:`): nested cross-validation with Optuna, config checks, honest
isolation of the outer test rows, determinism, resume, and what the run records."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import load_experiment_config
from medml_cli.errors import ConfigError
from tests.conftest import read_metrics, run_cli, write_config

HEART = """\
task: heart-disease
seed: 3
data: {type: uci-heart-disease, sites: [cleveland]}
model: {type: logistic-regression}
evaluation: {bootstrap: 50, plots: false}
"""

SMALL_GRID = HEART + """\
tune:
  sampler: grid
  inner_splits: 3
  parameters:
    model.C: [0.003, 0.1, 10.0]
"""


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_experiment_config(write_config(tmp_path, text))
    return "\n".join(caught.value.problems)


# --------------------------------------------------------------------------- config checks
@pytest.mark.parametrize(("tune", "expected"), [
    ("parameters: {data.missing: [impute]}", "only model hyperparameters"),
    ("parameters: {model.type: [logistic-regression, random-forestt]}", "'random-forestt' is not"),
    ("parameters: {model.type: [logistic-regression, ridge]}", "'ridge' does not fit task"),
    ("parameters: {model.CC: [0.1, 1.0]}", "not a hyperparameter of logistic-regression; "
     "did you mean 'C'?"),
    ("parameters: {model.C: {distribution: uniform, low: -1, high: 1}}",
     "-1.0 is not valid for logistic-regression"),
    ("sampler: grid\n  parameters: {model.C: {distribution: log-uniform, low: 0.1, high: 1}}",
     "the grid sampler needs a list"),
    ("sampler: grid\n  trials: 5\n  parameters: {model.C: [0.1, 1.0]}",
     "the grid has 2 combinations"),
    ("metric: aurocc\n  parameters: {model.C: [0.1, 1.0]}", "is not a metric of task"),
    ("parameters: {model.C: [[0.1], 1.0]}", "choices must be numbers"),
    ("samplr: tpe\n  parameters: {model.C: [0.1]}", "samplr"),
    ("parameters: {model.type: {distribution: uniform, low: 0, high: 1}}",
     "list the model types to try"),
])
def test_bad_tune_blocks_are_refused_before_anything_runs(tmp_path, tune, expected):
    # survival tasks: tests/test_tuning_survival.py; image tasks: tests/test_tuning_image.py
    assert expected in _problems(tmp_path, HEART + f"tune:\n  {tune}\n")


def test_a_bad_tune_block_exits_2_and_writes_no_run(tmp_path, runs_dir):
    config = write_config(tmp_path, HEART + "tune: {parameters: {model.alpha: [1.0]}}\n")
    result = run_cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2
    assert "tune.parameters.model.alpha" in result.stderr
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_grid_points_follow_the_model_type():
    from medml_cli.config.tuning import grid_of

    cfg = load_experiment_config(Path(__file__).parents[1] / "configs"
                                 / "heart_disease_tuned.yaml", ["tune.sampler=grid",
                                                                "tune.trials=null"])
    points = grid_of(cfg.tune, cfg.model.type)
    assert len(points) == 5 * 2 + 5 * 2 + 3 * 2 + 3 * 2 * 2  # lr, svm, rf, gb
    rf = [p for p in points if p["model.type"] == "random-forest"]
    assert all(set(p) == {"model.type", "model.max_depth", "model.min_samples_leaf"}
               for p in rf)


# --------------------------------------------------------------------------- honesty
def _tuner(tmp_path: Path, dataset, text: str = SMALL_GRID):
    from medml_cli.problems import problem_of
    from medml_cli.workflows.tuning import Tuner

    cfg = load_experiment_config(write_config(tmp_path, text))
    problem = problem_of(cfg.task, dataset)
    from medml_cli.workflows.train_tabular import build_estimator

    return Tuner(cfg, dataset, problem, tmp_path / f"tune-{id(dataset)}", lambda _: None,
                 build_estimator)


def _trial_values(tuner, name: str) -> list[float]:
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tuner.path}")
    return [t.value for t in study.trials]


def test_scrambling_the_outer_test_labels_changes_nothing_the_study_chose(tmp_path):
    from medml_cli.problems import problem_of
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_tabular import split_rows

    cfg = load_experiment_config(write_config(tmp_path, SMALL_GRID))
    dataset = load_dataset(cfg)
    train, test = split_rows(cfg, dataset, problem_of(cfg.task, dataset))[0]
    _, original = _tuner(tmp_path, dataset).study("outer-fold-0", train)

    y = dataset.y.copy()
    y.iloc[test] = 1 - y.iloc[test].to_numpy()  # every outer test label flipped
    scrambled_set = replace(dataset, y=y)
    tuner = _tuner(tmp_path, scrambled_set)
    _, scrambled = tuner.study("outer-fold-0", train)
    assert scrambled.params == original.params
    assert scrambled.best_inner == original.best_inner

    # the control: flipping a third of the training labels does change what it sees
    y2 = dataset.y.copy()
    y2.iloc[train[::3]] = 1 - y2.iloc[train[::3]].to_numpy()
    _, control = _tuner(tmp_path, replace(dataset, y=y2)).study(
        "outer-fold-0", train)
    assert control.best_inner != original.best_inner


def _heart_table(folder: Path, flip: np.ndarray | None = None) -> Path:
    from medml_cli.data.sources import uci_heart

    root = Path(uci_heart.__file__).parents[1] / "bundled" / "uci_heart_disease"
    data = pd.read_csv(root / "processed.cleveland.data", header=None,
                       names=uci_heart.COLUMNS, na_values="?")
    data["disease"] = (data.pop("num") > 0).astype(int)
    data.insert(0, "pid", [f"p{i}" for i in range(len(data))])
    if flip is not None:
        flipped = data["pid"].isin(flip)
        data.loc[flipped, "disease"] = 1 - data.loc[flipped, "disease"]
    path = folder / ("flipped.csv" if flip is not None else "heart.csv")
    data.to_csv(path, index=False)
    return path


def _table_run(folder: Path, table: Path, runs: Path) -> Path:
    config = write_config(folder, (
        "task: tabular-classification\nseed: 1\n"
        f"data: {{type: csv, path: {table}, target: disease, id_column: pid, "
        "categorical: [cp, restecg, slope, thal]}\n"
        "split: {method: kfold, n_splits: 4, stratify: false}\n"
        "model: {type: logistic-regression}\n"
        "evaluation: {bootstrap: 0, plots: false, baseline: false}\n"
        "tune: {sampler: random, trials: 4, inner_splits: 3, parameters: "
        "{model.C: {distribution: log-uniform, low: 0.001, high: 10}}}\n"), f"{table.stem}.yaml")
    result = run_cli("--quiet", "train", config, "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_a_whole_run_tunes_each_outer_fold_on_its_training_rows_only(tmp_path):
    """Unstratified folds do not depend on the labels, so flipping the labels of outer fold
    0's test rows leaves fold 0's study exactly as it was; the other folds train on them."""
    runs = tmp_path / "runs"
    first = _table_run(tmp_path, _heart_table(tmp_path), runs)
    test_ids = pd.read_csv(first / "predictions.csv").query("fold == 0")["id"].to_numpy()
    second = _table_run(tmp_path, _heart_table(tmp_path, flip=test_ids), runs)
    a = read_metrics(first)["tuning"]["outer_folds"]
    b = read_metrics(second)["tuning"]["outer_folds"]
    assert (a[0]["params"], a[0]["best_inner"]) == (b[0]["params"], b[0]["best_inner"])
    assert a[0]["outer"] != b[0]["outer"]  # the flipped labels are scored
    assert [r["best_inner"] for r in a[1:]] != [r["best_inner"] for r in b[1:]]


# --------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tuned")
    config = write_config(folder, HEART + """\
tune:
  sampler: tpe
  trials: 6
  inner_splits: 3
  parameters:
    model.type: [logistic-regression, k-nearest-neighbours]
    model.C: {distribution: log-uniform, low: 0.001, high: 10}
    model.n_neighbors: {distribution: int-uniform, low: 3, high: 40}
""")
    result = run_cli("--quiet", "train", config, "--runs-dir", folder / "runs")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_tuned_run_records_every_study_and_the_optimism(tuned_run):
    metrics = read_metrics(tuned_run)
    tuning = metrics["tuning"]
    assert tuned_run.name.split("-", 2)[2].startswith("heart-disease-tuned")
    assert [r["study"] for r in tuning["outer_folds"]] == [f"outer-fold-{k}" for k in range(5)]
    for row, fold in zip(tuning["outer_folds"], metrics["per_fold"], strict=True):
        assert row["outer"] == pytest.approx(fold["auroc"])
        assert row["optimism"] == pytest.approx(row["best_inner"] - row["outer"])
        assert row["trials_completed"] == 6
        assert row["params"]["model.type"] in ("logistic-regression", "k-nearest-neighbours")
        # only the chosen type's own hyperparameter was drawn
        other = "model.n_neighbors" if row["params"]["model.type"] == "logistic-regression" \
            else "model.C"
        assert other not in row["params"]
    final = tuning["final"]
    assert metrics["model"] == final["params"]["model.type"]
    card = json.loads((tuned_run / "model" / "card.json").read_text())
    assert card["model"] == final["params"]["model.type"]
    assert card["tuned_parameters"] == final["params"]
    assert (tuned_run / "tune" / "studies.db").is_file()
    report = (tuned_run / "report.md").read_text()
    assert "## Tuning (nested cross-validation)" in report
    assert "optimism" in report
    assert "Model: tuned inside every outer fold (see Tuning); shipped: type=" in report


def test_the_shipped_model_is_the_one_tuned_on_all_rows(tuned_run):
    import optuna
    from skops.io import get_untrusted_types, load

    final = read_metrics(tuned_run)["tuning"]["final"]
    study = optuna.load_study(study_name="all-rows",
                              storage=f"sqlite:///{tuned_run / 'tune' / 'studies.db'}")
    assert study.best_params == final["params"]
    path = tuned_run / "model" / "model.skops"
    model = load(path, trusted=get_untrusted_types(file=path))
    estimator = model.steps[-1][1]
    if final["params"]["model.type"] == "logistic-regression":
        assert estimator.C == pytest.approx(final["params"]["model.C"])
    else:
        assert estimator.n_neighbors == final["params"]["model.n_neighbors"]


def test_same_seed_gives_the_same_studies_and_metrics(tuned_run, tmp_path):
    config = tuned_run / "config.yaml"
    result = run_cli("--quiet", "train", config, "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    again, first = read_metrics(Path(result.last_line)), read_metrics(tuned_run)
    assert again["metrics"] == first["metrics"]
    assert again["intervals"] == first["intervals"]
    strip = [{k: v for k, v in r.items() if k != "seconds"}
             for r in first["tuning"]["outer_folds"]]
    assert [{k: v for k, v in r.items() if k != "seconds"}
            for r in again["tuning"]["outer_folds"]] == strip


def test_predict_uses_the_tuned_model(tuned_run, tmp_path):
    from medml_cli.data.sources import uci_heart

    root = Path(uci_heart.__file__).parents[1] / "bundled" / "uci_heart_disease"
    rows = pd.read_csv(root / "processed.cleveland.data", header=None,
                       names=uci_heart.COLUMNS, na_values="?").drop(columns="num").head(20)
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out.csv"
    result = run_cli("predict", tuned_run, "--input", tmp_path / "new.csv", "--output", out)
    assert result.exit_code == 0, result.stderr
    assert len(pd.read_csv(out)) == 20


# --------------------------------------------------------------------------- resume
def test_an_interrupted_tune_resumes_without_repeating_finished_trials(tmp_path, monkeypatch):
    from medml_cli.workflows import tuning

    config = write_config(tmp_path, SMALL_GRID)
    calls: list[str] = []
    original = tuning.Tuner._objective

    def counting(self, name, rows):
        objective = original(self, name, rows)

        def wrapped(trial):
            calls.append(name)
            if interrupt_at is not None and len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return objective(trial)
        return wrapped

    monkeypatch.setattr(tuning.Tuner, "_objective", counting)
    interrupt_at = 8  # the second trial of outer fold 2 (3 trials per study)
    stopped_run = run_cli("--quiet", "train", config, "--runs-dir", tmp_path / "runs")
    assert stopped_run.exit_code == 130, stopped_run.stderr
    (stopped,) = (tmp_path / "runs").glob("*-interrupted")
    assert calls == ["outer-fold-0"] * 3 + ["outer-fold-1"] * 3 + ["outer-fold-2"] * 2

    calls.clear()
    interrupt_at = None
    result = run_cli("--quiet", "train", "--resume", stopped)
    assert result.exit_code == 0, result.stderr
    # fold 2: its first trial is kept, the interrupted one runs again, then the third
    assert calls == ["outer-fold-2"] * 2 + ["outer-fold-3"] * 3 + ["outer-fold-4"] * 3 \
        + ["all-rows"] * 3
    resumed = read_metrics(Path(result.last_line))
    assert all(r["trials_completed"] == 3 for r in resumed["tuning"]["outer_folds"])

    monkeypatch.undo()
    fresh = run_cli("--quiet", "train", config, "--runs-dir", tmp_path / "fresh")
    assert fresh.exit_code == 0, fresh.stderr
    expected = read_metrics(Path(fresh.last_line))
    assert resumed["metrics"] == expected["metrics"]
    assert [r["params"] for r in resumed["tuning"]["outer_folds"]] == \
        [r["params"] for r in expected["tuning"]["outer_folds"]]


def test_a_completed_tuned_run_is_not_resumed(tuned_run):
    result = run_cli("train", "--resume", tuned_run)
    assert result.exit_code == 2
    assert "already completed" in result.stderr


def test_a_trial_that_cannot_fit_fails_alone(tmp_path, monkeypatch):
    from medml_cli.workflows import train_tabular

    real = train_tabular.build_estimator

    def fragile(cfg, dataset, problem=None):
        if getattr(cfg.model, "C", None) == 10.0:
            raise ValueError("solver diverged")
        return real(cfg, dataset, problem)

    monkeypatch.setattr(train_tabular, "build_estimator", fragile)
    result = run_cli("--quiet", "train", write_config(tmp_path, SMALL_GRID),
                     "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    folds = read_metrics(Path(result.last_line))["tuning"]["outer_folds"]
    assert all(r["trials_completed"] == 2 and r["trials_failed"] == 1 for r in folds)
    assert "solver diverged" in folds[0]["errors"][0]


def test_a_generic_task_with_three_classes_tunes_macro_auroc(tmp_path, runs_dir):
    # tabular-classification is multi-class when its target has k > 2 classes: the studies
    # optimise that problem type's primary metric, not the binary task's "auroc"
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "iris.csv", index=False)
    config = write_config(tmp_path, """\
task: tabular-classification
data: {type: csv, path: iris.csv, target: target}
model: {type: logistic-regression}
evaluation: {bootstrap: 0, plots: false}
tune: {sampler: grid, inner_splits: 3, parameters: {model.C: [0.1, 1.0]}}
""")
    result = run_cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    metrics = read_metrics(Path(result.last_line))
    assert metrics["problem"] == "multiclass" and metrics["tuning"]["metric"] == "macro_auroc"
    assert all(r["trials_failed"] == 0 for r in metrics["tuning"]["outer_folds"])
