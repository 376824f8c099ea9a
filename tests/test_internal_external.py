"""Internal-external cross-validation (`split.method: leave-group-out`): each group held out
in turn, per-group results with CIs, and their random-effects meta-analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.evaluation.meta_analysis import (
    bootstrap_standard_error,
    dersimonian_laird_tau2,
    random_effects,
    reml_tau2,
)
from tests.conftest import run_cli

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "heart_disease_internal_external.yaml"
SITES = ["cleveland", "hungarian", "switzerland", "va"]


# -- the meta-analysis itself -------------------------------------------------------------
def test_dersimonian_laird_matches_a_hand_computed_example():
    y, v = [0.2, 0.5, 0.9], [0.01, 0.04, 0.02]
    # by hand: w = 1/v = 100, 25, 50; sum w = 175; sum w*y = 77.5; sum w*y^2 = 50.75
    q = 50.75 - 77.5 ** 2 / 175                       # Cochran's Q = 16.428571...
    c = 175 - (100 ** 2 + 25 ** 2 + 50 ** 2) / 175    # = 100
    tau2 = (q - 2) / c                                # = 0.14428571...
    w = [1 / (0.01 + tau2), 1 / (0.04 + tau2), 1 / (0.02 + tau2)]
    mu = (w[0] * 0.2 + w[1] * 0.5 + w[2] * 0.9) / sum(w)
    se = 1 / math.sqrt(sum(w))
    result = random_effects(y, v, method="dl")
    assert q == pytest.approx(16.428571428571, rel=1e-12)
    assert result.q == pytest.approx(q, rel=1e-12)
    assert result.tau2 == pytest.approx(tau2, rel=1e-12)
    assert dersimonian_laird_tau2(y, v) == pytest.approx(0.144285714285714, rel=1e-12)
    assert result.estimate == pytest.approx(mu, rel=1e-12)
    assert result.se == pytest.approx(se, rel=1e-12)
    assert result.low == pytest.approx(mu - 1.959963984540054 * se, rel=1e-10)
    assert result.i2 == pytest.approx((q - 2) / q, rel=1e-12)  # DL's I² = (Q - df) / Q
    # prediction interval: t with k - 2 = 1 degree of freedom (12.706)
    half = 12.706204736174707 * math.sqrt(tau2 + se ** 2)
    assert result.prediction_low == pytest.approx(mu - half, rel=1e-9)
    assert result.prediction_high == pytest.approx(mu + half, rel=1e-9)


def _bcg() -> tuple[np.ndarray, np.ndarray]:
    """The 13 BCG-vaccine trials (Colditz et al. 1994), log relative risks as metafor's
    escalc(measure="RR") computes them."""
    trials = np.array([[4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209],
                       [62, 13536, 248, 12619], [33, 5036, 47, 5761], [180, 1361, 372, 1079],
                       [8, 2537, 10, 619], [505, 87886, 499, 87892], [29, 7470, 45, 7232],
                       [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338],
                       [27, 16886, 29, 17825]], dtype=float)
    a, b, c, d = trials.T
    return (np.log((a / (a + b)) / (c / (c + d))),
            1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))


@pytest.mark.parametrize("method, estimate, se, tau2, i2", [
    # metafor 4.x documentation, rma(yi, vi, data = dat.bcg, method = ...)
    ("reml", -0.7145, 0.1798, 0.3132, 0.9222),
    ("dl", -0.7141, 0.1787, 0.3088, 0.9212),
])
def test_matches_metafor_on_the_bcg_trials(method, estimate, se, tau2, i2):
    yi, vi = _bcg()
    result = random_effects(yi, vi, method=method)
    assert result.estimate == pytest.approx(estimate, abs=5e-5)
    assert result.se == pytest.approx(se, abs=5e-5)
    assert result.tau2 == pytest.approx(tau2, abs=5e-5)
    assert result.i2 == pytest.approx(i2, abs=5e-5)
    assert result.q == pytest.approx(152.2330, abs=5e-4)
    assert result.k == 13


def test_homogeneous_groups_have_no_between_group_variance():
    y, v = [0.50, 0.51, 0.49, 0.50], [0.01, 0.02, 0.01, 0.03]
    assert dersimonian_laird_tau2(y, v) == 0.0
    assert reml_tau2(y, v) == 0.0
    result = random_effects(y, v)
    assert result.i2 == 0.0 and result.q_p > 0.5


def test_logit_scale_is_back_transformed_and_two_groups_have_no_prediction_interval():
    logits = np.log([0.8 / 0.2, 0.9 / 0.1])
    result = random_effects(logits, [0.04, 0.05], scale="logit")
    assert 0.8 < result.estimate < 0.9 and 0 < result.low < result.estimate < result.high < 1
    assert result.prediction_low is None  # k = 2 < 3


def test_bad_meta_analysis_input_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        random_effects([0.5], [0.01])
    with pytest.raises(ValueError, match="positive"):
        random_effects([0.5, 0.6], [0.01, 0.0])


def test_bootstrap_standard_error_needs_enough_defined_draws():
    assert math.isnan(bootstrap_standard_error([np.nan] * 50 + [0.7] * 5, "logit"))
    draws = np.random.default_rng(0).uniform(0.6, 0.8, 500)
    expected = np.std(np.log(draws / (1 - draws)), ddof=1)
    assert bootstrap_standard_error(draws, "logit") == pytest.approx(expected)


# -- the shipped config against plain scikit-learn ----------------------------------------
def _plain_sklearn_aurocs() -> dict[str, float]:
    """The issue's reference, written as a scikit-learn user would: logistic regression
    (C = 0.1), median / most-frequent imputation plus missing indicators, 13 features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from medml_cli.data.sources import uci_heart

    root = Path(uci_heart.__file__).parents[1] / "bundled" / "uci_heart_disease"
    frames = []
    for site in SITES:
        part = pd.read_csv(root / f"processed.{site}.data", header=None,
                           names=uci_heart.COLUMNS, na_values="?")
        part["site"] = site
        frames.append(part)
    data = pd.concat(frames, ignore_index=True)
    data.loc[data["chol"] == 0, "chol"] = np.nan  # "not measured" in the UCI files
    y = (data["num"] > 0).astype(int)
    categorical = ["cp", "restecg", "slope", "thal"]
    numeric = [c for c in uci_heart.FEATURES if c not in categorical]
    out = {}
    for site in SITES:
        train, test = data["site"] != site, data["site"] == site
        model = make_pipeline(ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                  StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent", add_indicator=True),
                                  OneHotEncoder(handle_unknown="ignore")), categorical)]),
            LogisticRegression(C=0.1, max_iter=5000))
        model.fit(data.loc[train, list(uci_heart.FEATURES)], y[train])
        out[site] = roc_auc_score(y[test], model.predict_proba(
            data.loc[test, list(uci_heart.FEATURES)])[:, 1])
    return out


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("ie") / "runs"
    result = run_cli("train", str(SHIPPED), "--runs-dir", str(runs),
                     "--set", "evaluation.bootstrap=200")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_shipped_config_reaches_the_plain_scikit_learn_figures(shipped_run):
    block = json.loads((shipped_run / "metrics.json").read_text())["internal_external"]
    medml = {row["group"]: row["auroc"] for row in block["groups"]}
    plain = _plain_sklearn_aurocs()
    assert list(medml) == SITES
    for site in SITES:
        assert medml[site] == pytest.approx(plain[site], abs=1e-6), site
    # the reference figures, to 0.01
    for site, target in zip(SITES, [0.884, 0.899, 0.738, 0.736], strict=True):
        assert abs(medml[site] - target) <= 0.01, (site, medml[site])


