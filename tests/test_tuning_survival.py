"""`tune:` on survival tasks: nested cross-validation of one model type's hyperparameters,
scored by the survival metrics; the outer test rows never reach a study; and a search over
several model types is refused, since their risk scores cannot be pooled."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import load_experiment_config
from medml_cli.errors import ConfigError
from tests.conftest import read_metrics, run_cli, train_text, write_config

VETERANS = """\
task: lung-cancer-survival
seed: 5
data: {type: veterans-lung-cancer}
model: {type: cox}
evaluation: {bootstrap: 20, plots: false}
tune:
  sampler: random
  trials: 4
  inner_splits: 3
  parameters:
    model.alpha: {distribution: log-uniform, low: 0.01, high: 100}
"""


@pytest.fixture(scope="module")
def tuned_survival_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tuned-survival")
    return train_text(folder, VETERANS)


def test_a_survival_run_tunes_inside_every_outer_fold(tuned_survival_run):
    metrics = read_metrics(tuned_survival_run)
    tuning = metrics["tuning"]
    assert (tuning["metric"], tuning["direction"]) == ("c_index", "maximize")
    assert [r["study"] for r in tuning["outer_folds"]] == [f"outer-fold-{k}" for k in range(5)]
    for row, fold in zip(tuning["outer_folds"], metrics["per_fold"], strict=True):
        assert row["outer"] == pytest.approx(fold["c_index"])
        assert row["trials_completed"] == 4 and row["trials_failed"] == 0
        assert 0.01 <= row["params"]["model.alpha"] <= 100
    # one model type: the pooled C-index agrees with the folds' own (mixed types did not)
    assert metrics["metrics"]["c_index"] == pytest.approx(
        metrics["fold_summary"]["c_index"]["mean"], abs=0.02)
    card = json.loads((tuned_survival_run / "model" / "card.json").read_text())
    assert card["tuned_parameters"] == tuning["final"]["params"]
    assert "## Tuning (nested cross-validation)" in (tuned_survival_run / "report.md").read_text()


def test_the_tuned_survival_model_predicts(tuned_survival_run, tmp_path):
    from medml_cli.data.sources.survival_builtin import survival_table

    frame = survival_table("veterans-lung-cancer").drop(columns=["survival_days", "dead"])
    frame = frame.head(5)
    path = tmp_path / "patients.csv"
    frame.to_csv(path, index=False)
    result = run_cli("predict", tuned_survival_run, "--input", path, "--output",
                     tmp_path / "out.csv")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 5 and "risk" in out.columns


def test_integrated_brier_is_tuned_downwards(tmp_path):
    from medml_cli.problems import problem_of
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_tabular import build_estimator
    from medml_cli.workflows.tuning import Tuner

    cfg = load_experiment_config(write_config(tmp_path, VETERANS.replace(
        "  sampler: random", "  metric: integrated_brier\n  sampler: random")))
    dataset = load_dataset(cfg)
    problem = problem_of(cfg.task, dataset).for_run(cfg, dataset)
    tuner = Tuner(cfg, dataset, problem, tmp_path / "tune", lambda _: None, build_estimator)
    import optuna

    _, outcome = tuner.study("all-rows", np.arange(len(dataset.y)))
    study = optuna.load_study(study_name="all-rows", storage=f"sqlite:///{tuner.path}")
    values = [t.value for t in study.trials]
    assert len(values) == 4 and len(set(values)) > 1
    assert not tuner.maximize
    assert outcome.best_inner == pytest.approx(min(values))


def test_scrambling_the_outer_test_outcomes_changes_nothing_the_study_chose(tmp_path):
    from medml_cli.problems import problem_of
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_tabular import build_estimator, split_rows
    from medml_cli.workflows.tuning import Tuner

    cfg = load_experiment_config(write_config(tmp_path, VETERANS))
    dataset = load_dataset(cfg)
    problem = problem_of(cfg.task, dataset).for_run(cfg, dataset)
    train, test = split_rows(cfg, dataset, problem)[0]

    def study(data, name):
        tuner = Tuner(cfg, data, problem, tmp_path / name, lambda _: None, build_estimator)
        return tuner.study("outer-fold-0", train)[1]

    original = study(dataset, "a")
    y = dataset.y.copy()
    rng = np.random.default_rng(0)
    y.iloc[test, 0] = rng.permutation(y.iloc[test, 0].to_numpy()) * 3  # times of test rows
    scrambled = study(replace(dataset, y=y), "b")
    assert (scrambled.params, scrambled.best_inner) == (original.params, original.best_inner)

    control = dataset.y.copy()  # the same scrambling on training rows is seen
    control.iloc[train[::3], 0] = rng.permutation(control.iloc[train[::3], 0].to_numpy())
    assert study(replace(dataset, y=control), "c").best_inner != original.best_inner


def test_several_survival_model_types_are_refused_before_anything_runs(tmp_path, runs_dir):
    text = VETERANS.replace("  parameters:\n", "  parameters:\n"
                            "    model.type: [cox, random-survival-forest]\n")
    with pytest.raises(ConfigError) as caught:
        load_experiment_config(write_config(tmp_path, text))
    problems = "\n".join(caught.value.problems)
    assert "cox, random-survival-forest cannot be tuned together" in problems
    assert "medml sweep" in problems
    result = run_cli("train", write_config(tmp_path, text, "mixed.yaml"), "--runs-dir",
                     runs_dir)
    assert result.exit_code == 2
    assert "cannot be tuned together" in result.stderr
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_one_survival_model_type_listed_alone_is_accepted(tmp_path):
    text = VETERANS.replace("  parameters:\n", "  parameters:\n    model.type: [cox]\n")
    assert load_experiment_config(write_config(tmp_path, text)).tune is not None


def test_the_same_seed_gives_the_same_survival_studies(tuned_survival_run, tmp_path):
    result = run_cli("--quiet", "train", tuned_survival_run / "config.yaml", "--runs-dir",
                     tmp_path)
    assert result.exit_code == 0, result.stderr
    again, first = read_metrics(Path(result.last_line)), read_metrics(tuned_survival_run)
    assert again["metrics"] == first["metrics"]
    assert [(r["params"], r["best_inner"]) for r in again["tuning"]["outer_folds"]] == \
        [(r["params"], r["best_inner"]) for r in first["tuning"]["outer_folds"]]
