"""How fast is the vectorised bootstrap compared with a loop calling scikit-learn?

Times ``bootstrap_intervals`` (all 11 classification metrics) for 1000 resamples over 300
patients, (a) one row per patient with stratified row resampling and (b) 3 rows per patient
with the patient-level (cluster) bootstrap. For comparison it times a naive loop that calls
``sklearn.metrics.roc_auc_score`` on 100 resamples (AUROC only), extrapolates to 1000, and
prints naive/vectorised. Goal: well under 2 s for (a).

    python benchmarks/bootstrap_speed.py [--resamples 1000] [--patients 300] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score
from timing import best_time  # benchmarks/timing.py

from medml_cli.evaluation.bootstrap import bootstrap_intervals


def simulate(n_patients: int, rows_per_patient: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n_patients)
    groups = np.repeat(np.arange(n_patients), rows_per_patient)
    logit = risk[groups] - 1.0 + rng.normal(scale=0.5, size=len(groups))
    y = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    # Round to 2 decimals so the scores have ties, as real model outputs often do.
    score = np.round(1 / (1 + np.exp(-(logit + rng.normal(scale=1.0, size=len(groups))))), 2)
    return y, score, groups


def naive_auroc(y: np.ndarray, score: np.ndarray, n_resamples: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = []
    for _ in range(n_resamples):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        out.append(roc_auc_score(y[idx], score[idx]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    r, n = args.resamples, args.patients

    y, s, _ = simulate(n, 1)
    bootstrap_intervals("binary-classification", y, s, n_resamples=10)  # warm-up imports
    t_rows = best_time(lambda: bootstrap_intervals("binary-classification", y, s,
                                                   n_resamples=r), args.repeats)
    print(f"vectorised, {r} resamples x {n} patients (1 row each, stratified), "
          f"all 11 metrics: {t_rows:.3f} s")

    yg, sg, groups = simulate(n, 3)
    t_groups = best_time(lambda: bootstrap_intervals("binary-classification", yg, sg,
                                                     groups=groups, n_resamples=r),
                         args.repeats)
    print(f"vectorised, {r} resamples x {n} patients (3 rows each, cluster), "
          f"all 11 metrics: {t_groups:.3f} s")

    naive_n = 100
    t_naive = best_time(lambda: naive_auroc(y, s, naive_n), 1) * r / naive_n
    print(f"naive sklearn loop, AUROC only, {naive_n} resamples extrapolated to {r}: "
          f"{t_naive:.3f} s")
    print(f"ratio naive(AUROC only) / vectorised(all metrics): {t_naive / t_rows:.1f}x")
    print("goal (< 2 s for the first line):", "met" if t_rows < 2.0 else "NOT met")


if __name__ == "__main__":
    main()
