"""The survival figures: files written, synthetic marking, tied risks, and the
time-dependent AUROC curve against scikit-survival."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

sksurv = pytest.importorskip("sksurv", reason="scikit-survival is a medml dependency")
from sksurv.datasets import load_veterans_lung_cancer  # noqa: E402

from medml_cli.evaluation import survival_plots as plots  # noqa: E402


@pytest.fixture(scope="module")
def veterans():
    X, y = load_veterans_lung_cancer()
    return (y["Survival_in_days"].astype(float), y["Status"].astype(float),
            -X["Karnofsky_score"].to_numpy(dtype=float))


def _readable(path) -> None:
    import matplotlib.image

    assert path.stat().st_size > 1000 and matplotlib.image.imread(path).ndim == 3


def test_km_by_risk_group_and_ties(veterans, tmp_path):
    time, event, risk = veterans
    _readable(plots.plot_km_by_risk_group(time, event, risk, tmp_path / "km.png",
                                          time_unit="days", horizons=[30, 90]))
    assert plots.risk_groups(np.zeros(20)).max() == 0  # all tied: one group, no crash
    _readable(plots.plot_km_by_risk_group(time, event, np.zeros(len(time)),
                                          tmp_path / "tied.png"))
    no_events = np.zeros(len(time))
    _readable(plots.plot_km_by_risk_group(time, no_events, risk, tmp_path / "flat.png"))


def test_time_dependent_auc_curve_matches_scikit_survival(veterans, tmp_path):
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    time, event, risk = veterans
    times, auc, mean_auc = plots.time_dependent_auc_curve(time, event, risk)
    assert times.min() >= time.min() and times.max() < time.max()
    y = Surv.from_arrays(event=event.astype(bool), time=time)
    expected, expected_mean = cumulative_dynamic_auc(y, y, risk, times)
    assert np.allclose(auc, expected) and mean_auc == pytest.approx(expected_mean)
    _readable(plots.plot_time_dependent_auc(times, auc, tmp_path / "auc.png",
                                            mean_auc=mean_auc, time_unit="days"))


def test_calibration_and_decision_curve_panels(tmp_path):
    table = pd.DataFrame({"group": [1, 2, 3], "n": [40, 40, 40], "events": [5, 12, 25],
                          "predicted": [0.1, 0.3, 0.6], "observed": [0.12, 0.28, 0.65],
                          "observed_low": [0.05, 0.18, 0.5], "observed_high": [0.2, 0.4, 0.8]})
    _readable(plots.plot_survival_calibration({"365": table, "730": table},
                                              tmp_path / "cal.png", time_unit="days"))
    pts = np.linspace(0.01, 0.99, 99)
    curve = pd.DataFrame({"threshold": pts, "model": 0.3 - 0.3 * pts,
                          "treat_all": 0.3 - 0.7 * pts / (1 - pts), "treat_none": 0.0})
    _readable(plots.plot_survival_decision_curves({"365": curve}, tmp_path / "dc.png"))


def test_synthetic_marks_the_title(veterans, tmp_path, monkeypatch):
    titles = []
    real = plots._finish

    def spy(fig, path, title, synthetic):
        titles.append((title, synthetic))
        return real(fig, path, title, synthetic)

    monkeypatch.setattr(plots, "_finish", spy)
    time, event, risk = veterans
    plots.plot_km_by_risk_group(time, event, risk, tmp_path / "km.png", synthetic=True)
    assert titles == [("Observed survival by predicted-risk group", True)]
