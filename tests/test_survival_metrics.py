"""Survival metrics against scikit-survival / dcurves on sksurv's shipped data sets, and the
weighted (bootstrap count) form against the same data with rows repeated."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from medml_cli.evaluation import survival as S

sksurv_metrics = pytest.importorskip("sksurv.metrics")
from sksurv.column import encode_categorical  # noqa: E402
from sksurv.datasets import (  # noqa: E402
    load_gbsg2,
    load_veterans_lung_cancer,
    load_whas500,
)
from sksurv.linear_model import CoxPHSurvivalAnalysis  # noqa: E402
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402

EXACT = 1e-10  # same algorithm
CLOSE = 1e-6  # different algorithm (Newton-Raphson tolerances, KM implementations)
LOADERS = {"veterans": load_veterans_lung_cancer, "gbsg2": load_gbsg2, "whas500": load_whas500}


class Fitted:
    """One data set with a quickly fitted Cox model's risks and survival curves."""

    def __init__(self, loader) -> None:
        x, y = loader()
        x = encode_categorical(x)
        model = CoxPHSurvivalAnalysis(alpha=1e-4).fit(x, y)
        event_field, time_field = y.dtype.names
        self.y = Surv.from_arrays(event=y[event_field], time=y[time_field])
        self.event = y[event_field].astype(bool)
        self.time = y[time_field].astype(float)
        self.risk = model.predict(x)
        self.grid = np.quantile(self.time[self.event], np.linspace(0.1, 0.8, 20))
        self.surv = np.array([f(self.grid) for f in model.predict_survival_function(x)])
        self.cols = [5, 10, 15]  # three horizons on the grid
        self.horizons = self.grid[self.cols]


@pytest.fixture(scope="module", params=list(LOADERS))
def data(request) -> Fitted:
    return Fitted(LOADERS[request.param])


@pytest.fixture(scope="module")
def gbsg2() -> Fitted:
    return Fitted(load_gbsg2)


def _admin_censored(d: Fitted, t: float) -> np.ndarray:
    return Surv.from_arrays(event=d.event & (d.time <= t), time=np.minimum(d.time, t))


def test_horizon_label() -> None:
    assert S.horizon_label(365) == "365"
    assert S.horizon_label(2.5) == "2.5"
    assert S.horizon_label(365.0) == "365"


def test_kaplan_meier_matches_sksurv(data: Fitted) -> None:
    times, surv = S.kaplan_meier(data.time, data.event)
    ref_t, ref_s = kaplan_meier_estimator(data.event, data.time)
    np.testing.assert_allclose(times, ref_t)
    np.testing.assert_allclose(surv, ref_s, atol=EXACT)
    for t in data.horizons:
        expected = 1 - ref_s[np.searchsorted(ref_t, t, side="right") - 1]
        assert S.km_risk_at(data.time, data.event, t) == pytest.approx(expected, abs=EXACT)


def test_concordance_matches_sksurv(data: Fitted) -> None:
    ref = sksurv_metrics.concordance_index_censored(data.event, data.time, data.risk)[0]
    assert S.harrell_c(data.time, data.event, data.risk) == pytest.approx(ref, abs=EXACT)
    for tau in data.horizons:
        ref = sksurv_metrics.concordance_index_ipcw(data.y, data.y, data.risk, tau=tau)[0]
        assert S.uno_c(data.time, data.event, data.risk, tau) == pytest.approx(ref, abs=EXACT)


def test_concordance_ties_match_sksurv(data: Fitted) -> None:
    # Coarse rounding makes many tied times and tied risks (and risks 1e-9 apart, inside
    # the 1e-8 tolerance).
    time = np.ceil(data.time / 30.0) * 30.0
    risk = np.round(data.risk, 1) + np.where(np.arange(len(time)) % 3 == 0, 1e-9, 0.0)
    y = Surv.from_arrays(event=data.event, time=time)
    ref = sksurv_metrics.concordance_index_censored(data.event, time, risk)[0]
    assert S.harrell_c(time, data.event, risk) == pytest.approx(ref, abs=EXACT)
    tau = float(np.quantile(time, 0.7))
    ref = sksurv_metrics.concordance_index_ipcw(y, y, risk, tau=tau)[0]
    assert S.uno_c(time, data.event, risk, tau) == pytest.approx(ref, abs=EXACT)
    t = float(np.quantile(time[data.event], 0.5))
    ref = sksurv_metrics.cumulative_dynamic_auc(y, y, risk, t)[0][0]
    assert S.cumulative_dynamic_auc(time, data.event, risk, t) == pytest.approx(ref, abs=EXACT)


