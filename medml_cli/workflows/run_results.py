"""The records that close every run that trains a model (``medml train``, ``medml evaluate
--update``), written in one order: a run that fails part-way has no card that looks
complete."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from medml_cli.csvio import write_csv
from medml_cli.evaluation.report import write_reports
from medml_cli.runs.directory import RunDir
from medml_cli.runs.model_card import write_model_card


def write_run_results(run: RunDir, *, cfg: Any, provenance: Any, data_lines: list[str],
                      metrics: dict[str, Any], predictions: pd.DataFrame, started: float,
                      title: str | None = None) -> None:
    """The run's time, predictions.csv, metrics.json, the report, the model card (last)
    and the metrics line of the log. ``started`` is the ``time.perf_counter()`` at which
    the run's work began; ``title`` replaces the report's default heading."""
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    write_csv(predictions, run.file("predictions.csv"))
    run.write_json("metrics.json", metrics)
    write_reports(run.path, cfg, provenance, data_lines, metrics, title=title)
    # last: a run that fails before here has no card.md that looks complete
    write_model_card(run.path, cfg=cfg, provenance=provenance, data_lines=data_lines)
    run.log("metrics: " + ", ".join(f"{m}={v:.4f}" for m, v in metrics["metrics"].items()
                                     if isinstance(v, float)))
