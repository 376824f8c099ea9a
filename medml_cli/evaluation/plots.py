"""Evaluation figures as PNG files, drawn headless.

Every function selects the Agg backend itself (so importing this module never touches a
display), writes one PNG at ``path`` (creating parent folders), closes its figure and returns
the path. ``synthetic=True`` marks the title "SYNTHETIC DATA" so a figure made from simulated
patients cannot be mistaken for a real result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medml_cli.evaluation.bootstrap import as_threshold, bootstrap_intervals, resample_weights
from medml_cli.evaluation.calibration import calibration_slope_intercept, reliability_curve
from medml_cli.evaluation.decision_curve import decision_curve

_DPI = 120
_BAND = dict(alpha=0.2, linewidth=0)


def _pyplot():
    """pyplot with the non-interactive Agg backend (selected before pyplot is imported)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path, title: str, synthetic: bool) -> Path:
    if synthetic:
        title = f"SYNTHETIC DATA - {title}"
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=_DPI)
    finally:
        _pyplot().close(fig)
    return out


def _binary(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.clip(np.asarray(prob, dtype=float).ravel(), 0.0, 1.0)
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} entries but prob has {len(p)}")
    if len(np.unique(y)) != 2:
        raise ValueError("this figure needs both classes in y_true")
    return y, p


def _ci_text(name: str, value: float, ci: tuple[float, float]) -> str:
    return f"{name} {value:.3f} (CI {ci[0]:.3f}-{ci[1]:.3f})"


def _bootstrap_band(y: np.ndarray, p: np.ndarray, curve, *, n_boot: int, seed: int,
                    groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise 95% band of ``curve(y, p, weights) -> values on GRID`` over resamples."""
    grid = np.linspace(0.0, 1.0, 101)
    weights = resample_weights("binary-classification", y, groups=groups, n_resamples=n_boot,
                               seed=seed)
    # zero-weight rows are ignored by sklearn's curves: each weight row is one resample
    curves = np.asarray([curve(y, p, w, grid) for w in weights])
    low, high = np.percentile(curves, [2.5, 97.5], axis=0)
    return grid, low, high


def _roc_on_grid(y, p, w, grid):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p, sample_weight=w)
    values = np.interp(grid, fpr, tpr)
    values[0] = 0.0
    return values


def _precision_on_grid(y, p, w, grid):
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p, sample_weight=w)
    # Interpolated precision: the best precision at recall >= r (recall is descending).
    best = np.maximum.accumulate(precision)
    return np.interp(grid, recall[::-1], best[::-1])


def _metric_ci(metric: str, y, p, ci, *, n_boot: int, seed: int, groups) -> tuple[float, float]:
    """The run's own interval when given (so plots and metrics.json agree), else a fresh one."""
    if ci is not None:
        return tuple(ci)
    return bootstrap_intervals("binary-classification", y, p, groups=groups,
                               n_resamples=n_boot, seed=seed)[metric]


def plot_roc(y_true, prob, path, *, n_boot: int = 200, seed: int = 0, groups=None,
             synthetic: bool = False, ci: tuple[float, float] | None = None) -> Path:
    """ROC curve with a bootstrap 95% band (TPR vertically averaged on a fixed FPR grid).

    ``ci`` is the AUROC interval to print (the run's own); without it one is computed."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y, p = _binary(y_true, prob)
    grid, low, high = _bootstrap_band(y, p, _roc_on_grid, n_boot=n_boot, seed=seed,
                                      groups=groups)
    ci = _metric_ci("auroc", y, p, ci, n_boot=n_boot, seed=seed, groups=groups)
    fpr, tpr, _ = roc_curve(y, p)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.fill_between(grid, low, high, color="C0", label="95% bootstrap band", **_BAND)
    ax.plot(fpr, tpr, color="C0", label=_ci_text("AUROC", roc_auc_score(y, p), ci))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="1 - specificity (false-positive rate)",
           ylabel="sensitivity (true-positive rate)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return _finish(fig, path, f"ROC curve (n={len(y)}, events={int(y.sum())})", synthetic)


def plot_precision_recall(y_true, prob, path, *, n_boot: int = 200, seed: int = 0, groups=None,
                          synthetic: bool = False, ci: tuple[float, float] | None = None
                          ) -> Path:
    """Precision-recall curve with a bootstrap 95% band and AUPRC (average precision) CI."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, p = _binary(y_true, prob)
    grid, low, high = _bootstrap_band(y, p, _precision_on_grid, n_boot=n_boot, seed=seed,
                                      groups=groups)
    ci = _metric_ci("auprc", y, p, ci, n_boot=n_boot, seed=seed, groups=groups)
    precision, recall, _ = precision_recall_curve(y, p)
    prevalence = float(y.mean())

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.fill_between(grid, low, high, color="C1", label="95% bootstrap band", step=None, **_BAND)
    ax.step(recall, precision, where="post", color="C1",
            label=_ci_text("AUPRC", average_precision_score(y, p), ci))
    ax.axhline(prevalence, linestyle="--", color="grey", label=f"prevalence {prevalence:.3f}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right", fontsize="small")
    return _finish(fig, path, f"Precision-recall (n={len(y)}, events={int(y.sum())})", synthetic)


def plot_calibration(y_true, prob, path, *, n_bins: int = 10, synthetic: bool = False) -> Path:
    """Reliability diagram (quantile bins) over a histogram of the predicted probabilities."""
    y, p = _binary(y_true, prob)
    curve = reliability_curve(y, p, n_bins=n_bins, strategy="quantile")
    slope, intercept = calibration_slope_intercept(y, p)
    # a NaN slope means no estimate exists (see slope_problem), not a number to print
    slope_text = f"slope {slope:.2f}" if np.isfinite(slope) else "slope undefined"

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 7), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(curve["prob_pred"], curve["prob_true"], marker="o", color="C0",
            label=f"model: {slope_text}, intercept (in-the-large) {intercept:.2f}")
    ax.set(ylabel="observed event rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small")
    hist.hist(p[y == 0], bins=20, range=(0, 1), alpha=0.6, label="negatives")
    hist.hist(p[y == 1], bins=20, range=(0, 1), alpha=0.6, label="positives")
    hist.set(xlabel=f"predicted probability ({n_bins} quantile bins above)", ylabel="count")
    hist.legend(fontsize="small")
    return _finish(fig, path, "Calibration", synthetic)


