"""How fast is the vectorised survival bootstrap compared with a loop over scikit-survival?

Times ``survival_bootstrap`` (all metrics: Harrell and Uno C, integrated Brier, and per
horizon AUROC, Brier and calibration slope) for 1000 resamples of the 686 GBSG2 patients,
3 horizons (25/50/75th percentiles of the event times) and a 20-point grid. For comparison
it runs one unvectorised pass of scikit-survival's own functions (and a Cox fit for each
calibration slope) per resample on 20 resamples, extrapolates to 1000, and prints
loop/vectorised. Goal: < 10 s for the vectorised bootstrap on a 2-core machine.

    python benchmarks/survival_bootstrap.py [--resamples 1000] [--naive 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sksurv.column import encode_categorical
from sksurv.datasets import load_gbsg2
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.util import Surv
from timing import best_time  # benchmarks/timing.py

from medml_cli.evaluation.bootstrap import resample_weights
from medml_cli.evaluation.survival import survival_bootstrap


def gbsg2_predictions():
    """GBSG2 times, events, Cox risks and survival curves on a 20-point grid; 3 horizons."""
    x, y = load_gbsg2()
    model = CoxPHSurvivalAnalysis(alpha=1e-4).fit(encode_categorical(x), y)
    event, time_ = y["cens"].astype(bool), y["time"].astype(float)
    risk = model.predict(encode_categorical(x))
    horizons = np.quantile(time_[event], [0.25, 0.5, 0.75])
    grid = np.unique(np.r_[np.linspace(time_[event].min(), np.quantile(time_, 0.9), 17),
                           horizons])
    surv = np.array([f(grid) for f in model.predict_survival_function(encode_categorical(x))])
    return time_, event, risk, surv, grid, horizons


def naive_pass(time_, event, risk, surv, grid, horizons, counts) -> None:
    """Every metric by scikit-survival on each resample's repeated rows (a Python loop)."""
    cols = [int(np.flatnonzero(np.isclose(grid, h))[0]) for h in horizons]
    for row in counts:
        idx = np.repeat(np.arange(len(time_)), row.astype(int))
        e, t, r, s = event[idx], time_[idx], risk[idx], surv[idx]
        y = Surv.from_arrays(event=e, time=t)
        concordance_index_censored(e, t, r)
        concordance_index_ipcw(y, y, r, tau=horizons[-1])
        integrated_brier_score(y, y, s, grid)
        for col, h in zip(cols, horizons, strict=True):
            cumulative_dynamic_auc(y, y, 1 - s[:, col], h)
            brier_score(y, y, s[:, col][:, None], [h])
            x = np.log(-np.log(np.clip(s[:, col], 1e-10, 1 - 1e-10)))
            ya = Surv.from_arrays(event=e & (t <= h), time=np.minimum(t, h))
            CoxPHSurvivalAnalysis(ties="breslow").fit(x[:, None], ya)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    r = args.resamples
    data = gbsg2_predictions()
    n = len(data[0])

    survival_bootstrap(*data, n_resamples=5)  # warm-up
    t_vec = best_time(lambda: survival_bootstrap(*data, n_resamples=r), args.repeats)
    n_metrics = len(survival_bootstrap(*data, n_resamples=1))
    print(f"vectorised survival_bootstrap, {r} resamples x {n} patients, 3 horizons, "
          f"{len(data[4])}-point grid, all {n_metrics} metrics: {t_vec:.3f} s")

    counts = resample_weights("binary-classification", data[1].astype(int),
                              n_resamples=args.naive, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_naive = best_time(lambda: naive_pass(*data, counts), 1) * r / args.naive
    print(f"loop over scikit-survival's functions (+ a Cox fit per slope), {args.naive} "
          f"resamples extrapolated to {r}: {t_naive:.3f} s")
    print(f"ratio loop / vectorised: {t_naive / t_vec:.1f}x")
    print("goal (< 10 s for the first line):", "met" if t_vec < 10.0 else "NOT met")


if __name__ == "__main__":
    main()
