"""Nested cross-validation: medml's ``tune:`` against plain scikit-learn on the same space.

Runs ``configs/heart_disease_tuned.yaml`` (UCI Cleveland, logistic regression / SVM / random
forest / gradient boosting, 5 outer x 5 inner folds) three ways, side by side:

1. medml with the shipped config (TPE, 40 trials per study);
2. medml with ``tune.sampler=grid`` (all 38 points of the same lists);
3. plain scikit-learn: ``GridSearchCV`` (the same 38 pipelines, built by medml's model
   registry so the estimators are identical, the same inner folds, ``roc_auc``) fitted in
   each of medml's outer folds, then once on all rows for the shipped model, as
   ``cross_val_score(GridSearchCV(...))`` plus a final ``GridSearchCV.fit`` would do.

Both medml runs have bootstrap and plots off so the timed work matches the plain side (medml
still fits the baseline, writes predictions, the model and the report). Prints the nested-CV
AUROC of each (mean over outer folds, as ``cross_val_score`` reports it, and pooled over the
out-of-fold predictions), the time ratio medml grid / plain (goal <= 1.3x), and medml's
per-trial overhead.

    python benchmarks/tuning_nested_cv.py [--skip-tpe]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "heart_disease_tuned.yaml"
SAME_WORK = ["evaluation.bootstrap=0", "evaluation.plots=false"]


def medml_run(overrides: list[str], runs_dir: Path) -> dict:
    from medml_cli.config.loader import load_experiment_config
    from medml_cli.workflows.train import run_experiment

    cfg = load_experiment_config(CONFIG, overrides)
    start = time.perf_counter()
    result = run_experiment(cfg, runs_dir=runs_dir)
    wall = time.perf_counter() - start
    metrics = result.metrics
    tuning = metrics["tuning"]
    trials = sum(r["trials_completed"] + r["trials_failed"] for r in tuning["outer_folds"]) \
        + tuning["final"]["trials_completed"] + tuning["final"]["trials_failed"]
    return {"wall": wall, "pooled": metrics["metrics"]["auroc"],
            "mean": metrics["fold_summary"]["auroc"]["mean"], "trials": trials,
            "final": tuning["final"]["params"], "optimism": tuning["mean_optimism"]}


def plain_nested_cv() -> dict:
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from medml_cli.config.loader import load_experiment_config
    from medml_cli.config.tuning import grid_of
    from medml_cli.evaluation.splits import make_folds
    from medml_cli.problems import problem_of
    from medml_cli.registry import MODELS
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_tabular import split_rows
    from medml_cli.workflows.tuning import tuned_config

    cfg = load_experiment_config(CONFIG, ["tune.sampler=grid", "tune.trials=null"])
    dataset = load_dataset(cfg)
    problem = problem_of(cfg.task, dataset)
    X, y = dataset.X, problem.fit_target(dataset.y.to_numpy())
    candidates = []
    for point in grid_of(cfg.tune, cfg.model.type):
        point_cfg = tuned_config(cfg, point)
        candidates.append(MODELS.create(point_cfg.model.type, point_cfg.model,
                                        problem=problem.name, schema=dataset.schema,
                                        seed=cfg.seed))

    def search(rows: np.ndarray) -> GridSearchCV:
        inner = make_folds(y[rows], method="kfold", n_splits=cfg.tune.inner_splits,
                           test_size=0.2, seed=cfg.seed, classify=True, stratify=True,
                           groups=None)
        grid = GridSearchCV(Pipeline([("model", candidates[0])]),
                            {"model": [clone(c) for c in candidates]}, cv=inner,
                            scoring="roc_auc", refit=True, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return grid.fit(X.iloc[rows], y[rows])

    start = time.perf_counter()
    oof = np.zeros(len(y))
    fold_aurocs = []
    for train, test in split_rows(cfg, dataset, problem):
        fitted = search(train)
        oof[test] = fitted.predict_proba(X.iloc[test])[:, 1]
        fold_aurocs.append(roc_auc_score(y[test], oof[test]))
    final = search(np.arange(len(y)))
    wall = time.perf_counter() - start
    return {"wall": wall, "pooled": roc_auc_score(y, oof), "mean": float(np.mean(fold_aurocs)),
            "points": len(candidates), "final": final.best_params_["model"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tpe", action="store_true",
                        help="skip the shipped TPE run (time and AUROC of the grid only)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="medml-tune-bench-") as tmp:
        if not args.skip_tpe:
            print("medml, shipped config (tpe, 40 trials) ...", flush=True)
            rows.append(("medml tune: tpe, 40 trials", medml_run(SAME_WORK, Path(tmp))))
        print("medml, tune.sampler=grid ...", flush=True)
        grid = medml_run([*SAME_WORK, "tune.sampler=grid", "tune.trials=null"], Path(tmp))
        rows.append(("medml tune: grid", grid))
    print("plain scikit-learn GridSearchCV in the same outer folds ...", flush=True)
    plain = plain_nested_cv()
    rows.append((f"plain GridSearchCV ({plain['points']} points)", plain))

    print()
    print(f"{'':<34} {'wall s':>8} {'AUROC mean of folds':>20} {'pooled':>8}")
    for label, row in rows:
        print(f"{label:<34} {row['wall']:>8.1f} {row['mean']:>20.4f} {row['pooled']:>8.4f}")
    print()
    print(f"time, medml grid / plain: {grid['wall'] / plain['wall']:.2f}x (goal <= 1.3x)")
    overhead = (grid["wall"] - plain["wall"]) / grid["trials"]
    print(f"medml overhead per trial: {overhead * 1000:+.1f} ms over {grid['trials']} trials")
    for label, row in rows[:-1]:
        gap = row["mean"] - plain["mean"]
        print(f"{label}: AUROC {row['mean']:.4f} vs plain {plain['mean']:.4f} "
              f"({gap:+.4f}; goal within 0.015); shipped model {row['final']}; "
              f"mean optimism {row['optimism']:+.4f}")
    print(f"plain shipped model: {plain['final']}")


if __name__ == "__main__":
    main()
