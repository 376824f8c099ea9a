"""Statistical core of clinical evaluation: bootstrap CIs, calibration, thresholds, decision
curves, subgroup tables, permutation importance and the PNG figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from medml_cli.evaluation import plots
from medml_cli.evaluation.bootstrap import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    _metrics_for_indices,
    bootstrap_distribution,
    bootstrap_intervals,
    resample_weights,
)
from medml_cli.evaluation.calibration import (
    calibration_slope_intercept,
    calibration_summary,
    expected_calibration_error,
    reliability_curve,
)
from medml_cli.evaluation.decision_curve import decision_curve, net_benefit
from medml_cli.evaluation.importance import permutation_importance_table
from medml_cli.evaluation.metrics import score_predictions
from medml_cli.evaluation.subgroups import age_bands, subgroup_metrics
from medml_cli.evaluation.thresholds import choose_threshold

CLF = "binary-classification"


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _classification_data(n: int, seed: int = 0, decimals: int | None = 2):
    """Scores informative about y; rounding creates ties like real model outputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.binomial(1, _expit(1.5 * x - 0.5))
    score = _expit(1.5 * x - 0.5 + rng.normal(scale=0.7, size=n))
    if decimals is not None:
        score = np.round(score, decimals)
    return y, score


def _regression_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(scale=0.6, size=n)


def _assert_metrics_equal(expected: dict, got: dict, row: int) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert np.isclose(got[name][row], value, rtol=1e-10, atol=1e-12, equal_nan=True), (
            name, value, got[name][row])


# --------------------------------------------------------------------------- bootstrap

@pytest.mark.parametrize("seed", range(6))
def test_identity_resample_matches_score_predictions_classification(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 150))
    y = rng.integers(0, 2, n)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    # Heavy ties (1 decimal), scores outside [0, 1] (clipped) and exact 0/1 (log-loss clip).
    score = np.round(rng.uniform(-0.2, 1.2, n), int(rng.integers(1, 3)))
    threshold = float(rng.choice([0.3, 0.5, 0.7]))
    got = _metrics_for_indices(CLF, y, score, np.arange(n)[None, :], threshold)
    _assert_metrics_equal(score_predictions(CLF, y, score, threshold), got, 0)


@pytest.mark.parametrize("seed", range(3))
def test_identity_resample_matches_score_predictions_regression(seed):
    y, pred = _regression_data(int(50 + 40 * seed), seed)
    got = _metrics_for_indices("regression", y, pred, np.arange(len(y))[None, :])
    _assert_metrics_equal(score_predictions("regression", y, pred), got, 0)


def test_each_resample_row_matches_sklearn_on_the_drawn_rows():
    """Duplicated rows (a real resample) give what scikit-learn gives on the duplicated data."""
    y, score = _classification_data(80, seed=3, decimals=1)
    idx = np.random.default_rng(1).integers(0, len(y), size=(5, len(y)))
    idx[:, :2] = [np.flatnonzero(y == 1)[0], np.flatnonzero(y == 0)[0]]  # both classes present
    got = _metrics_for_indices(CLF, y, score, idx, 0.4)
    for r in range(len(idx)):
        _assert_metrics_equal(score_predictions(CLF, y[idx[r]], score[idx[r]], 0.4), got, r)


def test_intervals_cover_every_metric_and_contain_point_estimates():
    y, score = _classification_data(600, seed=1)
    ci = bootstrap_intervals(CLF, y, score, n_resamples=500)
    assert set(ci) == set(CLASSIFICATION_METRICS) == set(score_predictions(CLF, y, score))
    point = score_predictions(CLF, y, score)
    for name in CLASSIFICATION_METRICS:
        low, high = ci[name]
        assert low <= point[name] <= high, (name, low, point[name], high)

    yr, pred = _regression_data(400, seed=2)
    ci = bootstrap_intervals("regression", yr, pred, n_resamples=500)
    point = score_predictions("regression", yr, pred)
    assert set(ci) == set(REGRESSION_METRICS)
    for name in REGRESSION_METRICS:
        assert ci[name][0] <= point[name] <= ci[name][1], name


def test_intervals_narrow_as_n_grows():
    small = bootstrap_intervals(CLF, *_classification_data(100, seed=5), n_resamples=400)
    large = bootstrap_intervals(CLF, *_classification_data(2000, seed=5), n_resamples=400)
    for name in ("auroc", "auprc", "accuracy", "sensitivity", "brier", "log_loss"):
        assert large[name][1] - large[name][0] < 0.6 * (small[name][1] - small[name][0]), name
    small = bootstrap_intervals("regression", *_regression_data(100, 5), n_resamples=400)
    large = bootstrap_intervals("regression", *_regression_data(2000, 5), n_resamples=400)
    for name in REGRESSION_METRICS:
        assert large[name][1] - large[name][0] < 0.6 * (small[name][1] - small[name][0]), name


