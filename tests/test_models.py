"""Every registered tabular model: builds from defaults, fits, clones, survives save/load."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from medml_cli.config.loader import validate_config_data
from medml_cli.plugins import load_builtins
from medml_cli.problems import get_problem
from medml_cli.registry import MODELS
from medml_cli.runs.artifacts import load_sklearn_model, save_sklearn_model
from medml_cli.workflows.train import build_estimator, load_dataset

load_builtins()
TABULAR_MODELS = [e.name for e in MODELS.entries() if "tabular" in e.tags]
CASES = [
    (name, task)
    for name in TABULAR_MODELS
    for task, problem in (("heart-disease", "binary-classification"),
                          ("heart-disease-severity", "multiclass"),
                          ("diabetes", "regression"))
    if problem in MODELS.entry(name).tags
]


@pytest.mark.parametrize("name,task", CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_model_fits_predicts_and_round_trips(tmp_path, name, task):
    cfg = validate_config_data({"task": task, "model": {"type": name}})
    ds = load_dataset(cfg)
    problem = get_problem({"diabetes": "regression", "heart-disease-severity": "multiclass"}
                          .get(task, "binary-classification"))
    k = len(ds.schema.classes)
    estimator = build_estimator(cfg, ds)
    assert clone(estimator).get_params().keys() == estimator.get_params().keys()
    assert estimator.fit(ds.X, ds.y) is estimator
    check_is_fitted(estimator)
    scores = problem.scores(estimator, ds.X, k)
    expected = (ds.n_samples, k) if problem.name == "multiclass" else (ds.n_samples,)
    assert scores.shape == expected and np.isfinite(scores).all()
    if problem.classifies:
        assert ((scores >= 0) & (scores <= 1)).all()
    save_sklearn_model(estimator, tmp_path / "model")
    reloaded = load_sklearn_model(tmp_path / "model")
    np.testing.assert_array_equal(problem.scores(reloaded, ds.X, k), scores)


def test_preprocessing_is_fit_on_training_rows_only():
    cfg = validate_config_data({"task": "diabetes", "model": {"type": "ridge"}})
    ds = load_dataset(cfg)
    train = ds.X.iloc[:100]
    estimator = build_estimator(cfg, ds).fit(train, ds.y.iloc[:100])
    scaler = estimator.named_steps["preprocess"].named_transformers_["numeric"]["scale"]
    np.testing.assert_allclose(scaler.mean_, train.mean().to_numpy())


def test_svm_uses_calibration_not_the_deprecated_flag():
    cfg = validate_config_data({"task": "heart-disease", "model": {"type": "svm"}})
    estimator = build_estimator(cfg, load_dataset(cfg))
    model = estimator.named_steps["model"]
    assert type(model).__name__ == "CalibratedClassifierCV"
    assert model.estimator.get_params()["probability"] in ("deprecated", False)
