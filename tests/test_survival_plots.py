"""Survival figures: Kaplan-Meier by risk group, time-dependent AUROC, calibration, decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medml_cli.evaluation import survival_plots
from medml_cli.evaluation.survival_plots import (
    default_auc_times,
    plot_km_by_risk_group,
    plot_survival_calibration,
    plot_survival_decision_curves,
    plot_time_dependent_auc,
    risk_groups,
    time_dependent_auc_curve,
)


@pytest.fixture(scope="module")
def veterans() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Veterans' lung cancer trial: days, death, and risk = minus the Karnofsky score."""
    from sksurv.datasets import load_veterans_lung_cancer

    X, y = load_veterans_lung_cancer()
    return (y["Survival_in_days"].astype(float), y["Status"].astype(int),
            -X["Karnofsky_score"].to_numpy(dtype=float))


@pytest.fixture
def captured(monkeypatch):
    """Title, panel titles, axis labels and legend texts of each figure finished."""
    seen = []
    real = survival_plots._finish

    def spy(fig, path, title, synthetic):
        axes = [ax for ax in fig.axes if ax.get_visible()]
        legends = [t.get_text() for ax in axes if ax.get_legend()
                   for t in ax.get_legend().get_texts()]
        out = real(fig, path, title, synthetic)
        seen.append({"title": fig._suptitle.get_text(), "legend": legends,
                     "panels": [ax.get_title() for ax in axes],
                     "xlabels": [ax.get_xlabel() for ax in axes],
                     "ylim": [ax.get_ylim() for ax in axes],
                     "xlim": [ax.get_xlim() for ax in axes],
                     "vlines": [line for ax in axes for line in ax.get_lines()
                                if line.get_linestyle() == ":"]})
        return out

    monkeypatch.setattr(survival_plots, "_finish", spy)
    return seen


def _calibration_tables() -> dict[str, pd.DataFrame]:
    def table(pred, obs):
        pred, obs = np.asarray(pred), np.asarray(obs)
        return pd.DataFrame({"group": np.arange(1, len(pred) + 1), "n": 40,
                             "events": np.round(40 * obs).astype(int), "predicted": pred,
                             "observed": obs, "observed_low": np.clip(obs - 0.1, 0, 1),
                             "observed_high": np.clip(obs + 0.1, 0, 1)})

    return {"90": table([0.1, 0.2, 0.35], [0.12, 0.18, 0.4]),
            "365": table([0.4, 0.6, 0.85], [0.35, 0.65, 0.9])}


def _decision_curves() -> dict[str, pd.DataFrame]:
    pt = np.linspace(0.01, 0.99, 99)

    def curve(risk):
        treat_all = risk - (1 - risk) * pt / (1 - pt)
        return pd.DataFrame({"threshold": pt, "treat_all": treat_all, "treat_none": 0.0,
                             "model": np.maximum(treat_all, 0) + 0.02 * (1 - pt)})

    return {"90": curve(0.3), "365": curve(0.7)}


def _draw(name, tmp_path, data, synthetic=False):
    t, e, r = data
    path = tmp_path / "sub" / "dir" / f"{name}.png"
    if name == "km":
        return path, plot_km_by_risk_group(t, e, r, path, time_unit="days",
                                           horizons=(90, 365), synthetic=synthetic)
    if name == "auc":
        times, auc, mean = time_dependent_auc_curve(t, e, r)
        return path, plot_time_dependent_auc(times, auc, path, mean_auc=mean,
                                             time_unit="days", synthetic=synthetic)
    if name == "calibration":
        return path, plot_survival_calibration(_calibration_tables(), path, time_unit="days",
                                               synthetic=synthetic)
    return path, plot_survival_decision_curves(_decision_curves(), path, time_unit="days",
                                               synthetic=synthetic)