def test_run_records_groups_pooled_estimates_and_forest_plot(shipped_run):
    metrics = json.loads((shipped_run / "metrics.json").read_text())
    assert metrics["split"] == {"method": "leave-group-out", "folds": 4, "by": "site"}
    assert [f["group"] for f in metrics["per_fold"]] == SITES
    block = metrics["internal_external"]
    assert set(block["pooled"]) == {"auroc", "calibration_intercept", "calibration_slope"}
    auroc = block["pooled"]["auroc"]
    per_site = [row["auroc"] for row in block["groups"]]
    assert min(per_site) < auroc["estimate"] < max(per_site)
    assert auroc["low"] < auroc["estimate"] < auroc["high"]
    assert auroc["prediction_low"] < auroc["low"] and auroc["prediction_high"] > auroc["high"]
    assert auroc["k"] == 4 and auroc["scale"] == "logit" and 0 <= auroc["i2"] <= 1
    # Switzerland: 8 patients without disease, below min_subgroup_events = 10
    assert any("switzerland" in w and "8 non-events" in w for w in block["warnings"])
    table = pd.read_csv(shipped_run / "internal_external.csv")
    assert list(table["site"]) == SITES and "auroc_low" in table
    assert (shipped_run / "plots" / "forest.png").stat().st_size > 10_000
    report = (shipped_run / "report.md").read_text()
    assert "Internal-external validation: each site held out" in report
    assert "prediction interval" in report
    # the shipped model is refit on every hospital; site is not one of its features
    card = json.loads((shipped_run / "model" / "card.json").read_text())
    assert card["trained_on_rows"] == 920 and "site" not in card["features"]


