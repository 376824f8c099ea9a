"""Does the CNN learn k classes that a pixel-wise logistic regression cannot?

Writes (seeded, in a temporary folder; nothing is downloaded) a 4-class 28x28 grayscale
MedMNIST-layout ``.npz`` whose classes differ by shape (blob, ring, bar, cross at random
positions, sizes, angles and contrast, with noise; see ``tests/imaging/shapes.py``), loads it
through the ``medmnist-npz`` reader, trains the ``cnn2d`` model (built by ``MODELS.create``
as the workflow does) on train with early stopping on val, and a standardised logistic
regression on the raw pixels on the same train split; prints the macro one-vs-rest test
AUROC (``roc_auc_score(multi_class="ovr")``) and the time of each.

    PYTHONPATH=. python benchmarks/multiclass_cnn.py [--n-per-class 400] [--epochs 10]

Target: pixel logistic regression near 0.8, CNN >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.imaging.shapes import SHAPE_CLASSES, make_shapes_npz  # noqa: E402

__all__ = ["make_shapes_npz", "main"]


def _cnn(epochs: int, seed: int):
    from medml_cli.models import cnn  # noqa: F401 - registers the CNN models
    from medml_cli.registry import MODELS

    config = MODELS.entry("cnn2d").config(
        type="cnn2d", filters=[16, 32, 64], dense_units=64, dropout=0.3, epochs=epochs,
        batch_size=32, learning_rate=2e-3, patience=3)
    return MODELS.create("cnn2d", config, problem="binary-classification",
                         schema=("uint8", 0.0, 255.0), seed=seed)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark; returns the figures it printed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from medml_cli.data.formats.npz import load_medmnist_npz_with_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = make_shapes_npz(Path(tmp) / "shapes4.npz", args.n_per_class, seed=args.seed)
        parts, names = load_medmnist_npz_with_names(path)
        medml = _medml_train(path, Path(tmp) / "runs", args.epochs, args.seed)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (parts[s] for s in ("train", "val", "test"))
    print(f"shapes set: {len(SHAPE_CLASSES)} classes {', '.join(SHAPE_CLASSES)} (codes "
          f"{', '.join(names)}); train {len(y_tr)}, val {len(y_va)}, test {len(y_te)} "
          f"images of {x_tr.shape[1]}x{x_tr.shape[2]}")

    started = time.perf_counter()
    est = _cnn(args.epochs, args.seed).fit(x_tr, y_tr, X_val=x_va, y_val=y_va)
    p_cnn = est.predict_proba(x_te)
    cnn_time = time.perf_counter() - started
    cnn_auc = roc_auc_score(y_te, p_cnn, multi_class="ovr")

    started = time.perf_counter()
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=2000,
                                                            random_state=args.seed))
    lr.fit(x_tr.reshape(len(x_tr), -1) / 255.0, y_tr)
    p_lr = lr.predict_proba(x_te.reshape(len(x_te), -1) / 255.0)
    lr_time = time.perf_counter() - started
    lr_auc = roc_auc_score(y_te, p_lr, multi_class="ovr")

    epochs_run = len(est.history_["loss"])
    print(f"cnn2d (Dense({est.n_classes_}, softmax)): macro OvR test AUROC {cnn_auc:.4f}, "
          f"accuracy {np.mean(est.predict(x_te) == y_te):.3f}, {cnn_time:.1f} s "
          f"({epochs_run} epochs, best epoch {est.best_epoch_ + 1}, best val_auroc "
          f"{max(est.history_['val_auroc']):.4f})")
    lr_accuracy = np.mean(lr.predict(x_te.reshape(len(x_te), -1) / 255.0) == y_te)
    print(f"pixel logistic regression (standardised, C=0.001): macro OvR test AUROC "
          f"{lr_auc:.4f}, accuracy {lr_accuracy:.3f}, {lr_time:.1f} s")
    print(f"medml train (image-classification, cnn2d, file splits): test macro_auroc "
          f"{medml['macro_auroc']:.4f} (95% CI {medml['ci'][0]:.3f}-{medml['ci'][1]:.3f}), "
          f"accuracy {medml['accuracy']:.3f}; its voxel logistic-regression reference "
          f"{medml['reference']:.4f}; {medml['seconds']:.1f} s")
    return {"cnn_auroc": cnn_auc, "cnn_seconds": cnn_time, "lr_auroc": lr_auc,
            "lr_seconds": lr_time, "medml_auroc": medml["macro_auroc"],
            "medml_reference_auroc": medml["reference"]}


def _medml_train(npz: Path, runs: Path, epochs: int, seed: int) -> dict:
    """The same file through ``medml train`` (the whole workflow: split, CNN, evaluation,
    the voxel logistic-regression reference, report)."""
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import run_experiment

    cfg = validate_config_data({
        "name": "shapes4", "seed": seed, "task": "image-classification",
        "data": {"type": "medmnist-npz", "path": str(npz), "use_file_splits": True},
        "split": {"method": "holdout"},
        "model": {"type": "cnn2d", "filters": [16, 32, 64], "dense_units": 64,
                  "dropout": 0.3, "epochs": epochs, "batch_size": 32, "learning_rate": 2e-3,
                  "patience": 3},
        "evaluation": {"voxel_logistic_baseline": True},
    }, source="benchmark")
    started = time.perf_counter()
    metrics = run_experiment(cfg, runs_dir=runs).metrics
    return {"macro_auroc": metrics["metrics"]["macro_auroc"],
            "ci": metrics["intervals"]["macro_auroc"],
            "accuracy": metrics["metrics"]["accuracy"],
            "reference": metrics["reference"]["voxel-logistic-regression"]["macro_auroc"],
            "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    main()