@pytest.mark.parametrize("name", ["km", "auc", "calibration", "decision"])
@pytest.mark.parametrize("synthetic", [False, True])
def test_each_figure_writes_a_readable_png(tmp_path, veterans, captured, name, synthetic):
    import matplotlib.image

    path, out = _draw(name, tmp_path, veterans, synthetic)
    assert out == path and out.stat().st_size > 1000
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert ("SYNTHETIC DATA" in captured[0]["title"]) is synthetic


def test_km_legend_counts_groups_and_horizons(tmp_path, veterans, captured):
    t, e, r = veterans
    _draw("km", tmp_path, veterans)
    legend = captured[0]["legend"]
    assert [text.split(" (")[0] for text in legend] == \
        ["low predicted risk", "middle predicted risk", "high predicted risk"]
    codes = risk_groups(r, 3)
    for g, text in enumerate(legend):
        assert f"(n={np.sum(codes == g)}, events={np.sum(e[codes == g])})" in text
    assert sum(np.sum(codes == g) for g in range(3)) == len(t)
    assert captured[0]["xlabels"] == ["time (days)"]
    assert sorted(line.get_xdata()[0] for line in captured[0]["vlines"]) == [90, 365]
    # higher predicted risk, worse observed survival: medians in order
    medians = [np.median(t[codes == g]) for g in range(3)]
    assert medians[0] > medians[1] > medians[2]


def test_risk_groups_are_quantiles_and_never_empty():
    r = np.arange(30, dtype=float)
    assert np.bincount(risk_groups(r, 3)).tolist() == [10, 10, 10]
    assert np.all(np.diff(risk_groups(r, 3)) >= 0)  # higher risk, higher group
    assert np.bincount(risk_groups(np.arange(10.0), 3)).tolist() == [3, 4, 3]
    # a tied block spanning tertile edges stays together, apart from the distinct risks
    assert np.bincount(risk_groups(np.r_[np.zeros(5), np.ones(25)], 3)).tolist() == [5, 25]
    assert np.bincount(risk_groups(np.r_[np.zeros(25), np.ones(5)], 3)).tolist() == [25, 5]
    codes = risk_groups(np.r_[np.arange(10.0), np.full(10, 10.0), np.arange(11.0, 21)], 3)
    assert np.bincount(codes).tolist() == [10, 10, 10]
    assert risk_groups(np.full(12, 0.4), 3).tolist() == [0] * 12


def test_all_risks_tied_draw_one_group(tmp_path, veterans, captured):
    t, e, _ = veterans
    out = plot_km_by_risk_group(t, e, np.zeros(len(t)), tmp_path / "tied.png")
    assert out.stat().st_size > 1000
    assert captured[0]["legend"] == [f"all patients (n={len(t)}, events={int(e.sum())})"]
    assert "tied risks: 1 of 3 groups" in captured[0]["title"]


