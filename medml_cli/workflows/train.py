"""``medml train``: config -> task -> data -> split -> fit -> evaluate -> run directory.

Written once for every problem type and data kind: the problem type (``medml_cli.problems``)
owns metrics, scores, plots and prediction columns; the data kind (``train_tabular``,
``train_image``) owns the split, the fitting and the saved model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medml_cli.config.loader import config_to_yaml
from medml_cli.data.base import LoadedDataset
from medml_cli.problems import dataset_classes, problem_of
from medml_cli.registry import DATASETS, TASKS
from medml_cli.runs.directory import create_run_dir
from medml_cli.runs.environment import EnvironmentCapture
from medml_cli.workflows.heldout import record_head
from medml_cli.workflows.kind import ProgressFn, TrainingKind
from medml_cli.workflows.run_results import write_run_results
from medml_cli.workflows.train_image import ImageTraining
from medml_cli.workflows.train_tabular import (  # noqa: F401 - importable from here, as before
    TabularTraining,
    build_estimator,
    data_source_name,
    fit_fold,
    subgroup_frame,
)

#: The data kinds a task can name (``TaskSpec.data_kind``).
TRAINING_KINDS: dict[str, type[TrainingKind]] = {"tabular": TabularTraining,
                                                 "image": ImageTraining}


@dataclass
class RunResult:
    """What train returns: the run folder and its metrics."""

    path: Path
    metrics: dict[str, Any]


def load_dataset(cfg: Any) -> LoadedDataset:
    """Load the config's data for its task (raises DataError on bad data)."""
    spec = TASKS.get(cfg.task)
    if cfg.split.method != "leave-group-out":
        return DATASETS.create(cfg.data.type, cfg.data, problem=spec.problem)
    # the held-out group is never a feature: a source that can keep a column per row reads
    # it so (your own table's `hospital`); a feature of a built-in source is set aside
    if DATASETS.entry(cfg.data.type).extra.get("keep_columns"):
        return DATASETS.create(cfg.data.type, cfg.data, problem=spec.problem,
                               keep_columns=(cfg.split.by,))
    dataset = DATASETS.create(cfg.data.type, cfg.data, problem=spec.problem)
    return dataset.set_aside(cfg.split.by) if hasattr(dataset, "set_aside") else dataset


def run_experiment(
    cfg: Any,
    *,
    runs_dir: Path,
    name: str | None = None,
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    progress: ProgressFn | None = None,
    resume: Path | None = None,
) -> RunResult:
    """Train and evaluate one experiment; returns the completed run's path and metrics.

    Data and split problems raise before any run directory exists; a failure while fitting
    leaves a run marked failed. ``resume`` continues an interrupted image run in place.
    """
    with EnvironmentCapture(config_path) as capture:  # git checks run while data load
        dataset = load_dataset(cfg)
        problem = problem_of(cfg.task, dataset).for_run(cfg, dataset)
        kind = TRAINING_KINDS[TASKS.get(cfg.task).data_kind]()
        plan = kind.plan(cfg, dataset, problem, resume=resume is not None)
        environment = capture.record(dataset.provenance.files)
    synthetic = dataset.provenance.synthetic

    with create_run_dir(runs_dir, name or cfg.run_name, config_to_yaml(cfg),
                        existing=resume) as run:
        started = time.perf_counter()
        if resume is None:
            run.write_json("environment.json", environment)
            if overrides:
                run.write_text("overrides.txt", "\n".join(overrides) + "\n")
        run.log(kind.describe(cfg, dataset, problem, plan))
        if synthetic:
            run.log("NOTE: these data are SYNTHETIC (generated, not patients)")
        for note in dataset.notes:  # e.g. label spellings merged, converted images
            run.log(f"data note: {note}")
        if not problem.uses_threshold and problem.classifies \
                and cfg.evaluation.threshold_method != "fixed":
            run.log(f"warning: evaluation.threshold_method {cfg.evaluation.threshold_method} "
                    f"is ignored: the data have {len(dataset_classes(dataset))} classes, so "
                    "each patient is assigned the most probable class")

        held = kind.fit(cfg, dataset, problem, plan, run, progress=progress,
                        resume=resume is not None)
        metrics = {**record_head(cfg, problem, synthetic=synthetic), **held.summary}
        metrics.update(problem.assess(
            held.truth, held.scores, threshold=held.threshold, ev=cfg.evaluation,
            seed=cfg.seed, classes=dataset_classes(dataset), groups=held.groups,
            subgroup_frame=held.subgroup_frame, out_dir=run.path, synthetic=synthetic))
        if cfg.split.method == "leave-group-out":
            from medml_cli.workflows.internal_external import internal_external

            metrics["internal_external"] = block = internal_external(
                problem, truth=held.truth, scores=held.scores, threshold=held.threshold,
                by_values=held.predictions[cfg.split.by].to_numpy(), by=cfg.split.by,
                ev=cfg.evaluation, seed=cfg.seed, classes=dataset_classes(dataset),
                patients=held.groups, out_dir=run.path, synthetic=synthetic)
            for warning in block["warnings"]:
                run.log(f"warning: {warning}")
        if (metrics.get("calibration") or {}).get("warning"):
            run.log(f"warning: {metrics['calibration']['warning']}")
        kind.finish(cfg, dataset, problem, held, run, metrics)
        write_run_results(run, cfg=cfg, provenance=dataset.provenance,
                          data_lines=kind.data_lines(dataset), metrics=metrics,
                          predictions=held.predictions, started=started)
    return RunResult(path=run.path, metrics=metrics)
