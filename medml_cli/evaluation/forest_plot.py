"""Forest plot: one measure per held-out group with its CI, the random-effects pooled
estimate as a diamond and the prediction interval for a new group as a bar under it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.evaluation.plots import _finish, _pyplot


def plot_forest(panels: list[dict[str, Any]], path: Path | str, *, by: str,
                synthetic: bool = False) -> Path:
    """One panel per measure. Each panel: ``name``, ``rows`` (``label``, ``estimate``,
    ``low``, ``high``), ``pooled`` (a :class:`PooledEstimate` as a dict, or None) and
    ``reference`` (the value of no miscalibration or chance, drawn dashed)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.45 *
                                                         (len(panels[0]["rows"]) + 4) + 1.2),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        rows = panel["rows"]
        n = len(rows)
        ys = np.arange(n, 0, -1) + 1.5  # groups top-down, the pooled rows below them
        for y, row in zip(ys, rows, strict=True):
            if np.isfinite(row["estimate"]):
                ax.plot([row["low"], row["high"]], [y, y], color="black", linewidth=1)
                ax.plot(row["estimate"], y, "s", color="black", markersize=5)
        labels = [str(r["label"]) for r in rows]
        ticks = list(ys)
        pooled = panel.get("pooled")
        if pooled:
            est, low, high = pooled["estimate"], pooled["low"], pooled["high"]
            ax.fill([low, est, high, est], [1, 1.25, 1, 0.75], color="tab:blue")
            ticks.append(1.0)
            labels.append(f"pooled ({pooled['method'].upper()})")
            if pooled.get("prediction_low") is not None:
                ax.plot([pooled["prediction_low"], pooled["prediction_high"]], [0.3, 0.3],
                        color="tab:red", linewidth=3)
                ticks.append(0.3)
                labels.append("prediction interval (new group)")
            ax.set_xlabel(f"{panel['name']}  (I² {pooled['i2']:.0%}, τ² {pooled['tau2']:.3g})")
        else:
            ax.set_xlabel(panel["name"])
        if panel.get("reference") is not None:
            ax.axvline(panel["reference"], color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels)
        ax.set_ylim(0, n + 2.5)
    return _finish(fig, path, f"Held out by {by}: per group and pooled", synthetic)