def plot_confusion_matrix(y_true, prob, threshold: float | np.ndarray, path,
                          labels: Sequence[str] = ("negative", "positive"), *,
                          synthetic: bool = False) -> Path:
    """2x2 confusion matrix: counts and row percentages at ``prob >= threshold``.

    ``threshold`` may be one per row (each held-out row at its own fold's threshold, as in
    the pooled metrics); the title then gives their range."""
    y = np.asarray(y_true).astype(int).ravel()
    cut = as_threshold(threshold, len(y))
    pred = (np.clip(np.asarray(prob, dtype=float).ravel(), 0, 1) >= cut).astype(int)
    counts = np.array([[np.sum((y == t) & (pred == q)) for q in (0, 1)] for t in (0, 1)])
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{counts[i, j]}\n{100 * share[i, j]:.1f}%", ha="center",
                    va="center", color="white" if share[i, j] > 0.6 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=[f"predicted {lab}" for lab in labels],
           yticklabels=[f"true {lab}" for lab in labels])
    if np.ndim(cut) == 0 or np.ptp(cut) == 0:
        at = f"threshold {float(np.max(cut)):.3g}"
    else:
        at = f"per-fold thresholds {np.min(cut):.3g}-{np.max(cut):.3g}"
    return _finish(fig, path, f"Confusion matrix at {at} (row %)", synthetic)


