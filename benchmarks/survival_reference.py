"""The "plain scikit-survival" reference C-indices that medml's survival models are held to.

For (Veterans lung cancer, Cox), (GBSG2, random survival forest) and (WHAS500, Cox): one-hot
encode with ``sksurv.column.encode_categorical`` (first level dropped), standardise inside each
training fold for Cox, 5-fold ``StratifiedKFold(shuffle=True, random_state=seed)`` on the event
indicator, and Harrell's C (``concordance_index_censored``) of the held-out risk scores, as

* per-fold mean +- sd (seed 42),
* pooled over all out-of-fold risk scores (seed 42),
* the same two repeated over seeds 42..46 (mean of the per-seed values, +- sd across seeds),

next to the targets quoted for plain scikit-survival. Cox is sksurv's default
``CoxPHSurvivalAnalysis()`` (alpha 0: the encoding drops a level, so the fit is full rank);
the forest uses medml's random-survival-forest defaults (300 trees, min_samples_split 10,
min_samples_leaf 15, max_features sqrt, random_state = seed).

    python benchmarks/survival_reference.py [--seeds 42 43 44 45 46] [--n-jobs 1]

:func:`plain_c_index` is importable so medml's side can be put beside it later.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

#: The C-indices the issue quotes for plain scikit-survival.
TARGETS = {("veterans", "cox"): 0.708, ("gbsg2", "random-survival-forest"): 0.692,
           ("whas500", "cox"): 0.769}
DATASET_NAMES = ("veterans", "gbsg2", "whas500")
MODEL_NAMES = ("cox", "random-survival-forest")


def load(dataset_name: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """One-hot encoded features, event indicator and time of a sksurv dataset."""
    from sksurv import datasets
    from sksurv.column import encode_categorical

    loaders = {"veterans": datasets.load_veterans_lung_cancer, "gbsg2": datasets.load_gbsg2,
               "whas500": datasets.load_whas500}
    if dataset_name not in loaders:
        raise ValueError(f"unknown dataset {dataset_name!r}; one of {sorted(loaders)}")
    X, y = loaders[dataset_name]()
    event_field, time_field = y.dtype.names
    return encode_categorical(X), y[event_field].astype(bool), y[time_field].astype(float)


def make_model(model_name: str, seed: int, n_jobs: int = 1) -> Any:
    """The plain scikit-survival estimator (a scaler + Cox pipeline, or the forest)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    if model_name == "cox":
        return make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis())
    if model_name == "random-survival-forest":
        return RandomSurvivalForest(n_estimators=300, min_samples_split=10, min_samples_leaf=15,
                                    max_features="sqrt", n_jobs=n_jobs, random_state=seed)
    raise ValueError(f"unknown model {model_name!r}; one of {list(MODEL_NAMES)}")


def plain_c_index(dataset_name: str, model_name: str, seed: int = 42, *,
                  n_splits: int = 5, n_jobs: int = 1) -> dict[str, Any]:
    """Harrell's C of plain scikit-survival in stratified k-fold CV: per fold, their mean and
    sd (ddof 1), and pooled over the out-of-fold risk scores."""
    from sklearn.model_selection import StratifiedKFold
    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    X, event, time_ = load(dataset_name)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    risk = np.full(len(event), np.nan)
    per_fold = []
    for train, test in folds.split(X, event):
        model = make_model(model_name, seed, n_jobs)
        model.fit(X.iloc[train], Surv.from_arrays(event=event[train], time=time_[train]))
        risk[test] = model.predict(X.iloc[test])
        per_fold.append(concordance_index_censored(event[test], time_[test], risk[test])[0])
    pooled = concordance_index_censored(event, time_, risk)[0]
    return {"dataset": dataset_name, "model": model_name, "seed": seed, "n": len(event),
            "events": int(event.sum()), "fold_c": [float(c) for c in per_fold],
            "mean": float(np.mean(per_fold)), "sd": float(np.std(per_fold, ddof=1)),
            "pooled": float(pooled)}


def repeated_c_index(dataset_name: str, model_name: str, seeds: list[int], *,
                     n_jobs: int = 1) -> dict[str, Any]:
    """:func:`plain_c_index` over several CV seeds: mean and sd across seeds of the per-fold
    mean and of the pooled C."""
    runs = [plain_c_index(dataset_name, model_name, s, n_jobs=n_jobs) for s in seeds]
    means = [r["mean"] for r in runs]
    pooled = [r["pooled"] for r in runs]
    return {"runs": runs, "mean": float(np.mean(means)), "mean_sd": float(np.std(means, ddof=1)),
            "pooled": float(np.mean(pooled)), "pooled_sd": float(np.std(pooled, ddof=1))}


def main() -> None:
    """Print the reference table and which protocol lands nearest each target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    header = (f"{'dataset':<9} {'model':<23} {'target':>6}  {'fold mean +- sd':>16}  "
              f"{'pooled':>6}  {'rep. mean':>15}  {'rep. pooled':>15}  closest")
    print(header)
    print("-" * len(header))
    worst: dict[str, float] = {}
    for (dataset_name, model_name), target in TARGETS.items():
        start = time.perf_counter()
        rep = repeated_c_index(dataset_name, model_name, args.seeds, n_jobs=args.n_jobs)
        first = next((r for r in rep["runs"] if r["seed"] == 42), rep["runs"][0])
        protocols = {"fold mean": first["mean"], "pooled": first["pooled"],
                     "repeated mean": rep["mean"], "repeated pooled": rep["pooled"]}
        closest = min(protocols, key=lambda k: abs(protocols[k] - target))
        for name, value in protocols.items():
            worst[name] = max(worst.get(name, 0.0), abs(value - target))
        print(f"{dataset_name:<9} {model_name:<23} {target:6.3f}  "
              f"{first['mean']:.3f} +- {first['sd']:.3f}  {first['pooled']:6.3f}  "
              f"{rep['mean']:.3f} +- {rep['mean_sd']:.3f}  "
              f"{rep['pooled']:.3f} +- {rep['pooled_sd']:.3f}  {closest} "
              f"({protocols[closest] - target:+.3f}; {time.perf_counter() - start:.0f} s)")
    print("largest |C - target| by protocol: "
          + ", ".join(f"{name} {value:.3f}" for name, value in sorted(worst.items(),
                                                                      key=lambda kv: kv[1])))


if __name__ == "__main__":
    main()
