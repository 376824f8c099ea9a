"""The survival models: fit through the registry, survive skops save/load with only the types
they declare, and give monotone survival curves, median times and a sensible C-index."""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.pipeline import Pipeline
from sksurv.datasets import load_gbsg2, load_veterans_lung_cancer, load_whas500
from sksurv.functions import StepFunction
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from medml_cli.data.base import make_schema
from medml_cli.errors import ModelLoadError
from medml_cli.models.survival_output import median_survival_time, predict_risk_and_survival
from medml_cli.plugins import load_builtins
from medml_cli.registry import MODELS
from medml_cli.runs import artifacts
from medml_cli.runs.artifacts import load_sklearn_model, save_sklearn_model
from medml_cli.schemas import FeatureSchema
from tests.conftest import REPO

load_builtins()
LOADERS = {"veterans": load_veterans_lung_cancer, "whas500": load_whas500, "gbsg2": load_gbsg2}
SURVIVAL_MODELS = ("cox", "random-survival-forest", "gradient-boosting-survival")
#: Small ensembles keep the suite fast; the defaults are exercised by the config tests.
FAST = {"random-survival-forest": {"n_estimators": 20},
        "gradient-boosting-survival": {"n_estimators": 30}}


@cache
def dataset(name: str) -> tuple[pd.DataFrame, np.ndarray, FeatureSchema]:
    """Features (categoricals as categories), the sksurv outcome array and a schema."""
    X, raw = LOADERS[name]()
    event_field, time_field = raw.dtype.names
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    y = Surv.from_arrays(event=raw[event_field], time=raw[time_field])
    schema = make_schema(X, categorical, target="outcome", id_column=None, group_column=None,
                         classes=[])
    return X, y, schema


def fit(name: str, data: str, seed: int = 0, **options: object) -> Pipeline:
    X, y, schema = dataset(data)
    cfg = MODELS.entry(name).config(type=name, **{**FAST.get(name, {}), **options})
    return MODELS.create(name, cfg, problem="survival", schema=schema, seed=seed).fit(X, y)


def grid(y: np.ndarray) -> np.ndarray:
    """Times from before the first event to well beyond the last follow-up."""
    return np.linspace(-10.0, 1.5 * y["time"].max(), 60)


def test_survival_models_are_registered_for_survival_only():
    for name in SURVIVAL_MODELS:
        entry = MODELS.entry(name)
        assert entry.tags == {"survival", "tabular"}
        assert "CalibratedClassifier" not in " ".join(entry.extra["trusted_types"])


CASES = [("cox", "veterans", {}), ("cox", "whas500", {"ties": "efron"}),
         ("cox", "gbsg2", {"l1_ratio": 0.5}), ("random-survival-forest", "gbsg2", {}),
         ("random-survival-forest", "veterans", {"max_features": 0.5, "max_depth": 4}),
         ("gradient-boosting-survival", "whas500", {}),
         ("gradient-boosting-survival", "veterans", {"subsample": 0.8})]


@pytest.mark.parametrize("name,data,options", CASES,
                         ids=[f"{n}-{d}-{len(o)}" for n, d, o in CASES])
def test_fits_round_trips_and_gives_proper_survival_curves(tmp_path, monkeypatch, name, data,
                                                           options):
    X, y, _ = dataset(data)
    model = fit(name, data, **options)
    times = grid(y)
    risk, surv = predict_risk_and_survival(model, X, times)
    assert risk.shape == (len(X),) and np.isfinite(risk).all()
    assert surv.shape == (len(X), len(times))
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()
    assert (surv[:, times < y["time"].min()] == 1).all()
    # the bare estimator on pre-transformed rows gives the same answer
    bare = predict_risk_and_survival(model[-1], model[:-1].transform(X), times)
    np.testing.assert_array_equal(bare[0], risk)
    np.testing.assert_array_equal(bare[1], surv)

    save_sklearn_model(model, tmp_path / "model")
    # what sksurv patches onto sklearn's Pipeline need not be there after a load
    monkeypatch.delattr(Pipeline, "predict_survival_function", raising=False)
    reloaded = load_sklearn_model(tmp_path / "model")
    again = predict_risk_and_survival(reloaded, X, times)
    np.testing.assert_array_equal(again[0], risk)
    np.testing.assert_array_equal(again[1], surv)


@pytest.mark.parametrize("name", SURVIVAL_MODELS)
def test_each_declared_type_is_needed_and_loading_without_it_is_refused(tmp_path, monkeypatch,
                                                                        name):
    import skops.io as sio

    options = {"l1_ratio": 0.5} if name == "cox" else {}
    asked = set()
    for extra in ({}, options):
        folder = tmp_path / f"m{len(extra)}"
        save_sklearn_model(fit(name, "veterans", **extra), folder)
        asked |= set(sio.get_untrusted_types(file=folder / "model.skops"))
    declared = set(MODELS.entry(name).extra["trusted_types"])
    assert asked - {"numpy.dtype"} == declared  # nothing missing, nothing extra
    full = artifacts.trusted_types()
    for missing in sorted(set(sio.get_untrusted_types(file=tmp_path / "m0" / "model.skops"))):
        monkeypatch.setattr(artifacts, "trusted_types", lambda m=missing: full - {m})
        with pytest.raises(ModelLoadError, match="outside medml's trusted list"):
            load_sklearn_model(tmp_path / "m0")