def test_brier_and_auc_match_sksurv(data: Fitted) -> None:
    for col, t in zip(data.cols, data.horizons, strict=True):
        s = data.surv[:, col]
        ref = sksurv_metrics.brier_score(data.y, data.y, s[:, None], [t])[1][0]
        assert S.brier_at(data.time, data.event, s, t) == pytest.approx(ref, abs=EXACT)
        ref = sksurv_metrics.cumulative_dynamic_auc(data.y, data.y, 1 - s, t)[0][0]
        got = S.cumulative_dynamic_auc(data.time, data.event, 1 - s, t)
        assert got == pytest.approx(ref, abs=EXACT)
    ref = sksurv_metrics.integrated_brier_score(data.y, data.y, data.surv, data.grid)
    got = S.integrated_brier(data.time, data.event, data.surv, data.grid)
    assert got == pytest.approx(ref, abs=EXACT)


def test_calibration_slope_matches_cox_fit(data: Fitted) -> None:
    for col, t in zip(data.cols, data.horizons, strict=True):
        s = data.surv[:, col]
        x = np.log(-np.log(np.clip(s, 1e-10, 1 - 1e-10)))
        ref = CoxPHSurvivalAnalysis(ties="breslow").fit(x[:, None], _admin_censored(data, t))
        got = S.calibration_slope_at(data.time, data.event, s, t)
        assert got == pytest.approx(ref.coef_[0], abs=CLOSE)


def test_calibration_slope_of_a_perfectly_spread_model_is_near_one() -> None:
    rng = np.random.default_rng(3)
    lp = rng.normal(size=3000)
    time = rng.exponential(1 / np.exp(lp))
    t = 1.0
    surv = np.exp(-t * np.exp(lp))  # the true S(t|x)
    assert S.calibration_slope_at(time, np.ones_like(time), surv, t) == pytest.approx(1, abs=0.1)
    # Doubling the spread of log(-log S) halves the slope.
    too_extreme = np.exp(-np.exp(2 * np.log(-np.log(surv))))
    slope = S.calibration_slope_at(time, np.ones_like(time), too_extreme, t)
    assert slope == pytest.approx(0.5, abs=0.05)


def test_calibration_table_matches_sksurv_km(gbsg2: Fitted) -> None:
    d, col = gbsg2, gbsg2.cols[1]
    t, s = d.horizons[1], d.surv[:, col]
    table = S.calibration_table(d.time, d.event, s, t)
    assert list(table.columns) == ["group", "n", "events", "predicted", "observed",
                                   "observed_low", "observed_high"]
    assert len(table) == 10 and table["n"].sum() == len(d.time)
    groups = pd.qcut(1 - s, 10, labels=False)
    for row, g in zip(table.itertuples(), range(10), strict=True):
        m = groups == g
        times, km, ci = kaplan_meier_estimator(d.event[m], d.time[m], conf_type="log-log")
        k = np.searchsorted(times, t, side="right") - 1
        assert row.n == m.sum()
        assert row.events == int(np.sum(d.event[m] & (d.time[m] <= t)))
        assert row.predicted == pytest.approx(np.mean(1 - s[m]), abs=EXACT)
        assert row.observed == pytest.approx(1 - km[k], abs=EXACT)
        assert row.observed_low == pytest.approx(1 - ci[1, k], abs=EXACT)
        assert row.observed_high == pytest.approx(1 - ci[0, k], abs=EXACT)
    # Heavy ties give fewer groups, without failing.
    tied = S.calibration_table(d.time, d.event, np.round(s, 1), t)
    assert 1 <= len(tied) < 10 and tied["n"].sum() == len(d.time)


@pytest.mark.parametrize("which", [0, 2])
def test_decision_curve_matches_dcurves(gbsg2: Fitted, which: int) -> None:
    dcurves = pytest.importorskip("dcurves")
    d = gbsg2
    t = d.horizons[which]
    risk = 1 - d.surv[:, d.cols[which]]
    thresholds = np.arange(1, 100) / 100
    frame = pd.DataFrame({"time": d.time, "event": d.event.astype(int), "model": risk})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dcurves.dca(data=frame, outcome="event", time_to_outcome_col="time", time=t,
                          modelnames=["model"], thresholds=thresholds)
    got = S.decision_curve_at(d.time, d.event, risk, t, thresholds)
    assert list(got.columns) == ["threshold", "model", "treat_all", "treat_none"]
    for name, column in (("model", "model"), ("all", "treat_all"), ("none", "treat_none")):
        expected = ref.loc[ref["model"] == name, "net_benefit"].astype(float).to_numpy()
        np.testing.assert_allclose(got[column].to_numpy(), expected, atol=CLOSE)
    np.testing.assert_allclose(S.net_benefit_at(d.time, d.event, risk, t, thresholds),
                               got["model"].to_numpy(), atol=EXACT)
    default = S.decision_curve_at(d.time, d.event, risk, t)
    assert len(default) == 99


