"""How much slower is ``ImageCnnClassifier`` than plain Keras on the same network?

Times (a) ``keras.Model.fit`` on in-memory float32 arrays against (b)
``ImageCnnClassifier.fit`` (streaming pipeline, no validation, no augmentation), with the
same network, batch size, epochs and class weights; then ``model.predict`` against
``ImageCnnClassifier.predict_proba``. Prints images/second and the ratio of times
medml/plain (goal <= 1.10) for: whole ``fit`` calls (network build, graph tracing and all
epochs), steady-state epochs (epoch 2 onwards; the first epoch carries the one-off tracing
cost), and prediction (after a warm-up call).

medml turns on TensorFlow op determinism, which cannot be turned off again in a process,
so every plain-Keras timing runs first; a last plain run with determinism on shows how much
of any gap is determinism rather than the input pipeline.

    python benchmarks/keras_overhead.py [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = {"cnn2d": (512, (32, 32, 1)), "cnn3d": (256, (16, 16, 16, 1))}
FILTERS = (32, 64, 128)
BATCH = 32


def _data(n: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, *shape), dtype=np.float32), (np.arange(n) % 2).astype(np.int64)


def _steady(ends: list[float]) -> float:
    """Seconds per epoch from epoch 2 on (epoch end times -> mean gap)."""
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def _plain_fit(arch: str, x: np.ndarray, y: np.ndarray, epochs: int) -> dict[str, Any]:
    """Build, compile and fit the network with plain Keras; the timing covers all three."""
    import keras

    from medml_cli.models.keras.input_pipeline import class_weights
    from medml_cli.models.keras.networks import build_network

    ends: list[float] = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            ends.append(time.perf_counter())

    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = build_network(arch, x.shape[1:], filters=FILTERS, seed=0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auroc")],
    )
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        class_weight=class_weights(y),
        verbose=0,
        callbacks=[EpochClock()],
    )
    return {"fit": time.perf_counter() - start, "epoch": _steady(ends), "model": model}


def _medml_fit(arch: str, x: np.ndarray, y: np.ndarray, epochs: int) -> dict[str, Any]:
    from medml_cli.models.keras.estimator import ImageCnnClassifier

    ends: list[float] = []
    est = ImageCnnClassifier(
        architecture=arch,
        filters=FILTERS,
        epochs=epochs,
        batch_size=BATCH,
        patience=None,  # run every epoch, as the plain fit does
        intensity=("unit", 0.0, 1.0),
        epoch_callback=lambda epoch, logs: ends.append(time.perf_counter()),
    )
    start = time.perf_counter()
    est.fit(x, y)
    return {"fit": time.perf_counter() - start, "epoch": _steady(ends), "model": est}


def _timed_predict(fn: Any, repeats: int) -> float:
    fn()  # first call traces the predict function; steady state is what we compare
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _best(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {k: min(r[k] for r in runs) for k in ("fit", "epoch")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (steady state is measured from epoch 2)")

    import tensorflow as tf

    results: dict[str, dict[str, dict[str, float]]] = {}
    for arch, (n, shape) in CASES.items():  # plain Keras first: determinism still off
        x, y = _data(n, shape)
        runs = [_plain_fit(arch, x, y, args.epochs) for _ in range(args.repeats)]
        model = runs[-1]["model"]
        predict = _timed_predict(lambda m=model, x=x: m.predict(x, batch_size=BATCH, verbose=0), 5)
        results[arch] = {"plain": {**_best(runs), "predict": predict}}
    for arch, (n, shape) in CASES.items():
        x, y = _data(n, shape)
        runs, det_runs = [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
            runs.append(_medml_fit(arch, x, y, args.epochs))
            # medml switched op determinism on; plain Keras under the same condition
            det_runs.append(_plain_fit(arch, x, y, args.epochs))
        est = runs[-1]["model"]
        predict = _timed_predict(lambda e=est, x=x: e.predict_proba(x), 5)
        results[arch]["medml"] = {**_best(runs), "predict": predict}
        results[arch]["plain+det"] = _best(det_runs)

    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, batch {BATCH}, {args.epochs} "
        f"epochs, filters {FILTERS}, best of {args.repeats}"
    )
    print(f"{'case':<22}{'plain img/s':>12}{'medml img/s':>13}{'medml/plain':>13}")
    for arch, (n, _) in CASES.items():
        r = results[arch]
        counts = {"fit": n * args.epochs, "epoch": n, "predict": n}
        labels = {"fit": "fit (whole)", "epoch": "fit (per epoch)", "predict": "predict"}
        for what, count in counts.items():
            p, m = r["plain"][what], r["medml"][what]
            print(
                f"{arch + ' ' + labels[what]:<22}{count / p:>12.0f}{count / m:>13.0f}"
                f"{m / p:>12.2f}x"
            )
        for what in ("fit", "epoch"):
            p, m = r["plain+det"][what], r["medml"][what]
            print(
                f"{arch + ' ' + labels[what]:<22}{counts[what] / p:>12.0f}{'':>13}{m / p:>12.2f}x"
                "  (plain with op determinism on too)"
            )


if __name__ == "__main__":
    main()