def test_held_out_predictions_can_be_rescored(shipped_run):
    result = run_cli("evaluate", str(shipped_run))
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((Path(result.last_line) / "metrics.json").read_text())
    recorded = json.loads((shipped_run / "metrics.json").read_text())
    assert metrics["metrics"]["auroc"] == pytest.approx(recorded["metrics"]["auroc"])


# -- your own table: a hospital column, small hospitals, other outcome types --------------
def _hospital_table(folder: Path, *, tiny_events: int) -> Path:
    """Cleveland's rows spread over three hospitals, plus a small fourth one with
    ``tiny_events`` patients with disease."""
    from medml_cli.data.sources import uci_heart

    root = Path(uci_heart.__file__).parents[1] / "bundled" / "uci_heart_disease"
    data = pd.read_csv(root / "processed.cleveland.data", header=None,
                       names=uci_heart.COLUMNS, na_values="?")
    data["disease"] = (data.pop("num") > 0).astype(int)
    data["hospital"] = np.random.default_rng(1).choice(["north", "south", "east"], len(data))
    sick, well = data[data["disease"] == 1], data[data["disease"] == 0]
    small = pd.concat([sick.iloc[:tiny_events], well.iloc[:25]])
    data.loc[small.index, "hospital"] = "island"
    path = folder / "hospitals.csv"
    data.to_csv(path, index=False)
    return path


def _table_config(folder: Path, table: Path, extra: str = "") -> Path:
    config = folder / "lgo.yaml"
    config.write_text(
        "task: tabular-classification\nseed: 5\n"
        f"data: {{type: csv, path: {table}, target: disease, "
        "categorical: [cp, restecg, slope, thal]}\n"
        "split: {method: leave-group-out, by: hospital}\n"
        "model: {type: logistic-regression}\n"
        f"evaluation: {{bootstrap: 100, plots: false}}\n{extra}")
    return config


def test_a_group_with_too_few_events_warns_instead_of_crashing(tmp_path):
    config = _table_config(tmp_path, _hospital_table(tmp_path, tiny_events=1))
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    block = json.loads((run / "metrics.json").read_text())["internal_external"]
    island = next(r for r in block["groups"] if r["group"] == "island")
    assert island["events"] == 1 and "only 1 events" in island["warning"]
    assert any("hospital island" in w for w in block["warnings"])
    assert "warning: hospital island" in (run / "log.txt").read_text()
    # the other three hospitals are still pooled
    assert block["pooled"]["auroc"]["k"] >= 3
    # the hospital column is the split, not a feature
    card = json.loads((run / "model" / "card.json").read_text())
    assert "hospital" not in card["features"]
    assert "hospital" in pd.read_csv(run / "predictions.csv").columns


