"""Multi-class evaluation figures as PNG files, drawn headless (one-vs-rest per class).

Same conventions as :mod:`medml_cli.evaluation.plots`: the Agg backend, one PNG at ``path``
(parent folders created), the figure closed, the path returned, and ``synthetic=True`` marks
the title "SYNTHETIC DATA". ``y`` holds class codes ``0 .. k-1``, ``proba`` is ``(n, k)`` and
``classes`` the ``k`` labels in code order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medml_cli.evaluation.calibration import reliability_curve
from medml_cli.evaluation.multiclass import (
    _check_classes,
    _check_multiclass,
    confusion_counts,
    multiclass_metrics,
    per_class_metrics,
)
from medml_cli.evaluation.plots import _finish, _pyplot


def _inputs(y, proba, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    codes, p = _check_multiclass(y, proba)
    return codes, p, _check_classes(classes, p.shape[1])


def _absent(label: str) -> str:
    return f"{label}: not in y (skipped)"


def plot_multiclass_roc(y, proba, classes, path, *, synthetic: bool = False) -> Path:
    """One-vs-rest ROC curve per class, its AUROC in the legend, and the chance line."""
    from sklearn.metrics import roc_curve

    codes, p, labels = _inputs(y, proba, classes)
    per_class = per_class_metrics(codes, p, labels)
    macro = multiclass_metrics(codes, p)["macro_auroc"]

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    for c, label in enumerate(labels):
        stats = per_class[label]
        if stats["n"] == 0 or not np.isfinite(stats["auroc"]):
            # absent, or the only class in y (no negatives): no curve to draw
            text = _absent(label) if stats["n"] == 0 else f"{label}: AUROC undefined"
            ax.plot([], [], color=f"C{c}", label=text)
            continue
        fpr, tpr, _ = roc_curve(codes == c, p[:, c])
        ax.plot(fpr, tpr, color=f"C{c}",
                label=f"{label}: AUROC {stats['auroc']:.3f} (n={stats['n']})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="1 - specificity (false-positive rate)",
           ylabel="sensitivity (true-positive rate)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return _finish(fig, path, f"One-vs-rest ROC (n={len(codes)}, macro AUROC {macro:.3f})",
                   synthetic)


def plot_multiclass_calibration(y, proba, classes, path, *, n_bins: int = 10,
                                synthetic: bool = False) -> Path:
    """One-vs-rest reliability curve (quantile bins) per class, with the perfect line."""
    codes, p, labels = _inputs(y, proba, classes)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for c, label in enumerate(labels):
        if not np.any(codes == c):
            ax.plot([], [], color=f"C{c}", label=_absent(label))
            continue
        curve = reliability_curve((codes == c).astype(int), p[:, c], n_bins=n_bins,
                                  strategy="quantile")
        ax.plot(curve["prob_pred"], curve["prob_true"], marker="o", color=f"C{c}",
                label=f"{label} (n={int(np.sum(codes == c))})")
    ax.set(xlabel=f"predicted probability of the class ({n_bins} quantile bins)",
           ylabel="observed rate of the class", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small")
    return _finish(fig, path, "One-vs-rest calibration", synthetic)


def plot_multiclass_confusion(y, proba, classes, path, *, synthetic: bool = False) -> Path:
    """k x k confusion matrix of argmax predictions: counts and row percentages annotated."""
    codes, p, labels = _inputs(y, proba, classes)
    k = len(labels)
    counts = confusion_counts(codes, p, k)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)

    plt = _pyplot()
    size = max(4.5, 0.9 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]}\n{100 * share[i, j]:.1f}%", ha="center",
                    va="center", fontsize="small",
                    color="white" if share[i, j] > 0.6 else "black")
    ticks = np.arange(k)
    ax.set_xticks(ticks, labels, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center")
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted class (argmax)", ylabel="true class")
    accuracy = float(np.trace(counts) / counts.sum())
    return _finish(fig, path, f"Confusion matrix (row %, accuracy {accuracy:.3f})", synthetic)
