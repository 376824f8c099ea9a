"""How fast is the bootstrap of every survival metric?

Times ``survival_bootstrap`` (c_index, c_index_uno, integrated_brier and auroc / brier /
calibration_slope at 3 horizons: 12 metrics) for 1000 resamples of the 686 GBSG2 patients
(a Cox model's risk and a 15-point survival grid), against a loop calling scikit-survival's
own functions on 20 resamples (the same metrics, calibration slope excluded: it has no
scikit-survival function), extrapolated to 1000. Goal: under 10 s.

    python benchmarks/survival_bootstrap.py [--resamples 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def gbsg2_predictions():
    """Risk, survival grid, grid and horizons of a Cox model on GBSG2 (training data)."""
    from sksurv.column import encode_categorical
    from sksurv.datasets import load_gbsg2
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    X, y = load_gbsg2()
    X = encode_categorical(X)
    model = CoxPHSurvivalAnalysis(alpha=1e-4).fit(X, y)
    event, time_ = y["cens"].astype(float), y["time"]
    horizons = list(np.percentile(time_[event == 1], [25, 50, 75]).round())
    grid = np.union1d(np.linspace(np.percentile(time_[event == 1], 10), horizons[-1], 15),
                      horizons)
    surv = np.array([f(grid) for f in model.predict_survival_function(X)])
    return y, time_, event, model.predict(X), surv, grid, horizons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from sksurv import metrics as ref

    from medml_cli.evaluation.bootstrap import resample_weights
    from medml_cli.evaluation.survival import survival_bootstrap

    y, time_, event, risk, surv, grid, horizons = gbsg2_predictions()
    columns = [int(np.flatnonzero(np.isclose(grid, h))[0]) for h in horizons]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        survival_bootstrap(time_, event, risk, surv, grid, horizons,
                           n_resamples=args.resamples, seed=0)
        times.append(time.perf_counter() - start)
    ours = min(times)

    counts = resample_weights("binary-classification", event, n_resamples=20, seed=0)
    start = time.perf_counter()
    for row in counts:
        idx = np.repeat(np.arange(len(event)), row.astype(int))
        yb = y[idx]
        ref.concordance_index_censored(yb["cens"], yb["time"], risk[idx])
        ref.concordance_index_ipcw(yb, yb, risk[idx], tau=horizons[-1])
        ref.integrated_brier_score(yb, yb, surv[idx], grid)
        for h, k in zip(horizons, columns, strict=True):
            ref.cumulative_dynamic_auc(yb, yb, 1 - surv[idx, k], [h])
            ref.brier_score(yb, yb, surv[idx, k:k + 1], [h])
    loop = (time.perf_counter() - start) / len(counts) * args.resamples
    print(f"patients {len(event)}, events {int(event.sum())}, resamples {args.resamples}, "
          f"horizons {', '.join(f'{h:g}' for h in horizons)}, grid {len(grid)} times")
    print(f"medml survival_bootstrap (12 metrics): {ours:6.2f} s   (goal < 10 s)")
    print(f"loop over scikit-survival (10 metrics, from 20 resamples): {loop:6.1f} s")
    print(f"loop / medml: {loop / ours:.1f}x")


if __name__ == "__main__":
    main()