def test_bootstrap_is_reproducible_for_a_seed():
    y, score = _classification_data(200, seed=2)
    first = bootstrap_intervals(CLF, y, score, n_resamples=200, seed=7)
    assert bootstrap_intervals(CLF, y, score, n_resamples=200, seed=7) == first
    assert bootstrap_intervals(CLF, y, score, n_resamples=200, seed=8) != first


def test_stratified_resampling_keeps_class_counts():
    y, _ = _classification_data(150, seed=4)
    w = resample_weights(CLF, y, n_resamples=50, seed=0)
    assert w.shape == (50, len(y))
    assert np.all(w @ (y == 1) == y.sum())
    assert np.all(w.sum(axis=1) == len(y))


def test_grouped_bootstrap_resamples_patients():
    rng = np.random.default_rng(0)
    n_patients, reps = 80, 5
    y_p, s_p = _classification_data(n_patients, seed=6)
    y, score = np.repeat(y_p, reps), np.repeat(s_p, reps)
    groups = np.repeat([f"p{i:03d}" for i in range(n_patients)], reps)
    order = rng.permutation(len(y))  # patients' rows need not be contiguous
    y, score, groups = y[order], score[order], groups[order]

    w = resample_weights(CLF, y, groups=groups, n_resamples=30, seed=0)
    for patient in np.unique(groups):  # all rows of a patient are drawn together
        rows = w[:, groups == patient]
        assert np.all(rows == rows[:, :1])

    by_patient = bootstrap_intervals(CLF, y, score, groups=groups, n_resamples=500)
    by_row = bootstrap_intervals(CLF, y, score, n_resamples=500)
    for name in ("auroc", "accuracy", "brier"):
        width_patient = by_patient[name][1] - by_patient[name][0]
        width_row = by_row[name][1] - by_row[name][0]
        # Five copies per patient: row-level intervals are ~sqrt(5) too narrow.
        assert width_patient > 1.5 * width_row, name


def test_undefined_resamples_are_dropped_not_propagated():
    y = np.zeros(40, dtype=int)
    y[:2] = 1
    score = np.linspace(0, 1, 40)[::-1]
    draws = bootstrap_distribution(CLF, y, score, n_resamples=300, stratify=False)
    assert np.isnan(draws["auroc"]).any()  # some resamples drew no positive
    low, high = bootstrap_intervals(CLF, y, score, n_resamples=300, stratify=False)["auroc"]
    assert np.isfinite(low) and np.isfinite(high)


def test_bootstrap_rejects_bad_input():
    y, score = _classification_data(20)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_intervals(CLF, y, score, confidence=1.5)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_intervals(CLF, y, score[:-1])


# --------------------------------------------------------------------------- calibration

def test_calibration_of_well_calibrated_and_overconfident_predictions():
    rng = np.random.default_rng(0)
    prob = rng.uniform(0, 1, 20000)
    y = rng.binomial(1, prob)
    slope, intercept = calibration_slope_intercept(y, prob)
    assert abs(slope - 1) < 0.05 and abs(intercept) < 0.05
    assert expected_calibration_error(y, prob) < 0.02

    lp = np.log(np.clip(prob, 1e-6, 1 - 1e-6) / (1 - np.clip(prob, 1e-6, 1 - 1e-6)))
    reference = LogisticRegression(C=np.inf).fit(lp[:, None], y)  # unpenalised ML
    assert slope == pytest.approx(reference.coef_[0, 0], abs=1e-3)

    overconfident = _expit(2.5 * lp)
    slope_over, _ = calibration_slope_intercept(y, overconfident)
    assert slope_over < 0.6
    assert expected_calibration_error(y, overconfident) > 0.05

    # Risk systematically under-predicted -> calibration-in-the-large above 0.
    _, intercept_low = calibration_slope_intercept(y, _expit(lp - 0.5))
    assert intercept_low == pytest.approx(0.5, abs=0.08)


def test_reliability_curve_and_summary():
    rng = np.random.default_rng(1)
    prob = rng.uniform(0, 1, 1000)
    y = rng.binomial(1, prob)
    curve = reliability_curve(y, prob, n_bins=5)
    assert len(curve["prob_pred"]) == len(curve["prob_true"]) == len(curve["counts"]) == 5
    assert curve["counts"].sum() == 1000
    summary = calibration_summary(y, prob)
    assert set(summary) == {"calibration_slope", "calibration_intercept", "brier", "ece"}
    assert summary["brier"] == pytest.approx(np.mean((y - prob) ** 2))


