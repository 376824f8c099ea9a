"""medml's benchmark suite: one command, one table.

    python benchmarks/run.py            # prints the table, saves benchmarks/results/latest.md

Every ratio compares medml with the plain library doing the same work, run side by side in
the same process (or, for start-up, the same machine a moment apart):

1. `medml --help`: wall time, and whether TensorFlow was imported;
2. tabular training: `run_experiment` (5-fold CV, final refit, model saved, report; bootstrap
   and plots off so the work matches) against reading the CSV with pandas and running the same
   scikit-learn pipeline through the same folds plus a final fit, at 300, 10,000 and 100,000
   synthetic rows; also medml with its default evaluation (1000-resample bootstrap, plots).
   Printed: the ratio of the minimums, and the median of the paired ratios (each medml run
   over the plain run beside it, 9 pairs); benchmarks/train_overhead.py splits a run by step;
3. prediction throughput of a 100-tree random forest, the same work on both sides: medml
   is `medml predict`'s code path (read the CSV, check columns and the model's checksums,
   load the model through skops' trusted-type audit, predict, flag unusual rows) plus the
   output CSV as the command writes it; the plain side is `pandas.read_csv`, `skops.io.load`
   (trusting the file's types, reviewed once beforehand), `predict_proba` and `to_csv` of
   id, score and class.
   (Until issue 14 part 3 the plain side was `predict_proba` on a frame already in memory,
   which left the reading and loading that any real use pays on medml's side only.)
4. CNN training and prediction against plain Keras (benchmarks/keras_overhead.py);
5. peak memory while streaming images from disk (benchmarks/streaming_memory.py);
6. the bootstrap (benchmarks/bootstrap_speed.py).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROWS: list[tuple[str, str, str, str]] = []  # (measure, medml, plain, ratio / result)


def add(measure: str, medml: str, plain: str = "", result: str = "") -> None:
    ROWS.append((measure, medml, plain, result))
    print(f"{measure:<58} {medml:>16} {plain:>16} {result:>14}", flush=True)


def bench_help() -> None:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "medml_cli", "--help"], capture_output=True,
                       check=True)
        times.append(time.perf_counter() - start)
    code = ("import sys; from typer.testing import CliRunner; import medml_cli.cli as c; "
            "CliRunner().invoke(c.app, ['--help']); print('tensorflow' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    add("`medml --help` wall time (best of 5)", f"{min(times):.2f} s", "",
        f"TF imported: {loaded}")


def synthetic_table(n: int, path: Path) -> None:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=20, n_informative=8, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    frame["y"] = y
    frame.to_csv(path, index=False)


def plain_training(path: Path, cfg) -> float:
    """The same work with the libraries alone: read, 5 folds, metrics, final fit, save."""
    import skops.io as sio
    from sklearn.model_selection import StratifiedKFold

    from medml_cli.workflows.train import build_estimator

    start = time.perf_counter()
    frame = pd.read_csv(path)
    X, y = frame.drop(columns="y"), frame["y"].to_numpy()
    dataset = _schema_only(cfg, X)
    folds = StratifiedKFold(5, shuffle=True, random_state=cfg.seed).split(X, y)
    scores = np.empty(len(y))
    for train, test in folds:
        model = build_estimator(cfg, dataset).fit(X.iloc[train], y[train])
        scores[test] = model.predict_proba(X.iloc[test])[:, 1]
    held_out_metrics(y, scores)
    final = build_estimator(cfg, dataset).fit(X, y)
    with tempfile.TemporaryDirectory() as folder:
        sio.dump(final, Path(folder) / "m.skops")
    return time.perf_counter() - start


def held_out_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The 11 classification metrics with scikit-learn's functions, as a user would."""
    from sklearn import metrics as skm

    pred = (score >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    return {"auroc": skm.roc_auc_score(y, score), "auprc": skm.average_precision_score(y, score),
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp), "npv": tn / (tn + fn), "f1": skm.f1_score(y, pred),
            "brier": skm.brier_score_loss(y, score), "log_loss": skm.log_loss(y, score)}


def _schema_only(cfg, X: pd.DataFrame):
    """A stand-in dataset carrying only the schema the pipeline builder needs."""
    from types import SimpleNamespace

    from medml_cli.data.base import make_schema

    schema = make_schema(X, [], target="y", id_column=None, group_column=None,
                         classes=["0", "1"])
    return SimpleNamespace(schema=schema)


def bench_tabular(sizes: list[int]) -> None:
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import run_experiment

    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "table.csv"
            synthetic_table(n, path)
            base = {"task": "tabular-classification",
                    "data": {"type": "csv", "path": str(path), "target": "y"},
                    "model": {"type": "logistic-regression", "max_iter": 200}}
            same = validate_config_data({**base, "evaluation": {"bootstrap": 0,
                                                                "plots": False}})
            full = validate_config_data(base)
            medml_times, plain_times = [], []
            run_experiment(same, runs_dir=Path(folder) / "runs")  # warm-up, not counted
            plain_training(path, same)
            for _ in range(9 if n <= 10_000 else 3):  # interleaved
                start = time.perf_counter()
                run_experiment(same, runs_dir=Path(folder) / "runs")
                medml_times.append(time.perf_counter() - start)
                plain_times.append(plain_training(path, same))
            start = time.perf_counter()
            run_experiment(full, runs_dir=Path(folder) / "runs")
            default_time = time.perf_counter() - start
        medml, plain = min(medml_times), min(plain_times)
        # each medml run over the plain run beside it: steadier on a shared machine
        paired = float(np.median([m / p for m, p in zip(medml_times, plain_times,
                                                        strict=True)]))
        add(f"tabular train, {n:,} rows (5-fold LR, same work)", f"{medml:.2f} s",
            f"{plain:.2f} s", f"{medml / plain:.2f}x, paired {paired:.2f}x")
        add(f"tabular train, {n:,} rows (medml default evaluation)", f"{default_time:.2f} s",
            f"{plain:.2f} s", f"{default_time / plain:.2f}x")