def test_group_without_events_stays_at_one(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    drawn = []
    real = Axes.step
    monkeypatch.setattr(Axes, "step", lambda self, x, y, *a, **k:
                        drawn.append(np.asarray(y)) or real(self, x, y, *a, **k))
    t = np.arange(1.0, 31.0)
    risk = np.arange(30.0)
    event = (risk >= 10).astype(int)  # the lowest tertile is all censored
    plot_km_by_risk_group(t, event, risk, tmp_path / "flat.png")
    assert len(drawn) == 3
    assert np.all(drawn[0] == 1.0) and drawn[2][-1] < 1.0


def test_auc_curve_equals_sksurv(veterans):
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    t, e, r = veterans
    times, auc, mean = time_dependent_auc_curve(t, e, r)
    y = Surv.from_arrays(event=e.astype(bool), time=t)
    ref_auc, ref_mean = cumulative_dynamic_auc(y, y, r, times)
    assert len(times) == 20
    np.testing.assert_allclose(auc, ref_auc)
    assert mean == pytest.approx(ref_mean)
    given = np.array([30.0, 90.0, 180.0])
    times, auc, _ = time_dependent_auc_curve(t, e, r, given)
    np.testing.assert_array_equal(times, given)
    np.testing.assert_allclose(auc, cumulative_dynamic_auc(y, y, r, given)[0])


def test_default_times_lie_inside_follow_up(veterans):
    t, e, _ = veterans
    times = default_auc_times(t, e)
    assert len(times) == 20 and np.all(np.diff(times) > 0)
    assert times.min() >= t.min() and times.max() < t.max()
    lo, hi = np.percentile(t[e == 1], [10, 80])
    assert times[0] == pytest.approx(lo) and times[-1] == pytest.approx(hi)
    # when the 80th percentile of event times is the last follow-up time, it is dropped
    short_t = np.array([1.0, 2, 3, 4, 5, 5, 5, 5, 5, 5])
    short_e = np.ones(10, dtype=int)
    inside = default_auc_times(short_t, short_e)
    assert len(inside) > 0 and inside.max() < 5.0


def test_undefined_times_are_dropped_not_fatal(veterans):
    t, e, r = veterans
    times, auc, _ = time_dependent_auc_curve(t, e, r, [-5.0, 0.5, 100.0, 5000.0, t.max()])
    assert times.tolist() == [100.0]  # before follow-up, before any event, beyond it
    assert np.all(np.isfinite(auc))
    empty = time_dependent_auc_curve(t, np.zeros(len(t), dtype=int), r)
    assert len(empty[0]) == 0 and len(empty[1]) == 0 and np.isnan(empty[2])


def test_auc_figure_title_and_reference(tmp_path, veterans, captured):
    _draw("auc", tmp_path, veterans)
    _, _, mean = time_dependent_auc_curve(*veterans)
    assert f"(mean {mean:.3f})" in captured[0]["title"]
    assert captured[0]["legend"] == ["model", "chance"]
    plot_time_dependent_auc([], [], tmp_path / "empty.png")  # nothing to draw: no crash
    assert "mean" not in captured[1]["title"]


def test_calibration_panels_are_square_and_titled(tmp_path, veterans, captured):
    _draw("calibration", tmp_path, veterans)
    assert captured[0]["panels"] == ["risk by 90 days", "risk by 365 days"]
    for xlim, ylim in zip(captured[0]["xlim"], captured[0]["ylim"], strict=True):
        assert xlim == ylim and xlim[0] == 0
    assert captured[0]["xlim"][0][1] == pytest.approx(0.5 * 1.05)
    assert captured[0]["xlim"][1][1] == pytest.approx(1.0)


def test_decision_panels_clip_treat_all(tmp_path, veterans, captured):
    _draw("decision", tmp_path, veterans)
    assert captured[0]["panels"] == ["risk by 90 days", "risk by 365 days"]
    assert captured[0]["legend"][:3] == ["model", "treat all", "treat none"]
    curves = _decision_curves()
    for (low, high), curve in zip(captured[0]["ylim"], curves.values(), strict=True):
        top = max(curve["model"].max(), curve["treat_all"].max()) * 1.1 + 0.01
        assert high == pytest.approx(top) and low == pytest.approx(-0.2 * top)


def test_tables_missing_columns_are_rejected(tmp_path):
    bad = {"365": _calibration_tables()["365"].drop(columns="observed_high")}
    with pytest.raises(ValueError, match="observed_high"):
        plot_survival_calibration(bad, tmp_path / "c.png")
    with pytest.raises(ValueError, match="no decision-curve table"):
        plot_survival_decision_curves({}, tmp_path / "d.png")


def test_mismatched_inputs_are_rejected(tmp_path, veterans):
    t, e, r = veterans
    with pytest.raises(ValueError, match="risk has"):
        plot_km_by_risk_group(t, e, r[:-1], tmp_path / "k.png")
    with pytest.raises(ValueError, match="event must be 0"):
        time_dependent_auc_curve(t, e * 2, r)
