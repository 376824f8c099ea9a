"""report.md: a human-readable summary of a run, readable without opening code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.jsonio import write_text_atomic

SYNTHETIC_BANNER = (
    "> **SYNTHETIC DATA.** Every figure in this report comes from generated data, not from "
    "patients. It shows that the pipeline works, not how a model performs clinically."
)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if value == value else "n/a"
    return str(value)


def metric_table(metrics: dict[str, Any]) -> str:
    model, baseline = metrics["metrics"], metrics.get("baseline") or {}
    references = metrics.get("reference") or {}
    intervals = metrics.get("intervals") or {}
    header = ["metric", "model", "95% CI", "baseline", *references]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, value in model.items():
        ci = intervals.get(name)
        ci_text = f"{_fmt(ci[0])} – {_fmt(ci[1])}" if ci else "—"
        cells = [name, _fmt(value), ci_text, _fmt(baseline.get(name)),
                 *(_fmt(ref.get(name)) for ref in references.values())]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def tabular_data_lines(dataset: Any) -> list[str]:
    missing = dataset.X.isna().sum()
    missing = missing[missing > 0]
    return [
        f"- Target: `{dataset.schema.target}`",
        f"- Features ({len(dataset.schema.columns)}): "
        + ", ".join(f"{c.name} ({c.kind})" for c in dataset.schema.columns),
        "- Missing values: "
        + (", ".join(f"{c} {int(v)}" for c, v in missing.items()) if len(missing) else "none")
        + " — imputed inside each training fold (median for numeric, most frequent for "
        "categorical columns).",
    ]


def image_data_lines(dataset: Any) -> list[str]:
    positives = int(np.sum(dataset.labels == 1))
    patients = len(np.unique(dataset.groups)) if dataset.groups is not None else None
    mode, low, high = dataset.intensity
    return [
        f"- Images: {dataset.n_samples} ({positives} positive), input shape "
        f"{tuple(dataset.input_shape)}" + (f", {patients} patients" if patients else ""),
        f"- Intensity: {mode} clipped to [{low:g}, {high:g}] and scaled to [0, 1]",
        f"- Classes: {dataset.class_names[0]} (0) / {dataset.class_names[1]} (1)",
    ]


def write_run_report(run_path: Path, cfg: Any, provenance: Any, data_lines: list[str],
                     metrics: dict[str, Any]) -> None:
    n = metrics["n"]
    lines = [f"# medml run: {cfg.run_name}", ""]
    if provenance.synthetic:
        lines += [SYNTHETIC_BANNER, ""]
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in n.items())
    split = cfg.split
    if split.method == "kfold":
        split_text = f"kfold, {split.n_splits} folds"
    else:
        split_text = f"holdout, test share {split.test_size}"
    lines += [
        "## Data",
        f"- Source: {provenance.source}",
        f"- Licence: {provenance.licence}",
        *([f"- Citation: {provenance.citation}"] if provenance.citation else []),
        f"- Task: `{cfg.task}` ({metrics['problem']})",
        *data_lines,
        f"- Held-out rows scored: {counts}",
        "",
        "## Split and model",
        f"- Split: {split_text}"
        + (", stratified" if split.stratify and metrics["problem"] != "regression" else "")
        + f"; seed {cfg.seed}",
        f"- Model: `{cfg.model.type}` with "
        + ", ".join(f"{k}={v}" for k, v in cfg.model.model_dump().items() if k != "type"),
        *([f"- Decision threshold: {metrics['threshold']}"] if metrics.get("threshold") else []),
        "",
        "## Held-out metrics",
        "The baseline predicts the training "
        + ("prevalence" if metrics["problem"] != "regression" else "mean") + "."
        + (" References are simpler models fitted on the same split."
           if metrics.get("reference") else ""),
        "",
        metric_table(metrics),
        "",
    ]
    write_text_atomic(run_path / "report.md", "\n".join(lines) + "\n")
