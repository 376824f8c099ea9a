"""`medml export` of survival runs: the graph reproduces scikit-survival's risk score and
survival curve (Cox, random survival forest, gradient-boosted Cox) within 1e-5, a bundle
predicts the run's columns, and what cannot be converted is an exit-2 refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import export_bundles, run_cli, run_data, train_runs

QUICK = ["--set", "evaluation.bootstrap=0"]
#: every shipped survival config, plus the elastic-net Cox and gradient-boosted Cox models;
#: the tree ensembles with fewer trees, to keep the file fast
SURVIVAL = {
    "lung_cancer_survival_cox": ("lung_cancer_survival_cox", []),
    "heart_attack_survival_cox": ("heart_attack_survival_cox", []),
    "heart_attack_survival_coxnet": ("heart_attack_survival_cox",
                                     ["--set", "model.l1_ratio=0.5",
                                      "--set", "model.alpha=0.01"]),
    "breast_cancer_survival_rsf": ("breast_cancer_survival_rsf",
                                   ["--set", "model.n_estimators=30"]),
    "breast_cancer_survival_gb": ("breast_cancer_survival_rsf",
                                  ["--set", "model={type: gradient-boosting-survival, "
                                            "n_estimators: 40}"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("runs"),
                      {name: (config, [*QUICK, *extra])
                       for name, (config, extra) in SURVIVAL.items()})


@pytest.fixture(scope="module")
def bundles(runs) -> dict[str, Path]:
    return export_bundles(runs)


@pytest.mark.parametrize("name", list(SURVIVAL))
def test_graph_reproduces_scikit_survival_within_1e_5(runs, bundles, name):
    """ONNX Runtime, fed as the signature says, against the saved estimator itself."""
    import onnxruntime as ort

    from medml_cli.runs.artifacts import load_sklearn_model
    from medml_cli.runs.onnx_bundle import tabular_feeds

    bundle = bundles[name]
    signature = json.loads((bundle / "signature.json").read_text())
    card = json.loads((runs[name] / "model" / "card.json").read_text())
    assert signature["problem"] == "survival"
    assert signature["model"] == {"rsf": "random-survival-forest",
                                  "gb": "gradient-boosting-survival"}.get(
        name.rsplit("_", 1)[-1], "cox")
    assert [o["name"] for o in signature["outputs"]] == ["risk", "survival"]
    block = signature["survival"]
    for key in ("horizons", "time_grid", "time_unit", "max_follow_up"):
        assert block[key] == card["survival"][key]
    parity = signature["parity"]
    assert parity["max_abs_diff"] <= 1e-5 and parity["tolerance"] == 1e-5

    model = load_sklearn_model(runs[name] / "model")
    estimator = model.steps[-1][1]
    assert block["times"] == [float(t) for t in estimator.unique_times_]
    X, _ = run_data(runs[name])
    assert parity["rows"] == len(X) + min(200, len(X))
    Xt = model[:-1].transform(X)
    session = ort.InferenceSession(str(bundle / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    risk, survival = session.run(["risk", "survival"],
                                 tabular_feeds(X, signature["inputs"]))
    expected = estimator.predict_survival_function(Xt, return_array=True)
    assert survival.shape == expected.shape == (len(X), len(block["times"]))
    assert np.abs(risk - estimator.predict(Xt)).max() <= 1e-5
    assert np.abs(survival - expected).max() <= 1e-5
    # survival curves, not constants: they fall over follow-up and differ between patients
    assert np.ptp(survival[:, -1]) > 0.01 and (survival[:, -1] < survival[:, 0]).all()


@pytest.mark.parametrize("name", ["lung_cancer_survival_cox", "heart_attack_survival_cox",
                                  "breast_cancer_survival_rsf"])
def test_predict_with_a_survival_bundle_gives_the_runs_columns(runs, bundles, name,
                                                               tmp_path):
    _, frame = run_data(runs[name])
    frame.to_csv(tmp_path / "in.csv", index=False)
    by_run = run_cli("predict", runs[name], "--input", tmp_path / "in.csv")
    by_bundle = run_cli("predict", bundles[name], "--input", tmp_path / "in.csv")
    assert by_run.exit_code == 0 and by_bundle.exit_code == 0, by_bundle.stderr
    a = pd.read_csv(pd.io.common.StringIO(by_run.stdout))
    b = pd.read_csv(pd.io.common.StringIO(by_bundle.stdout))
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(frame) and "ONNX bundle" in by_bundle.stderr
    card = json.loads((runs[name] / "model" / "card.json").read_text())
    horizons = [c for c in a.columns if c.startswith("survival_at_")]
    assert len(horizons) == len(card["survival"]["horizons"])
    for column in ["risk", *horizons]:
        assert np.abs(a[column] - b[column]).max() <= 1e-5, column
    # median survival is read from the curve on the same grid: identical, empties included
    assert a["median_survival"].equals(b["median_survival"])
    assert a["id"].astype(str).equals(b["id"].astype(str))


def test_an_unconvertible_survival_model_is_refused_and_leaves_nothing(runs, monkeypatch):
    """A random survival forest fitted with low_memory keeps no curves: refused, exit 2."""
    import medml_cli.runs.artifacts as artifacts

    run = runs["breast_cancer_survival_rsf"]
    real = artifacts.load_sklearn_model

    def low_memory_forest(folder):
        model = real(folder)
        model.steps[-1][1].low_memory = True
        return model

    monkeypatch.setattr(artifacts, "load_sklearn_model", low_memory_forest)
    before = sorted(p.name for p in (run / "exports").iterdir())
    result = run_cli("export", run, "--output", run / "exports" / "refused")
    assert result.exit_code == 2
    assert "low_memory" in result.stderr and "medml predict" in result.stderr
    assert sorted(p.name for p in (run / "exports").iterdir()) == before


def test_unsupported_survival_reason_names_the_estimator():
    from sksurv.ensemble import ComponentwiseGradientBoostingSurvivalAnalysis

    from medml_cli.export.survival import unsupported_survival_reason

    reason = unsupported_survival_reason(ComponentwiseGradientBoostingSurvivalAnalysis())
    assert reason and "ComponentwiseGradientBoostingSurvivalAnalysis" in reason
