"""medml's vectorised survival metrics against scikit-survival's own functions and the
dcurves package, on the real datasets that ship inside scikit-survival."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medml_cli.evaluation import survival as S

sksurv = pytest.importorskip("sksurv", reason="scikit-survival is a medml dependency")
from sksurv import metrics as ref  # noqa: E402
from sksurv.column import encode_categorical  # noqa: E402
from sksurv.datasets import load_gbsg2, load_veterans_lung_cancer, load_whas500  # noqa: E402
from sksurv.linear_model import CoxPHSurvivalAnalysis  # noqa: E402
from sksurv.util import Surv  # noqa: E402

LOADERS = {"veterans": load_veterans_lung_cancer, "gbsg2": load_gbsg2, "whas500": load_whas500}


class Fitted:
    """A dataset with a quickly fitted Cox model's risk and survival curves."""

    def __init__(self, name: str) -> None:
        X, y = LOADERS[name]()
        event_field, time_field = y.dtype.names
        self.y = Surv.from_arrays(event=y[event_field], time=y[time_field])
        self.event = y[event_field].astype(float)
        self.time = y[time_field].astype(float)
        model = CoxPHSurvivalAnalysis(alpha=1e-4).fit(encode_categorical(X), self.y)
        self.risk = model.predict(encode_categorical(X))
        events = self.time[self.event == 1]
        self.grid = np.linspace(np.percentile(events, 10), np.percentile(events, 75), 12)
        self.surv = np.array([f(self.grid) for f in
                              model.predict_survival_function(encode_categorical(X))])
        self.horizons = [self.grid[2], self.grid[6], self.grid[-1]]


@pytest.fixture(scope="module", params=sorted(LOADERS))
def data(request) -> Fitted:
    return Fitted(request.param)


@pytest.fixture(scope="module")
def gbsg2() -> Fitted:
    return Fitted("gbsg2")


def test_concordance_matches_scikit_survival(data):
    expected = ref.concordance_index_censored(data.event.astype(bool), data.time, data.risk)[0]
    assert S.harrell_c(data.time, data.event, data.risk) == pytest.approx(expected, abs=1e-12)
    tau = data.horizons[-1]
    uno = ref.concordance_index_ipcw(data.y, data.y, data.risk, tau=tau)[0]
    assert S.uno_c(data.time, data.event, data.risk, tau) == pytest.approx(uno, abs=1e-12)


def test_brier_auc_and_integrated_brier_match_scikit_survival(data):
    for k in (2, 6, 11):
        t = data.grid[k]
        brier = ref.brier_score(data.y, data.y, data.surv[:, k:k + 1], [t])[1][0]
        assert S.brier_at(data.time, data.event, data.surv[:, k], t) == pytest.approx(
            brier, abs=1e-12)
        auc = ref.cumulative_dynamic_auc(data.y, data.y, 1 - data.surv[:, k], [t])[0][0]
        assert S.cumulative_dynamic_auc(data.time, data.event, 1 - data.surv[:, k], t) == \
            pytest.approx(auc, abs=1e-12)
    ibs = ref.integrated_brier_score(data.y, data.y, data.surv, data.grid)
    assert S.integrated_brier(data.time, data.event, data.surv, data.grid) == pytest.approx(
        ibs, abs=1e-12)


def test_calibration_slope_is_the_cox_coefficient(data):
    t = data.horizons[1]
    surv = data.surv[:, 6]
    x = np.log(-np.log(np.clip(surv, 1e-10, 1 - 1e-10)))
    censored_at_t = Surv.from_arrays(event=(data.event == 1) & (data.time <= t),
                                     time=np.minimum(data.time, t))
    expected = CoxPHSurvivalAnalysis(ties="breslow").fit(x[:, None], censored_at_t).coef_[0]
    assert S.calibration_slope_at(data.time, data.event, surv, t) == pytest.approx(
        expected, abs=1e-6)


def test_kaplan_meier_matches_scikit_survival(gbsg2):
    from sksurv.nonparametric import kaplan_meier_estimator

    times, surv = kaplan_meier_estimator(gbsg2.event.astype(bool), gbsg2.time)
    ours_times, ours = S.kaplan_meier(gbsg2.time, gbsg2.event)
    assert np.array_equal(times, ours_times) and np.allclose(surv, ours, atol=1e-12)
    assert S.km_risk_at(gbsg2.time, gbsg2.event, 1000.0) == pytest.approx(
        1 - surv[np.searchsorted(times, 1000.0, side="right") - 1])


