"""How much do parallel sweep workers buy, and what does Dask cost per trial?

Runs the shipped 24-trial sweep ``configs/sweeps/heart_disease_models.yaml`` (heart disease,
4 model families, 3 seeds, 5-fold CV, bootstrap 200) three times into a temporary folder:
the local pool with 1 worker, the local pool with 2 workers, and a Dask LocalCluster with 2
single-threaded worker processes. Prints wall time, trials per minute, the speed-up of 2
local workers over 1 (goal >= 1.7x on 2 cores), and the extra wall time per trial of Dask
over the local pool. Also splits a trial's time into fitting (``seconds`` in metrics.json)
and the fresh interpreter's start-up, the price of one process per trial.

    python benchmarks/sweep_speedup.py [--sweep FILE] [--workers 2] [--skip-dask]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from medml_cli.jsonio import read_json
from medml_cli.sweep import expand_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]


def timed_sweep(sweep_file: Path, runs_dir: Path, executor: str, workers: int) -> dict:
    sweep = expand_sweep(sweep_file)
    start = time.perf_counter()
    result = run_sweep(sweep, runs_dir=runs_dir, executor=executor, workers=workers)
    wall = time.perf_counter() - start
    if not result.all_succeeded:
        raise SystemExit(f"{executor} x{workers}: {result.counts}; see {result.path}")
    trials = result.manifest["trials"]
    fit = [read_json(result.path / t["run_dir"] / "metrics.json")["seconds"] for t in trials]
    return {"label": f"{executor}, {workers} worker{'s' if workers > 1 else ''}",
            "wall": wall, "n": len(trials),
            "trial": statistics.fmean(t["seconds"] for t in trials),
            "fit": statistics.fmean(fit),
            "best": result.leaderboard["best"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path,
                        default=REPO / "configs" / "sweeps" / "heart_disease_models.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="medml-sweep-bench-") as tmp:
        plan = [("local", 1), ("local", args.workers)]
        if not args.skip_dask:
            plan.append(("dask", args.workers))
        for executor, workers in plan:
            print(f"running {args.sweep.name}: {executor}, {workers} worker(s) ...", flush=True)
            rows.append(timed_sweep(args.sweep, Path(tmp) / f"{executor}-{workers}",
                                    executor, workers))

    print()
    print(f"{'executor':<20} {'trials':>6} {'wall s':>8} {'trials/min':>10} "
          f"{'s/trial (process)':>18} {'of which fit+eval':>18}")
    for row in rows:
        print(f"{row['label']:<20} {row['n']:>6} {row['wall']:>8.1f} "
              f"{60 * row['n'] / row['wall']:>10.1f} {row['trial']:>18.2f} {row['fit']:>18.2f}")
    one, many = rows[0], rows[1]
    print()
    print(f"speed-up, {args.workers} local workers vs 1: {one['wall'] / many['wall']:.2f}x "
          f"(goal >= 1.7x)")
    startup = one["trial"] - one["fit"]
    print(f"per-trial process overhead (interpreter + imports, 1 worker): {startup:.2f} s of "
          f"{one['trial']:.2f} s")
    if len(rows) > 2:
        dask = rows[2]
        extra = (dask["wall"] - many["wall"]) / dask["n"]
        print(f"Dask LocalCluster vs local pool ({args.workers} workers): "
              f"{extra:+.2f} s wall per trial (cluster start/stop included)")
    best = one["best"]
    print(f"best trial: {best['id']} {best['params']} seed {best['seed']}: "
          f"{best['value']:.3f}")


if __name__ == "__main__":
    main()