def plain_predict(model_path: Path, trusted: list[str], input_path: Path,
                  output: Path) -> None:
    """What a user does without medml: read, load with skops, predict_proba, write a CSV.

    ``trusted`` was reviewed once beforehand (skops' get_untrusted_types), so the timed load
    is one audited pass, as medml's is.
    """
    import skops.io as sio

    frame = pd.read_csv(input_path)
    model = sio.load(model_path, trusted=trusted)
    X = frame.drop(columns="y")
    score = model.predict_proba(X)[:, 1]
    pd.DataFrame({"id": np.arange(1, len(X) + 1), "score": score,
                  "predicted_class": (score >= 0.5).astype(int)}).to_csv(output, index=False)


def medml_predict(run: Path, input_path: Path, output: Path) -> None:
    """`medml predict RUN --input ... --output ...` without the CLI start-up: the same calls."""
    from medml_cli.workflows.predict import predict_with_run

    try:  # the command's own CSV writer (medml_cli.csvio, since issue 14 part 3)
        from medml_cli.csvio import csv_text
    except ImportError:  # measuring an earlier version
        def csv_text(frame):
            return frame.to_csv(index=False)
    output.write_text(csv_text(predict_with_run(run, input_path).frame))


def bench_predict(n: int = 100_000) -> None:
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import run_experiment

    with tempfile.TemporaryDirectory() as folder:
        train_path = Path(folder) / "train.csv"
        synthetic_table(2000, train_path)
        cfg = validate_config_data({
            "task": "tabular-classification",
            "data": {"type": "csv", "path": str(train_path), "target": "y"},
            "split": {"method": "holdout"},
            "model": {"type": "random-forest", "n_estimators": 100, "n_jobs": 1},
            "evaluation": {"bootstrap": 0, "plots": False}})
        run = run_experiment(cfg, runs_dir=Path(folder) / "runs").path
        input_path = Path(folder) / "input.csv"
        synthetic_table(n, input_path)
        out = Path(folder) / "out.csv"
        import skops.io as sio

        model_path = run / "model" / "model.skops"
        trusted = sio.get_untrusted_types(file=model_path)
        medml_times, plain_times = [], []
        for _ in range(5):  # interleaved, best of 5
            start = time.perf_counter()
            medml_predict(run, input_path, out)
            medml_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            plain_predict(model_path, trusted, input_path, out)
            plain_times.append(time.perf_counter() - start)
    medml, plain = n / min(medml_times), n / min(plain_times)
    add(f"predict, 100-tree forest, {n:,} rows (rows/s; read+load+predict+write)",
        f"{medml:,.0f}", f"{plain:,.0f}",
        f"{medml / plain:.2f}x {'>=' if medml >= 50_000 else '<'} 50k")


def run_script(name: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        return f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}"
    return out.stdout


def bench_cnn() -> None:
    text = run_script("keras_overhead.py")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] in {"cnn2d", "cnn3d"} and parts[-1].endswith("x"):
            case = " ".join(parts[:-3])
            add(f"CNN {case} (images/s)", parts[-2], parts[-3], parts[-1])


def bench_streaming() -> None:
    text = run_script("streaming_memory.py", "128")
    for line in text.splitlines():
        if line.startswith("extra private memory"):
            add("streaming a 384 MB image file (budget 128 MB)", line.split(":")[1]
                .split("=")[0].strip(), "384 MB if loaded", line.split("(")[-1].rstrip(")"))


def bench_bootstrap() -> None:
    text = run_script("bootstrap_speed.py")
    line = next((line for line in text.splitlines() if "all" in line and " s" in line), "")
    add("bootstrap, 1000 resamples x 300 patients, all metrics", line.strip()[-12:].strip(),
        "", "goal < 2 s")


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"medml benchmarks on {platform.node()} ({platform.machine()}, {os.cpu_count()} "
          f"cores, Python {platform.python_version()})")
    print(f"{'measure':<58} {'medml':>16} {'plain library':>16} {'ratio/result':>14}")
    bench_help()
    bench_tabular([300, 10_000] if quick else [300, 10_000, 100_000])
    bench_predict(20_000 if quick else 100_000)
    bench_bootstrap()
    if not quick:
        bench_cnn()
        bench_streaming()
    lines = ["| measure | medml | plain library | ratio / result |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ROWS]
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    header = (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}\n\n")
    (results / "latest.md").write_text(header + "\n".join(lines) + "\n")
    print(f"\nsaved {results / 'latest.md'}")


if __name__ == "__main__":
    main()
