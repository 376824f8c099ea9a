"""How close is a medml sweep to a plain scikit-learn loop doing the same trials?

Runs the shipped 24-trial sweep ``configs/sweeps/heart_disease_models.yaml`` (heart disease,
4 model families, 3 seeds, 5-fold stratified CV, bootstrap 200) side by side, in one run:

* plain: one Python process, ``joblib.Parallel(n_jobs=WORKERS)`` over the 24 trials, each
  building the same pipeline (``MODELS.create`` via ``build_estimator``: the same
  imputation, scaling, one-hot encoding and model), fitting it on the same 5 stratified
  folds (same seed), refitting it on all rows, and drawing 200 bootstrap resamples of the
  out-of-fold AUROC. The data are loaded once. Nothing is written: no run folder, no model
  file, no metrics beyond AUROC, no report.
* medml, local pool: ``run_sweep(workers=WORKERS)``; every trial is a complete ``medml
  train`` run folder (all metrics with CIs, calibration, baseline, model saved with skops,
  predictions, report, provenance), in its own process forked from a warm server.
* medml, Dask LocalCluster with WORKERS single-threaded workers (cluster start and stop
  included), unless ``--skip-dask``.
* with ``--fresh``: also the local pool with one fresh interpreter per trial (the old way).

Prints wall times, each medml side's ratio to plain (goal <= 1.5x), and the per-trial
overhead: (medml wall - plain wall) x workers / trials, i.e. the seconds each trial costs a
worker beyond the plain loop's work.

    python benchmarks/sweep_speedup.py [--sweep FILE] [--workers 2] [--skip-dask] [--fresh]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.jsonio import read_json
from medml_cli.sweep import expand_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]


def plain_trial(estimator: Any, X: Any, y: np.ndarray, seed: int, n_splits: int,
                resamples: int) -> tuple[float, float]:
    """What a scikit-learn user writes for one trial: k-fold out-of-fold scores, AUROC with a
    bootstrap CI, and the model refitted on every row."""
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(y))
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        model = clone(estimator).fit(X.iloc[train], y[train])
        scores[test] = model.predict_proba(X.iloc[test])[:, 1]
    clone(estimator).fit(X, y)
    rng = np.random.default_rng(seed)
    draws = [roc_auc_score(y[i], scores[i]) for i in
             (rng.integers(0, len(y), len(y)) for _ in range(resamples))
             if 0 < y[i].sum() < len(i)]
    return float(roc_auc_score(y, scores)), float(np.percentile(draws, 2.5))


def timed_plain(sweep_file: Path, workers: int) -> dict[str, Any]:
    from joblib import Parallel, delayed

    from medml_cli.config.loader import load_experiment_config
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_tabular import build_estimator

    sweep = expand_sweep(sweep_file)
    start = time.perf_counter()
    jobs, datasets = [], {}
    for trial in sweep.trials:
        cfg = load_experiment_config_text(trial.config_yaml, load_experiment_config)
        key = repr(cfg.data)
        if key not in datasets:
            datasets[key] = load_dataset(cfg)
        dataset = datasets[key]
        jobs.append(delayed(plain_trial)(build_estimator(cfg, dataset), dataset.X,
                                         dataset.y.to_numpy().astype(int), cfg.seed,
                                         cfg.split.n_splits, cfg.evaluation.bootstrap))
    results = Parallel(n_jobs=workers)(jobs)
    wall = time.perf_counter() - start
    return {"label": f"plain scikit-learn, joblib x{workers}", "wall": wall, "n": len(jobs),
            "best": max(auroc for auroc, _ in results)}


def load_experiment_config_text(text: str, loader: Any) -> Any:
    """A trial's config from its YAML text (the loader reads files; the heart sweep's data
    are built in, so no relative path depends on where the file is)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    try:
        return loader(handle.name)
    finally:
        Path(handle.name).unlink()


def timed_sweep(sweep_file: Path, runs_dir: Path, executor: str, workers: int,
                warm: bool = True) -> dict[str, Any]:
    sweep = expand_sweep(sweep_file)
    start = time.perf_counter()
    result = run_sweep(sweep, runs_dir=runs_dir, executor=executor, workers=workers,
                       warm=warm)
    wall = time.perf_counter() - start
    if not result.all_succeeded:
        raise SystemExit(f"{executor} x{workers}: {result.counts}; see {result.path}")
    trials = result.manifest["trials"]
    fit = [read_json(result.path / t["run_dir"] / "metrics.json")["seconds"] for t in trials]
    kind = "warm" if warm else "fresh interpreters"
    return {"label": f"medml {executor} x{workers} ({kind})", "wall": wall, "n": len(trials),
            "trial": statistics.fmean(t["seconds"] for t in trials),
            "fit": statistics.fmean(fit), "best": result.leaderboard["best"]["value"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path,
                        default=REPO / "configs" / "sweeps" / "heart_disease_models.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--fresh", action="store_true",
                        help="also time the local pool with a fresh interpreter per trial")
    args = parser.parse_args()

    print(f"plain scikit-learn loop, {args.workers} joblib workers ...", flush=True)
    plain = timed_plain(args.sweep, args.workers)
    rows = []
    with tempfile.TemporaryDirectory(prefix="medml-sweep-bench-") as tmp:
        plan = [("local", True)]
        if not args.skip_dask:
            plan.append(("dask", True))
        if args.fresh:
            plan.append(("local", False))
        for executor, warm in plan:
            print(f"medml sweep {args.sweep.name}: {executor}, {args.workers} workers, "
                  f"{'warm' if warm else 'fresh'} ...", flush=True)
            rows.append(timed_sweep(args.sweep, Path(tmp) / f"{executor}-{warm}", executor,
                                    args.workers, warm))

    print()
    print(f"{'side':<36} {'trials':>6} {'wall s':>7} {'x plain':>7} {'overhead s/trial':>16} "
          f"{'s/trial':>8} {'fit+eval s':>10}")
    print(f"{plain['label']:<36} {plain['n']:>6} {plain['wall']:>7.1f} {1:>7.2f} {'':>16} "
          f"{args.workers * plain['wall'] / plain['n']:>8.2f} {'':>10}")
    for row in rows:
        overhead = (row["wall"] - plain["wall"]) * args.workers / row["n"]
        print(f"{row['label']:<36} {row['n']:>6} {row['wall']:>7.1f} "
              f"{row['wall'] / plain['wall']:>7.2f} {overhead:>16.2f} {row['trial']:>8.2f} "
              f"{row['fit']:>10.2f}")
    print()
    for row in rows:
        print(f"{row['label']}: {row['wall'] / plain['wall']:.2f}x plain (goal <= 1.5x)")
    print(f"best AUROC: plain {plain['best']:.3f}, medml {rows[0]['best']:.3f} "
          "(plain scores one AUROC; medml's is the same out-of-fold AUROC)")


if __name__ == "__main__":
    main()