# --------------------------------------------------------------------------- thresholds

def test_youden_on_a_hand_made_case():
    y = [0, 0, 0, 1, 1, 0, 1, 1]
    score = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    # cut 0.4: sens 4/4, spec 3/4 -> J 0.75 (the unique best; cut 0.7: J 0.5, cut 0.5: J 0.5)
    assert choose_threshold(y, score, method="youden") == pytest.approx(0.4)


def test_sensitivity_and_specificity_targets():
    y, score = _classification_data(400, seed=9, decimals=None)
    t = choose_threshold(y, score, method="sensitivity", value=0.9)
    assert np.mean(score[y == 1] >= t) >= 0.9
    higher = score[score > t].min()  # the next cut-off up misses the target
    assert np.mean(score[y == 1] >= higher) < 0.9

    t = choose_threshold(y, score, method="specificity", value=0.8)
    assert np.mean(score[y == 0] < t) >= 0.8
    lower = score[score < t].max()
    assert np.mean(score[y == 0] < lower) < 0.8
    assert 0.0 <= t <= 1.0


def test_fixed_threshold_and_errors():
    assert choose_threshold(None, None, method="fixed", value=0.3) == 0.3
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold([1, 1, 1], [0.2, 0.5, 0.9], method="youden")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        choose_threshold([0, 1], [0.2, 0.9], method="sensitivity", value=1.5)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        choose_threshold([0, 1], [0.2, 0.9], method="specificity")
    with pytest.raises(ValueError, match="unknown threshold method"):
        choose_threshold([0, 1], [0.2, 0.9], method="best")


def test_threshold_never_returns_inf_for_probabilities():
    # Specificity 0.99 on this data is only reached by calling nobody positive.
    t = choose_threshold([0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6], method="specificity", value=0.99)
    assert 0.9 < t <= 1.0


# --------------------------------------------------------------------------- decision curve

def test_net_benefit_matches_hand_computation():
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])  # 4 events in 10 patients
    prob = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.35, 0.3, 0.2, 0.1, 0.05])
    # pt=0.25: prob>=0.25 -> 7 called positive, TP=4, FP=3: 4/10 - 3/10 * (0.25/0.75) = 0.3
    # pt=0.50: prob>=0.50 -> 4 called positive, TP=3, FP=1: 3/10 - 1/10 * (0.5/0.5)   = 0.2
    # pt=0.80: prob>=0.80 -> 2 called positive, TP=2, FP=0: 2/10 - 0                   = 0.2
    assert net_benefit(y, prob, [0.25, 0.5, 0.8]) == pytest.approx([0.3, 0.2, 0.2])

    curve = decision_curve(y, prob, thresholds=[0.25, 0.5])
    assert list(curve.columns) == ["threshold", "model", "treat_all", "treat_none"]
    # treat all: prevalence - (1 - prevalence) * pt / (1 - pt)
    # pt=0.25: 0.4 - 0.6 * (1/3) = 0.2; pt=0.5: 0.4 - 0.6 * 1 = -0.2
    assert curve["treat_all"].to_numpy() == pytest.approx([0.2, -0.2])
    assert (curve["treat_none"] == 0).all()
    assert len(decision_curve(y, prob)) == 99