def plot_decision_curve(y_true, prob, path, *, thresholds=None,
                        synthetic: bool = False) -> Path:
    """Net benefit of the model, treat-all and treat-none across threshold probabilities."""
    y, p = _binary(y_true, prob)
    curve = decision_curve(y, p, thresholds)
    prevalence = float(y.mean())

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(curve["threshold"], curve["model"], color="C0", label="model")
    ax.plot(curve["threshold"], curve["treat_all"], color="C3", label="treat all")
    ax.plot(curve["threshold"], curve["treat_none"], color="black", label="treat none")
    # Treat-all dives towards -inf as pt -> 1; keep the informative range in view.
    top = max(prevalence, float(np.nanmax(curve["model"]))) * 1.1 + 0.01
    ax.set(xlabel="threshold probability", ylabel="net benefit", ylim=(-0.2 * top, top),
           xlim=(float(curve["threshold"].min()), float(curve["threshold"].max())))
    ax.legend(fontsize="small")
    return _finish(fig, path, "Decision curve", synthetic)


def plot_predicted_vs_observed(y_true, pred, path, *, synthetic: bool = False) -> Path:
    """Regression: predicted against observed with the identity line."""
    from sklearn.metrics import mean_squared_error, r2_score

    y = np.asarray(y_true, dtype=float).ravel()
    q = np.asarray(pred, dtype=float).ravel()
    lo, hi = float(min(y.min(), q.min())), float(max(y.max(), q.max()))

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(y, q, s=12, alpha=0.6,
               label=f"R2 {r2_score(y, q):.3f}, RMSE {np.sqrt(mean_squared_error(y, q)):.3g}")
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", label="identity")
    ax.set(xlabel="observed", ylabel="predicted")
    ax.legend(fontsize="small")
    return _finish(fig, path, f"Predicted vs observed (n={len(y)})", synthetic)


def plot_residuals(y_true, pred, path, *, synthetic: bool = False) -> Path:
    """Regression: residual (observed - predicted) against predicted, with the zero line."""
    y = np.asarray(y_true, dtype=float).ravel()
    q = np.asarray(pred, dtype=float).ravel()

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(q, y - q, s=12, alpha=0.6)
    ax.axhline(0.0, linestyle="--", color="grey")
    ax.set(xlabel="predicted", ylabel="residual (observed - predicted)")
    return _finish(fig, path, f"Residuals (n={len(y)})", synthetic)


def plot_permutation_importance(names: Sequence[str], means, stds, path, *,
                                xlabel: str = "drop in score when shuffled",
                                synthetic: bool = False) -> Path:
    """Horizontal bars (most important on top) with +-1 SD error bars."""
    means = np.asarray(means, dtype=float)
    stds = np.asarray(stds, dtype=float)
    order = np.argsort(means, kind="stable")  # ascending: barh draws bottom-up

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.35 * len(means) + 1.2)))
    ax.barh(np.arange(len(means)), means[order], xerr=stds[order], color="C0", capsize=3)
    ax.set_yticks(np.arange(len(means)), [str(names[i]) for i in order])
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set(xlabel=xlabel)
    return _finish(fig, path, "Permutation importance (held-out data)", synthetic)


def plot_partial_dependence(estimator, X: pd.DataFrame, features: Sequence[str], path, *,
                            grid_resolution: int = 50, synthetic: bool = False,
                            target: int | None = None, target_label: str = "") -> Path:
    """Partial dependence of the fitted ``estimator`` on each of ``features`` (columns of X);
    for a multi-class model, of the probability of class code ``target``."""
    plt = _pyplot()
    from sklearn.inspection import PartialDependenceDisplay

    features = list(features)
    # Non-numeric columns must be declared categorical or the grid cannot be built.
    categorical = [f for f in features if not pd.api.types.is_numeric_dtype(X[f])]
    ncols = min(3, len(features))
    nrows = int(np.ceil(len(features) / ncols))
    fig, ax = plt.subplots(figsize=(4 * ncols, 3.5 * nrows))
    PartialDependenceDisplay.from_estimator(
        estimator, X, features, categorical_features=categorical or None,
        grid_resolution=grid_resolution, ax=ax, n_cols=ncols, target=target)
    title = "Partial dependence" + (f" (probability of class {target_label})"
                                    if target is not None else "")
    return _finish(fig, path, title, synthetic)