def test_weighted_equals_repeated_rows(gbsg2):
    """A row of bootstrap counts scores exactly what the repeated rows would."""
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 3, size=(3, len(gbsg2.time)))
    h = gbsg2.horizons[1]
    k = 6
    for b in range(3):
        idx = np.repeat(np.arange(len(gbsg2.time)), counts[b])
        t, e, r, s = gbsg2.time[idx], gbsg2.event[idx], gbsg2.risk[idx], gbsg2.surv[idx]
        pairs = [
            (S.harrell_c(gbsg2.time, gbsg2.event, gbsg2.risk, counts), S.harrell_c(t, e, r)),
            (S.uno_c(gbsg2.time, gbsg2.event, gbsg2.risk, h, counts), S.uno_c(t, e, r, h)),
            (S.brier_at(gbsg2.time, gbsg2.event, gbsg2.surv[:, k], h, counts),
             S.brier_at(t, e, s[:, k], h)),
            (S.integrated_brier(gbsg2.time, gbsg2.event, gbsg2.surv, gbsg2.grid, counts),
             S.integrated_brier(t, e, s, gbsg2.grid)),
            (S.cumulative_dynamic_auc(gbsg2.time, gbsg2.event, 1 - gbsg2.surv[:, k], h,
                                      counts), S.cumulative_dynamic_auc(t, e, 1 - s[:, k], h)),
            (S.calibration_slope_at(gbsg2.time, gbsg2.event, gbsg2.surv[:, k], h, counts),
             S.calibration_slope_at(t, e, s[:, k], h)),
            (S.km_risk_at(gbsg2.time, gbsg2.event, h, counts), S.km_risk_at(t, e, h)),
        ]
        for weighted, repeated in pairs:
            assert weighted[b] == pytest.approx(repeated, abs=1e-9)


def test_ties_in_time_and_risk():
    time = np.array([1, 2, 2, 2, 3, 4, 4, 5], dtype=float)
    event = np.array([1, 1, 0, 1, 1, 0, 1, 0], dtype=float)
    risk = np.array([5, 3, 3, 3, 2, 2, 1, 1], dtype=float)
    expected = ref.concordance_index_censored(event.astype(bool), time, risk)[0]
    assert S.harrell_c(time, event, risk) == pytest.approx(expected, abs=1e-12)
    y = Surv.from_arrays(event=event.astype(bool), time=time)
    auc = ref.cumulative_dynamic_auc(y, y, risk, [2.5])[0][0]
    assert S.cumulative_dynamic_auc(time, event, risk, 2.5) == pytest.approx(auc, abs=1e-12)


def test_undefined_metrics_are_nan_not_crashes():
    time = np.array([1.0, 2.0, 3.0])
    censored = np.zeros(3)
    assert np.isnan(S.harrell_c(time, censored, np.array([1.0, 2.0, 3.0])))
    assert np.isnan(S.calibration_slope_at(time, censored, np.array([0.9, 0.8, 0.7]), 2.0))
    assert np.isnan(S.calibration_slope_at(time, np.ones(3), np.full(3, 0.5), 2.0))
    assert np.isnan(S.cumulative_dynamic_auc(time, censored, np.array([1.0, 2, 3]), 2.0))


@pytest.mark.parametrize("k", [2, 6])
def test_decision_curve_matches_dcurves(gbsg2, k):
    dcurves = pytest.importorskip("dcurves", reason="dcurves is a dev dependency "
                                                    "(pip install -e '.[dev]')")
    t = float(gbsg2.grid[k])
    risk = 1 - gbsg2.surv[:, k]
    thresholds = np.round(np.arange(0.05, 0.96, 0.05), 2)
    frame = pd.DataFrame({"time": gbsg2.time, "event": gbsg2.event.astype(int),
                          "model": risk})
    theirs = dcurves.dca(data=frame, outcome="event", modelnames=["model"],
                         thresholds=thresholds, time=t, time_to_outcome_col="time")
    ours = S.decision_curve_at(gbsg2.time, gbsg2.event, risk, t, thresholds)
    for column, name in (("model", "model"), ("treat_all", "all")):
        expected = theirs.loc[theirs["model"] == name, "net_benefit"].to_numpy(dtype=float)
        assert np.allclose(ours[column].to_numpy(), expected, atol=1e-6, equal_nan=True)


def test_calibration_table_deciles(gbsg2):
    h = gbsg2.horizons[1]
    table = S.calibration_table(gbsg2.time, gbsg2.event, gbsg2.surv[:, 6], h)
    assert len(table) == 10 and table["n"].sum() == len(gbsg2.time)
    assert (table["observed_low"] <= table["observed"]).all()
    assert (table["observed"] <= table["observed_high"]).all()
    assert table["predicted"].is_monotonic_increasing
    # a good Cox model on its training data: observed risk rises with predicted risk
    assert np.corrcoef(table["predicted"], table["observed"])[0, 1] > 0.9


def test_bootstrap_is_seeded_stratified_and_patient_level(gbsg2):
    args = (gbsg2.time, gbsg2.event, gbsg2.risk, gbsg2.surv, gbsg2.grid, gbsg2.horizons)
    first = S.survival_bootstrap(*args, n_resamples=50, seed=3)
    again = S.survival_bootstrap(*args, n_resamples=50, seed=3)
    other = S.survival_bootstrap(*args, n_resamples=50, seed=4)
    assert all(np.array_equal(first[k], again[k], equal_nan=True) for k in first)
    assert not np.array_equal(first["c_index"], other["c_index"])
    assert set(first) == set(S.survival_metrics(*args))
    patients = np.repeat(np.arange(len(gbsg2.time) // 2 + 1), 2)[:len(gbsg2.time)]
    intervals = S.survival_intervals(*args, groups=patients, n_resamples=100, seed=0)
    point = S.harrell_c(gbsg2.time, gbsg2.event, gbsg2.risk)
    low, high = intervals["c_index"]
    assert low < point < high and high - low < 0.15
