"""report.md: a human-readable summary of a run, readable without opening code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medml_cli.data.base import LoadedDataset
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
    intervals = metrics.get("intervals") or {}
    rows = ["| metric | model | 95% CI | baseline |", "|---|---|---|---|"]
    for name, value in model.items():
        ci = intervals.get(name)
        ci_text = f"{_fmt(ci[0])} – {_fmt(ci[1])}" if ci else "—"
        rows.append(f"| {name} | {_fmt(value)} | {ci_text} | {_fmt(baseline.get(name))} |")
    return "\n".join(rows)


def write_run_report(run_path: Path, cfg: Any, dataset: LoadedDataset,
                     metrics: dict[str, Any]) -> None:
    prov = dataset.provenance
    n = metrics["n"]
    lines = [f"# medml run: {cfg.run_name}", ""]
    if prov.synthetic:
        lines += [SYNTHETIC_BANNER, ""]
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in n.items())
    missing = dataset.X.isna().sum()
    missing = missing[missing > 0]
    lines += [
        "## Data",
        f"- Source: {prov.source}",
        f"- Licence: {prov.licence}",
        *([f"- Citation: {prov.citation}"] if prov.citation else []),
        f"- Task: `{cfg.task}` ({metrics['problem']}); target `{dataset.schema.target}`",
        f"- Rows used: {counts}",
        f"- Features ({len(dataset.schema.columns)}): "
        + ", ".join(f"{c.name} ({c.kind})" for c in dataset.schema.columns),
        "- Missing values: "
        + (", ".join(f"{c} {int(v)}" for c, v in missing.items()) if len(missing) else "none")
        + " — imputed inside each training fold (median for numeric, most frequent for "
        "categorical columns).",
        "",
        "## Split and model",
        f"- Split: {cfg.split.method}"
        + (f", {cfg.split.n_splits} folds" if cfg.split.method == "kfold"
           else f", test share {cfg.split.test_size}")
        + (", stratified" if cfg.split.stratify and metrics["problem"] != "regression" else "")
        + (f", grouped by `{dataset.schema.group_column}`" if dataset.schema.group_column else "")
        + f"; seed {cfg.seed}",
        f"- Model: `{cfg.model.type}` with "
        + ", ".join(f"{k}={v}" for k, v in cfg.model.model_dump().items() if k != "type"),
        *([f"- Decision threshold: {metrics['threshold']}"] if metrics.get("threshold") else []),
        "",
        "## Held-out metrics",
        "Pooled over every held-out prediction; the baseline predicts the training "
        + ("prevalence" if metrics["problem"] != "regression" else "mean") + ".",
        "",
        metric_table(metrics),
        "",
    ]
    write_text_atomic(run_path / "report.md", "\n".join(lines) + "\n")