def test_survival_is_read_off_the_step_functions_outside_their_domain():
    class StepOnly:
        """An estimator with StepFunctions only (no unique_times_, no return_array)."""

        def predict(self, X):
            return np.asarray(X, dtype=float)[:, 0]

        def predict_survival_function(self, X):
            x = np.array([2.0, 5.0, 9.0])
            return np.array([StepFunction(x, np.array([0.9, 0.6, 0.2]) ** v, domain=(0, None))
                             for v in np.asarray(X, dtype=float)[:, 0]])

    times = [-1.0, 0.0, 2.0, 4.9, 5.0, 9.0, 100.0]
    risk, surv = predict_risk_and_survival(StepOnly(), np.array([[1.0], [2.0]]), times)
    np.testing.assert_array_equal(risk, [1.0, 2.0])
    np.testing.assert_allclose(surv[0], [1, 1, 0.9, 0.9, 0.6, 0.2, 0.2])
    np.testing.assert_allclose(surv[1], [1, 1, 0.81, 0.81, 0.36, 0.04, 0.04])


def test_median_survival_time_by_hand_and_on_a_fitted_cox_model():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    surv = np.array([[1.0, 0.8, 0.5, 0.3, 0.1],   # reaches 0.5 exactly at t = 2
                     [1.0, 0.9, 0.7, 0.6, 0.51],  # never reaches it
                     [0.4, 0.3, 0.2, 0.1, 0.0]])  # already below at the first time
    np.testing.assert_array_equal(median_survival_time(surv, times), [2.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="ascending"):
        median_survival_time(surv, times[::-1])

    X, y, _ = dataset("veterans")
    model = fit("cox", "veterans")
    fine = np.arange(0.0, y["time"].max() + 1)
    _, surv = predict_risk_and_survival(model, X.iloc[:5], fine)
    medians = median_survival_time(surv, fine)
    for fn, median in zip(model[-1].predict_survival_function(model[:-1].transform(X.iloc[:5])),
                          medians, strict=True):
        # by hand: the first event time at which the step function drops to 0.5 or below
        expected = fn.x[np.argmax(fn.y <= 0.5)] if (fn.y <= 0.5).any() else np.nan
        assert median == expected


def test_cox_concordance_on_veterans_training_data():
    X, y, _ = dataset("veterans")
    risk, _ = predict_risk_and_survival(fit("cox", "veterans"), X, [1.0])
    c_index = concordance_index_censored(y["event"], y["time"], risk)[0]
    assert 0.7 < c_index < 0.8


def test_cox_elastic_net_selects_and_ranks():
    X, y, _ = dataset("whas500")
    model = fit("cox", "whas500", l1_ratio=1.0, alpha=0.05)
    assert type(model[-1]).__name__ == "CoxnetSurvivalAnalysis"
    coef = model[-1].coef_.ravel()
    assert 0 < np.count_nonzero(coef) < coef.size  # the lasso dropped some features
    risk, _ = predict_risk_and_survival(model, X, [100.0])
    assert concordance_index_censored(y["event"], y["time"], risk)[0] > 0.7


def test_cox_default_penalty_keeps_one_hot_fits_well_posed():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ill-conditioned-matrix warning
        model = fit("cox", "gbsg2")
    assert np.abs(model[-1].coef_).max() < 5


def test_builders_pass_config_and_seed_through():
    _, _, schema = dataset("veterans")
    for name, options, expected in [
        ("random-survival-forest", {}, dict(n_estimators=300, min_samples_split=10,
                                            min_samples_leaf=15, max_features="sqrt",
                                            n_jobs=1, random_state=7)),
        ("gradient-boosting-survival", {}, dict(loss="coxph", n_estimators=100,
                                                learning_rate=0.1, max_depth=3, subsample=1.0,
                                                min_samples_leaf=1, random_state=7)),
        ("cox", {}, dict(alpha=1e-4, ties="breslow", n_iter=100)),
        ("cox", {"l1_ratio": 0.3, "alpha": 0.01}, dict(l1_ratio=0.3, alphas=[0.01],
                                                       fit_baseline_model=True)),
    ]:
        cfg = MODELS.entry(name).config(type=name, **options)
        pipe = MODELS.create(name, cfg, problem="survival", schema=schema, seed=7)
        params = pipe[-1].get_params()
        assert {k: params[k] for k in expected} == expected, name
        scaled = "scale" in dict(pipe[0].transformers[0][1].steps)
        assert scaled == (name == "cox"), name


@pytest.mark.parametrize("name,options,match", [
    ("random-survival-forest", {"max_features": 0}, "at least 1"),
    ("random-survival-forest", {"max_features": 1.5}, r"\(0, 1\]"),
    ("random-survival-forest", {"max_features": "auto"}, "max_features"),
    ("random-survival-forest", {"min_samples_split": 1}, "min_samples_split"),
    ("random-survival-forest", {"n_estimators": True}, "boolean"),
    ("cox", {"alpha": -0.1}, "alpha"),
    ("cox", {"l1_ratio": 1.5}, "l1_ratio"),
    ("cox", {"ties": "exact"}, "ties"),
    ("cox", {"l1_ratio": 0.5, "ties": "efron"}, "efron"),
    ("cox", {"l1_ratio": 0.5, "alpha": 0.0}, "alpha > 0"),
    ("cox", {"penalty": 1.0}, "penalty"),
    ("gradient-boosting-survival", {"loss": "squared"}, "loss"),
    ("gradient-boosting-survival", {"subsample": 0.0}, "subsample"),
])
def test_bad_configs_are_refused(name, options, match):
    with pytest.raises(ValidationError, match=match):
        MODELS.entry(name).config(type=name, **options)


def test_importing_the_models_loads_neither_sksurv_nor_tensorflow():
    code = ("import sys, medml_cli.models, medml_cli.models.survival_output; "
            "print(sorted(m for m in ('sksurv', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.strip()
    assert out == "[]"