def test_survival_metrics_names_and_values(gbsg2: Fitted) -> None:
    d = gbsg2
    out = S.survival_metrics(d.time, d.event, d.risk, d.surv, d.grid, d.horizons)
    labels = [S.horizon_label(h) for h in d.horizons]
    expected = ["c_index", "c_index_uno", "integrated_brier"]
    for h in labels:
        expected += [f"auroc@{h}", f"brier@{h}", f"calibration_slope@{h}"]
    assert list(out) == expected
    assert all(isinstance(v, float) for v in out.values())
    assert out["c_index"] == S.harrell_c(d.time, d.event, d.risk)
    assert out["c_index_uno"] == pytest.approx(S.uno_c(d.time, d.event, d.risk,
                                                        d.horizons[-1]), abs=EXACT)
    col, h = d.cols[0], d.horizons[0]
    assert out[f"brier@{labels[0]}"] == pytest.approx(
        S.brier_at(d.time, d.event, d.surv[:, col], h), abs=EXACT)
    with pytest.raises(ValueError, match="not one of the grid"):
        S.survival_metrics(d.time, d.event, d.risk, d.surv, d.grid, [d.grid[0] + 0.5])


def _small_data(seed: int = 1, n: int = 40):
    """Tied times, tied risks (2 decimals, so distinct risks are >= 0.01 apart)."""
    rng = np.random.default_rng(seed)
    lp = rng.normal(size=n)
    time = np.ceil(rng.exponential(10 / np.exp(0.5 * lp)))
    cens = np.ceil(rng.exponential(15, size=n))
    event = (time <= cens).astype(int)
    time = np.minimum(time, cens) + 1.0
    grid = np.quantile(np.unique(time), [0.2, 0.35, 0.5, 0.65])
    base = np.exp(-grid[None, :] / 12.0)
    surv = np.round(base ** np.exp(0.5 * lp)[:, None], 2)
    risk = np.round(lp, 2)
    return time, event, risk, surv, grid


def test_weighted_equals_repeated_rows() -> None:
    time, event, risk, surv, grid = _small_data()
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 4, size=(6, len(time))).astype(float)
    t = float(grid[1])
    thresholds = np.array([0.1, 0.3, 0.5])
    functions = {
        "km_risk": lambda tt, e, r, s, w=None: S.km_risk_at(tt, e, t, weights=w),
        "harrell": lambda tt, e, r, s, w=None: S.harrell_c(tt, e, r, weights=w),
        "uno": lambda tt, e, r, s, w=None: S.uno_c(tt, e, r, grid[-1], weights=w),
        "brier": lambda tt, e, r, s, w=None: S.brier_at(tt, e, s[:, 1], t, weights=w),
        "ibs": lambda tt, e, r, s, w=None: S.integrated_brier(tt, e, s, grid, weights=w),
        "auc": lambda tt, e, r, s, w=None: S.cumulative_dynamic_auc(tt, e, 1 - s[:, 1], t,
                                                                    weights=w),
        "slope": lambda tt, e, r, s, w=None: S.calibration_slope_at(tt, e, s[:, 1], t,
                                                                    weights=w),
        "net_benefit": lambda tt, e, r, s, w=None: S.net_benefit_at(tt, e, 1 - s[:, 1], t,
                                                                    thresholds, weights=w),
    }
    for name, fn in functions.items():
        weighted = fn(time, event, risk, surv, counts)
        for b, row in enumerate(counts):
            idx = np.repeat(np.arange(len(time)), row.astype(int))
            expected = fn(time[idx], event[idx], risk[idx], surv[idx])
            np.testing.assert_allclose(weighted[b], expected, atol=EXACT, err_msg=name)
    all_w = S.survival_metrics(time, event, risk, surv, grid, grid[1:3], weights=counts)
    for b, row in enumerate(counts):
        idx = np.repeat(np.arange(len(time)), row.astype(int))
        one = S.survival_metrics(time[idx], event[idx], risk[idx], surv[idx], grid, grid[1:3])
        for name, value in one.items():
            np.testing.assert_allclose(all_w[name][b], value, atol=EXACT, err_msg=name)