def test_a_group_with_a_single_class_is_reported_but_not_pooled(tmp_path):
    config = _table_config(tmp_path, _hospital_table(tmp_path, tiny_events=0))
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    block = json.loads((Path(result.last_line) / "metrics.json").read_text())[
        "internal_external"]
    island = next(r for r in block["groups"] if r["group"] == "island")
    assert math.isnan(island["auroc"]) if isinstance(island["auroc"], float) else \
        island["auroc"] is None
    assert "island" not in block["pooled"]["auroc"]["groups"]
    assert any("island is left out" in w for w in block["warnings"])


@pytest.mark.parametrize("split, message", [
    ("{method: leave-group-out}", "split.by"),
    ("{method: kfold, by: hospital}", "only for `split.method: leave-group-out`"),
    ("{method: leave-group-out, by: ward}", "`split.by`) column(s) ward not found"),
])
def test_bad_leave_group_out_configs_are_refused(tmp_path, split, message):
    table = _hospital_table(tmp_path, tiny_events=5)
    config = _table_config(tmp_path, table).read_text().replace(
        "split: {method: leave-group-out, by: hospital}", f"split: {split}")
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    result = run_cli("train", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_one_group_only_and_patients_in_two_groups_are_refused(tmp_path):
    table = _hospital_table(tmp_path, tiny_events=5)
    data = pd.read_csv(table)
    data["hospital"] = "north"
    one = tmp_path / "one.csv"
    data.to_csv(one, index=False)
    result = run_cli("train", str(_table_config(tmp_path, one)),
                     "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "at least two groups" in result.stderr

    data = pd.read_csv(table)
    data["patient"] = [f"p{i // 2}" for i in range(len(data))]  # two rows per patient
    data.loc[0, "hospital"], data.loc[1, "hospital"] = "north", "south"
    crossing = tmp_path / "crossing.csv"
    data.to_csv(crossing, index=False)
    config = _table_config(tmp_path, crossing).read_text().replace(
        "target: disease,", "target: disease, group_column: patient,")
    path = tmp_path / "crossing.yaml"
    path.write_text(config)
    result = run_cli("train", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "more than one `hospital` group" in result.stderr


def test_regression_and_survival_are_pooled_on_their_own_measures(tmp_path):
    regression = tmp_path / "diabetes.yaml"
    regression.write_text("task: diabetes\nseed: 1\nsplit: {method: leave-group-out, by: sex}\n"
                          "model: {type: ridge}\nevaluation: {bootstrap: 100, plots: false}\n")
    result = run_cli("train", str(regression), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    block = json.loads((Path(result.last_line) / "metrics.json").read_text())[
        "internal_external"]
    assert set(block["pooled"]) == {"r2", "rmse"} and block["pooled"]["rmse"]["k"] == 2
    assert block["pooled"]["rmse"]["prediction_low"] is None  # two groups: none

    survival = tmp_path / "veterans.yaml"
    survival.write_text("task: lung-cancer-survival\nseed: 1\n"
                        "split: {method: leave-group-out, by: Celltype}\n"
                        "model: {type: cox}\nevaluation: {bootstrap: 100, plots: false}\n")
    result = run_cli("train", str(survival), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    block = json.loads((Path(result.last_line) / "metrics.json").read_text())[
        "internal_external"]
    assert list(block["pooled"]) == ["c_index"]
    assert len(block["groups"]) == 4 and all(0 < g["c_index"] < 1 for g in block["groups"])


def test_multiclass_pools_macro_auroc_and_names_absent_classes(tmp_path):
    config = tmp_path / "severity.yaml"
    config.write_text("task: heart-disease-severity\nseed: 1\n"
                      "data: {type: uci-heart-disease, sites: [cleveland, hungarian, "
                      "switzerland, va]}\nsplit: {method: leave-group-out, by: site}\n"
                      "model: {type: logistic-regression}\n"
                      "evaluation: {bootstrap: 100, plots: false}\n")
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    block = json.loads((Path(result.last_line) / "metrics.json").read_text())[
        "internal_external"]
    assert list(block["pooled"]) == ["macro_auroc"] and block["pooled"]["macro_auroc"]["k"] == 4
    # the Hungarian file grades disease 0 or 1 only
    assert any(w.startswith("site hungarian: no rows of class 2, 3, 4") for w in
               block["warnings"])
