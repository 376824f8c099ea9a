"""Where a tabular training run's time goes, beside the plain scikit-learn loop.

    python benchmarks/train_overhead.py [ROWS ...]      # default: 300 10000

For each size it trains the benchmark's 5-fold logistic regression (bootstrap and plots
off, as in benchmarks/run.py's same-work row) 15 times interleaved with the plain loop, and
times each step medml takes, by wrapping the functions that do it. It prints the median of
each step per run, the plain loop's own steps for comparison, and the median paired ratio
(each medml run over the plain run beside it), which varies less on a shared machine than a
ratio of two minimums.
"""

from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402
import run as bench  # noqa: E402 - the suite's synthetic table and plain loop

#: (label, module, attribute[, class]) of each step timed in medml's run.
STEPS = [
    ("read and check the table", "medml_cli.workflows.train", "load_dataset", None),
    ("folds and split checks", "medml_cli.workflows.train_tabular", "plan", "TabularTraining"),
    ("environment (git, versions)", "medml_cli.runs.environment", "record",
     "EnvironmentCapture"),
    ("environment: start git", "medml_cli.runs.environment", "__init__", "EnvironmentCapture"),
    ("fits (5 folds + final)", "medml_cli.workflows.train_tabular", "_fit_quietly", None),
    ("scores (model and baseline)", "medml_cli.problems.binary", "scores",
     "BinaryClassification"),
    ("per-fold and pooled metrics", "medml_cli.problems.binary", "metrics",
     "BinaryClassification"),
    ("prediction tables", "medml_cli.workflows.train_tabular", "_prediction_frame", None),
    ("calibration, decision curve", "medml_cli.problems.base", "assess", "ProblemType"),
    ("predictions.csv", "medml_cli.workflows.run_results", "write_csv", None),
    ("model, card.json, schema", "medml_cli.workflows.train_tabular", "finish",
     "TabularTraining"),
    ("report.md, report.html", "medml_cli.workflows.run_results", "write_reports", None),
    ("model card (card.md)", "medml_cli.workflows.run_results", "write_model_card", None),
    ("config.yaml text", "medml_cli.workflows.train", "config_to_yaml", None),
]


def _wrap(times: dict[str, list[float]], label: str, owner: object, name: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[label].append(time.perf_counter() - start)

    setattr(owner, name, timed)


def measure(n: int, repeats: int = 15) -> None:
    """Print the per-step medians of medml's run at ``n`` rows and the paired ratio."""
    import importlib

    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import run_experiment

    times: dict[str, list[float]] = defaultdict(list)
    originals = []
    for label, module, name, cls in STEPS:
        owner = getattr(importlib.import_module(module), cls) if cls else \
            importlib.import_module(module)
        originals.append((owner, name, getattr(owner, name)))
        _wrap(times, label, owner, name)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        bench.synthetic_table(n, path)
        cfg = validate_config_data({
            "task": "tabular-classification",
            "data": {"type": "csv", "path": str(path), "target": "y"},
            "model": {"type": "logistic-regression", "max_iter": 200},
            "evaluation": {"bootstrap": 0, "plots": False}})
        run_experiment(cfg, runs_dir=Path(folder) / "runs")  # warm-up, not counted
        bench.plain_training(path, cfg)
        times.clear()
        medml, plain = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            run_experiment(cfg, runs_dir=Path(folder) / "runs")
            medml.append(time.perf_counter() - start)
            plain.append(bench.plain_training(path, cfg))
            start = time.perf_counter()
            pd.read_csv(path)
            times["plain: read_csv alone"].append(time.perf_counter() - start)
    for owner, name, original in originals:
        setattr(owner, name, original)
    print(f"\n{n:,} rows, {repeats} runs each, medians per run (ms)")
    print(f"  {'medml run, whole':<34} {statistics.median(medml) * 1000:8.1f}")
    print(f"  {'plain loop, whole':<34} {statistics.median(plain) * 1000:8.1f}")
    for label, *_ in STEPS:
        calls = len(times[label]) // repeats  # each run makes the same calls, in order
        per_run = [sum(times[label][i * calls:(i + 1) * calls]) for i in range(repeats)]
        print(f"  {label:<34} {statistics.median(per_run) * 1000:8.1f}   ({calls} call(s))")
    print(f"  {'plain: read_csv alone':<34} "
          f"{statistics.median(times['plain: read_csv alone']) * 1000:8.1f}")
    ratios = [m / p for m, p in zip(medml, plain, strict=True)]
    print(f"  median paired ratio medml/plain: {statistics.median(ratios):.2f}x "
          f"(ratio of minimums {min(medml) / min(plain):.2f}x)")


if __name__ == "__main__":
    for rows in [int(a) for a in sys.argv[1:]] or [300, 10_000]:
        measure(rows)
