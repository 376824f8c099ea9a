"""Prediction throughput on 100,000 tabular rows: medml predict with the run, medml predict
with its exported ONNX bundle, ONNX Runtime alone on the bundle, and plain scikit-learn.

Trains each model on the shipped heart-disease config (Cleveland, ``evaluation.bootstrap=0``),
exports it, and writes 100,000 rows drawn with replacement from the four UCI sites (so
missing values and every category occur) to a CSV. Then, best of ``--repeats``:

* ``medml predict (run)``: ``predict_with_run(run, csv)``: read the CSV, check it against the
  schema, score with the skops pipeline, build the output table with row warnings;
* ``medml predict (bundle)``: the same with the ONNX bundle (ONNX Runtime scores);
* ``onnxruntime session.run``: the bundle's graph on the already-built input arrays;
* ``sklearn predict_proba``: the fitted pipeline on the already-prepared DataFrame.

    python benchmarks/onnx_throughput.py [--rows 100000] [--repeats 3] [--models ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from timing import best_time  # benchmarks/timing.py

REPO = Path(__file__).resolve().parents[1]
MODELS = {"logistic-regression": "heart_disease_logreg", "random-forest": "heart_disease_rf",
          "gradient-boosting": "heart_disease_gb"}


def _train_and_export(config: str, runs: Path) -> tuple[Path, Path]:
    def medml(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "medml_cli", *args], capture_output=True,
                              text=True, cwd=REPO, check=True)
        return done.stdout.strip().splitlines()[-1]

    run = Path(medml("-q", "train", str(REPO / "configs" / f"{config}.yaml"), "--runs-dir",
                     str(runs), "--set", "evaluation.bootstrap=0"))
    return run, Path(medml("-q", "export", str(run)))


def _input_csv(run: Path, rows: int, path: Path) -> None:
    from medml_cli.workflows.run_model import load_run_config, load_schema
    from medml_cli.workflows.train import load_dataset

    cfg = load_run_config(run).model_copy(deep=True)
    cfg.data.sites = ["cleveland", "hungarian", "switzerland", "va"]
    schema = load_schema(run)
    dataset = load_dataset(cfg)
    pick = np.random.default_rng(0).integers(0, dataset.n_samples, rows)
    frame = dataset.X.iloc[pick].reset_index(drop=True)
    frame.insert(0, schema.id_column, [f"p{i:06d}" for i in range(rows)])
    frame.to_csv(path, index=False)


def _measure(model_name: str, tmp: Path, rows: int, repeats: int) -> None:
    """Train, export and time one model; prints its rows."""
    import pandas as pd

    from medml_cli.data.base import prepare_features
    from medml_cli.runs.artifacts import load_sklearn_model
    from medml_cli.runs.onnx_bundle import open_bundle, tabular_feeds
    from medml_cli.workflows.predict import predict_with_run
    from medml_cli.workflows.run_model import align_category_spelling, load_schema

    run, bundle = _train_and_export(MODELS[model_name], tmp / "runs")
    csv = tmp / f"{model_name}.csv"
    _input_csv(run, rows, csv)
    schema = load_schema(run)
    frame = pd.read_csv(csv, dtype={c: str for c in schema.names_of("categorical")})
    X = align_category_spelling(prepare_features(frame, schema, "bench", context="input"),
                                schema)
    pipeline = load_sklearn_model(run / "model")
    onnx_model = open_bundle(bundle)
    feeds = tabular_feeds(X, onnx_model.signature["inputs"])
    output = onnx_model.signature["score_output"]
    timings = {
        "medml predict (run)": best_time(lambda: predict_with_run(run, csv), repeats),
        "medml predict (bundle)": best_time(lambda: predict_with_run(bundle, csv), repeats),
        "onnxruntime session.run": best_time(
            lambda: onnx_model.session.run([output], feeds), repeats),
        "sklearn predict_proba": best_time(lambda: pipeline.predict_proba(X), repeats),
    }
    base = timings["medml predict (run)"]
    for path, seconds in timings.items():
        print(f"| {model_name} | {path} | {seconds:.3f} | {rows / seconds:,.0f} | "
              f"{base / seconds:.2f}x |", flush=True)
    diff = np.abs(pipeline.predict_proba(X)[:, 1]
                  - onnx_model.session.run([output], feeds)[0][:, 1]).max()
    print(f"| {model_name} | max abs diff ONNX vs sklearn on {rows:,} rows | {diff:.2e} "
          "| | |", flush=True)


def main() -> None:
    """Print rows/s per model and path, with ratios to medml predict on the run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    print("| model | path | seconds | rows/s | vs medml predict (run) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in args.models:
            _measure(model_name, Path(tmp), args.rows, args.repeats)


if __name__ == "__main__":
    main()