@pytest.mark.parametrize("seed", range(6))
def test_net_benefit_counts_every_threshold_as_the_definition(seed):
    """Counting by one sort gives exactly the patient-by-threshold comparison: ties on the
    grid (scores in hundredths) count as positive, and a NaN score is never positive."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    prob = rng.integers(0, 101, 200) / 100 if seed % 2 else rng.random(200)
    if seed >= 4:
        prob[rng.random(200) < 0.1] = np.nan
    grid = np.arange(1, 100) / 100
    positive = prob[None, :] >= grid[:, None]
    tp = (positive & (y == 1)).sum(axis=1)
    fp = (positive & (y == 0)).sum(axis=1)
    expected = tp / 200 - fp / 200 * grid / (1 - grid)
    assert np.array_equal(net_benefit(y, prob, grid), expected)


@pytest.mark.parametrize("grid", ["hundredths", "linspace"])
def test_report_reads_the_decision_curve_at_its_four_thresholds(tmp_path, grid):
    """The report's table is the curve's rows at 0.1, 0.2, 0.3 and 0.5, formatted as the
    values pandas reads (a grid from linspace, off by an ulp, as older runs wrote it; an
    empty cell shown as n/a)."""
    from medml_cli.evaluation.report import _decision_curve_rows, _fmt

    rng = np.random.default_rng(3)
    curve = decision_curve(rng.integers(0, 2, 300), rng.random(300),
                           None if grid == "hundredths" else np.linspace(0.01, 0.99, 99))
    curve.loc[19, "model"] = np.nan  # pt = 0.2
    path = tmp_path / "decision_curve.csv"
    curve.to_csv(path, index=False)
    frame = pd.read_csv(path)
    picks = frame[frame["threshold"].round(2).isin([0.1, 0.2, 0.3, 0.5])]
    expected = [[f"{r.threshold:.2f}", _fmt(r.model), _fmt(r.treat_all), _fmt(r.treat_none)]
                for r in picks.itertuples()]
    assert _decision_curve_rows(path) == expected
    assert [row[0] for row in expected] == ["0.10", "0.20", "0.30", "0.50"]
    assert expected[1][1] == "n/a"


# --------------------------------------------------------------------------- subgroups

def test_subgroup_table_counts_and_warnings():
    y, score = _classification_data(212, seed=11)
    sex = pd.Series(["F"] * 200 + ["M"] * 12)
    table = subgroup_metrics(CLF, y, score, sex, threshold=0.5, n_resamples=100)
    assert list(table["subgroup"]) == ["F", "M"]
    assert list(table["n"]) == [200, 12]
    assert list(table["events"]) == [int(y[:200].sum()), int(y[200:].sum())]
    for name in CLASSIFICATION_METRICS:
        assert {name, f"{name}_low", f"{name}_high"} <= set(table.columns)
    small = table.set_index("subgroup").loc["M", "warning"]
    assert "too small to say anything: n=12 < 30" in small
    assert "events (< 10)" in small
    assert table.set_index("subgroup").loc["F", "warning"] == ""
    assert table.loc[0, "auroc"] == pytest.approx(score_predictions(CLF, y[:200],
                                                                    score[:200])["auroc"])


def test_age_bands_labels():
    bands = age_bands(pd.Series([30, 45, 54, 55, 64.5, 65, 90, None]))
    assert list(bands.astype(object).iloc[:7]) == ["<45", "45-54", "45-54", "55-64", "55-64",
                                                   ">=65", ">=65"]
    assert pd.isna(bands.iloc[7])
    assert list(bands.cat.categories) == ["<45", "45-54", "55-64", ">=65"]


# --------------------------------------------------------------------------- importance

def _fitted_classifier():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=600), "noise": rng.normal(size=600)})
    y = rng.binomial(1, _expit(2.0 * X["signal"].to_numpy()))
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:400], y[:400])
    return model, X[400:], y[400:]


def test_permutation_importance_ranks_informative_feature_first():
    model, X_test, y_test = _fitted_classifier()
    table = permutation_importance_table(model, X_test, y_test, scoring="roc_auc", n_repeats=5)
    assert list(table.columns) == ["feature", "importance_mean", "importance_std"]
    assert list(table["feature"]) == ["signal", "noise"]
    assert table["importance_mean"].iloc[0] > 0.1


# --------------------------------------------------------------------------- plots

def _assert_png(path):
    with open(path, "rb") as handle:
        head = handle.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_every_plot_writes_a_png(tmp_path):
    y, prob = _classification_data(150, seed=12)
    groups = np.repeat(np.arange(75), 2)
    yr, pred = _regression_data(100)
    model, X_test, _ = _fitted_classifier()
    written = [
        plots.plot_roc(y, prob, tmp_path / "a" / "roc.png", n_boot=50, groups=groups,
                       synthetic=True),
        plots.plot_precision_recall(y, prob, tmp_path / "pr.png", n_boot=50),
        plots.plot_calibration(y, prob, tmp_path / "cal.png", synthetic=True),
        plots.plot_confusion_matrix(y, prob, 0.5, tmp_path / "cm.png"),
        plots.plot_decision_curve(y, prob, tmp_path / "dca.png"),
        plots.plot_predicted_vs_observed(yr, pred, tmp_path / "pvo.png"),
        plots.plot_residuals(yr, pred, tmp_path / "res.png"),
        plots.plot_permutation_importance(["a", "b", "c"], [0.2, 0.05, -0.01],
                                          [0.02, 0.01, 0.01], tmp_path / "imp.png"),
        plots.plot_partial_dependence(model, X_test, ["signal", "noise"], tmp_path / "pdp.png",
                                      grid_resolution=10),
    ]
    assert len(set(written)) == 9
    for path in written:
        _assert_png(path)