def test_unweighted_equals_all_ones() -> None:
    time, event, risk, surv, grid = _small_data(seed=2)
    ones = np.ones((1, len(time)))
    a = S.survival_metrics(time, event, risk, surv, grid, grid[1:])
    b = S.survival_metrics(time, event, risk, surv, grid, grid[1:], weights=ones)
    for name in a:
        np.testing.assert_allclose(b[name][0], a[name], atol=EXACT, err_msg=name)


def test_all_censored_gives_nan_not_a_crash() -> None:
    time, _, risk, surv, grid = _small_data()
    event = np.zeros(len(time), dtype=int)
    out = S.survival_metrics(time, event, risk, surv, grid, grid[1:])
    assert all(np.isnan(v) for v in out.values())
    assert np.isnan(S.calibration_slope_at(time, event, surv[:, 0], grid[0]))
    assert S.km_risk_at(time, event, grid[0]) == 0.0
    draws = S.survival_bootstrap(time, event, risk, surv, grid, grid[1:], n_resamples=5)
    assert all(np.all(np.isnan(v)) for v in draws.values())
    intervals = S.survival_intervals(time, event, risk, surv, grid, grid[1:], n_resamples=5)
    assert all(np.isnan(lo) and np.isnan(hi) for lo, hi in intervals.values())


def test_undefined_cases_are_nan() -> None:
    time, event, risk, surv, grid = _small_data()
    beyond = float(time.max()) + 1
    assert np.isnan(S.brier_at(time, event, surv[:, 0], beyond))
    assert np.isnan(S.cumulative_dynamic_auc(time, event, risk, beyond))
    assert np.isnan(S.km_risk_at(time, event, beyond))
    before = float(time.min()) - 0.5  # no events before t
    assert np.isnan(S.calibration_slope_at(time, event, surv[:, 0], before))
    assert np.isnan(S.cumulative_dynamic_auc(time, event, risk, before))
    # All tied times, all events: no comparable pairs.
    assert np.isnan(S.harrell_c(np.ones(5), np.ones(5), np.arange(5.0)))
    # A constant predictor has no slope.
    assert np.isnan(S.calibration_slope_at(time, event, np.full(len(time), 0.7), grid[2]))


def test_bootstrap_is_deterministic_and_matches_weights(gbsg2: Fitted) -> None:
    d = gbsg2
    args = (d.time, d.event, d.risk, d.surv, d.grid, d.horizons)
    a = S.survival_bootstrap(*args, n_resamples=50, seed=3)
    b = S.survival_bootstrap(*args, n_resamples=50, seed=3)
    c = S.survival_bootstrap(*args, n_resamples=50, seed=4)
    for name in a:
        assert a[name].shape == (50,)
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["c_index"], c["c_index"])
    counts = np.concatenate(list(S._draw_chunks(d.event.astype(float), None, 50, 3, True)))
    # Event-stratified: every resample keeps the number of events.
    np.testing.assert_array_equal(counts @ d.event, np.full(50, d.event.sum()))
    direct = S.survival_metrics(*args, weights=counts)
    for name in a:
        np.testing.assert_array_equal(a[name], direct[name])
    intervals = S.survival_intervals(*args, n_resamples=200, seed=3)
    point = S.survival_metrics(*args)
    for name, (lo, hi) in intervals.items():
        assert lo <= point[name] <= hi, name


def test_bootstrap_in_chunks_is_deterministic(monkeypatch) -> None:
    time, event, risk, surv, grid = _small_data(n=60)
    monkeypatch.setattr(S, "_CHUNK_ELEMENTS", 60 * 7)  # 7 resamples per chunk
    a = S.survival_bootstrap(time, event, risk, surv, grid, grid[1:], n_resamples=30, seed=1)
    b = S.survival_bootstrap(time, event, risk, surv, grid, grid[1:], n_resamples=30, seed=1)
    for name in a:
        assert a[name].shape == (30,)
        np.testing.assert_array_equal(a[name], b[name])


def test_grouped_bootstrap_draws_patients() -> None:
    time, event, risk, surv, grid = _small_data(n=60)
    groups = np.repeat(np.arange(20), 3)  # 3 rows per patient
    draws = S.survival_bootstrap(time, event, risk, surv, grid, grid[1:], groups=groups,
                                 n_resamples=40, seed=2)
    assert all(v.shape == (40,) for v in draws.values())
    assert np.isfinite(draws["c_index"]).all()
    counts = np.concatenate(list(S._draw_chunks(event.astype(float), groups, 40, 2, True)))
    per_patient = counts.reshape(40, 20, 3)
    assert np.all(per_patient == per_patient[:, :, :1])  # a patient brings all its rows
    direct = S.survival_metrics(time, event, risk, surv, grid, grid[1:], weights=counts)
    for name in draws:
        np.testing.assert_array_equal(draws[name], direct[name])
