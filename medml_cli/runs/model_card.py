"""model/card.md: a model card for every run, after Mitchell et al. 2019.

The card is what a clinical safety officer reads instead of metrics.json: what the model is
for and not for, what it was trained and evaluated on, its figures with their intervals
(overall, per class, per subgroup, per held-out site), calibration, the threshold and how it
was chosen, caveats medml can see for itself, and provenance. Its data
(:class:`~medml_cli.runs.records.ModelCardReport`) is built from the run's own records
(config.yaml, metrics.json, environment.json, model/card.json) and stored in card.json's
``reporting`` block; card.md is rendered from it with the report's own section renderer, so
every figure is formatted as in report.md. Both files go through the model folder's manifest.

Runs written before medml wrote card.md get their card rendered on the fly from the same
records (:func:`read_model_card`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from medml_cli.config.yaml_io import load_written_yaml
from medml_cli.data.formats.paths import sha256_file
from medml_cli.errors import ConfigError, RunNotUsableError
from medml_cli.evaluation.report import (
    SYNTHETIC_BANNER,
    Section,
    _fmt,
    build_sections,
    metric_rows,
    missing_handling_text,
    render_markdown,
)
from medml_cli.jsonio import RUN_FIX, _clean
from medml_cli.runs.records import (
    CARD,
    ModelCardReport,
    read_card,
    read_environment,
    read_metrics,
    read_status,
    write_card,
)
from medml_cli.schemas import Provenance

CARD_MD = "card.md"
CITATION = ("Mitchell M, Wu S, Zaldivar A, Barnes P, Vasserman L, Hutchinson B, Spitzer E, "
            "Raji ID, Gebru T. Model Cards for Model Reporting. FAT* '19: 220-229. "
            "doi:10.1145/3287560.3287596")
#: Fewer held-out samples than this, and the card says the intervals are wide.
SMALL_EVALUATION = 100

DEFAULT_USERS = ("Researchers and data scientists developing and comparing prediction models "
                 "on retrospective data, and the clinical safety officers reviewing them.")
DEFAULT_OUT_OF_SCOPE = [
    "Diagnosis, triage or treatment decisions for individual patients: the model has not "
    "been validated prospectively or approved as a medical device.",
    "Patients, sites, devices or periods unlike the training data, until it has been "
    "evaluated there (`medml evaluate RUN --data ...`).",
    "Use with a different threshold, different features or a different coding of them than "
    "this card and model/schema.json record.",
]


# --------------------------------------------------------------------------- reading a run
def _run_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    try:
        data = load_written_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunNotUsableError(f"{path} cannot be read as the run's config "
                                f"({type(exc).__name__}). Fix: {RUN_FIX}.") from None
    if not isinstance(data, dict):
        raise RunNotUsableError(f"{path} is not a mapping of settings. Fix: {RUN_FIX}.")
    return data


def _validated_config(config: dict[str, Any]) -> Any:
    """The run's config as the typed object the report's helpers take, or None when this
    medml no longer accepts it (a run from an older version, a plug-in since removed)."""
    from medml_cli.config.loader import validate_config_data

    try:
        return validate_config_data(config)
    except ConfigError:
        return None


def _section(sections: list[Section], title: str) -> Section | None:
    return next((s for s in sections if s.title == title), None)


def _group_values(row: dict[str, Any], skip: tuple[str, ...]) -> dict[str, float | None]:
    """The figures of one subgroup or site row: numbers only, standard errors left out."""
    return {k: (None if v != v else float(v)) for k, v in row.items()
            if k not in skip and not k.endswith("_se") and isinstance(v, (int, float))
            and not isinstance(v, bool)}


def _task_summary(task: str) -> str | None:
    from medml_cli.plugins import load_plugins
    from medml_cli.registry import TASKS

    load_plugins()
    return TASKS.get(task).summary if task in TASKS else None


# --------------------------------------------------------------------------- the sections
def _intended_use(card_cfg: dict[str, Any], summary: str | None,
                  synthetic: bool) -> dict[str, Any]:
    what = summary or "the task this run was configured for"
    default_use = (f"Research use: {what}, in retrospective studies (developing, comparing "
                   "and reporting models). Not validated for clinical decisions.")
    out_of_scope = card_cfg.get("out_of_scope")
    if out_of_scope is None:
        out_of_scope = list(DEFAULT_OUT_OF_SCOPE)
        if synthetic:
            out_of_scope.insert(0, "Any use on real patients: the model was trained and "
                                   "evaluated on SYNTHETIC data.")
    given = any(card_cfg.get(k) is not None for k in ("intended_use", "intended_users",
                                                     "out_of_scope"))
    return {"intended_use": card_cfg.get("intended_use") or default_use,
            "intended_users": card_cfg.get("intended_users") or DEFAULT_USERS,
            "out_of_scope": out_of_scope, "source": "config" if given else "default"}


def _metrics_part(metrics: dict[str, Any]) -> dict[str, Any]:
    intervals = metrics.get("intervals") or {}
    part: dict[str, Any] = {
        "primary_metric": metrics.get("primary_metric"),
        "confidence": metrics.get("confidence"),
        "bootstrap_resamples": metrics.get("bootstrap_resamples"),
        "n": metrics.get("n") or {},
        "values": [{"name": name, "value": value,
                    "low": (intervals.get(name) or [None, None])[0],
                    "high": (intervals.get(name) or [None, None])[1]}
                   for name, value in metrics["metrics"].items()],
        "baseline": metrics.get("baseline") or {},
        "references": metrics.get("reference") or {},
        "per_class": [{"label": str(name), "n": scores.get("n"),
                       "values": _group_values(scores, ("n",))}
                      for name, scores in (metrics.get("per_class") or {}).items()],
        "subgroups": [{"label": str(row.get("subgroup")), "variable": str(row.get("variable")),
                       "n": row.get("n"), "events": row.get("events"),
                       "values": _group_values(row, ("n", "events")),
                       "warning": row.get("warning") or None}
                      for row in metrics.get("subgroups") or []],
    }
    block = metrics.get("internal_external")
    if block:
        part["sites"] = [{"label": str(row["group"]), "variable": block["by"],
                          "n": row.get("samples"), "events": row.get("events"),
                          "values": _group_values(row, ("samples", "events", "non_events")),
                          "warning": row.get("warning") or None} for row in block["groups"]]
        part["pooled"] = [{"name": name, **{k: pooled.get(k) for k in (
            "estimate", "low", "high", "prediction_low", "prediction_high", "i2")}}
            for name, pooled in (block.get("pooled") or {}).items()
            if pooled]  # a measure left unpooled (no bootstrap standard errors) is None
    survival = metrics.get("survival") or {}
    if survival:
        part.update(horizons=survival.get("horizons") or [],
                    horizons_source=survival.get("horizons_source"),
                    time_unit=survival.get("time_unit"))
    tuning = metrics.get("tuning")
    if tuning:
        image = tuning.get("scheme") == "validation-images"
        part.update(tuning_metric=tuning.get("metric"),
                    tuning_scheme="validation-images" if image else "nested-cv",
                    tuning_mean_optimism=tuning.get("optimism" if image
                                                    else "mean_optimism"))
    return part


def _training_part(config: dict[str, Any], metrics: dict[str, Any], card: dict[str, Any],
                   provenance: Provenance | None,
                   data_lines: list[str] | None) -> dict[str, Any]:
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    split = (metrics.get("split") or {}).get("method") or (config.get("split") or {}).get(
        "method")
    n = metrics.get("n") or {}
    # k-fold and leave-group-out score every row once, so the held-out counts are the
    # training data's; a holdout scores its test part only
    every_row = split in ("kfold", "leave-group-out")
    input_kind = card.get("input_kind") or "tabular"
    policy = data.get("missing")
    return {
        "dataset": data.get("type") or metrics.get("data"),
        "source": provenance.source if provenance else None,
        "licence": provenance.licence if provenance else None,
        "citation": (provenance.citation or None) if provenance else None,
        "sites": [str(s) for s in data.get("sites") or []],
        "rows": card.get("trained_on_rows"),
        "images": card.get("trained_on_images"),
        "events": n.get("events") if every_row else None,
        "class_counts": {str(k): int(v) for k, v in (n.get("classes") or {}).items()}
        if every_row else {},
        "synthetic": bool(card.get("synthetic_data") or metrics.get("synthetic")),
        "missing_policy": "none (images are complete arrays)" if input_kind != "tabular"
        else missing_handling_text(policy) if isinstance(policy, str) else None,
        "description": list(data_lines or []),
    }


def _threshold_part(metrics: dict[str, Any], sections: list[Section]) -> dict[str, Any] | None:
    if metrics.get("per_class"):
        return {"how_chosen": "no threshold: each patient is assigned the most probable "
                              "class; `medml predict` gives every class's probability"}
    if metrics.get("threshold") is None:
        return None
    section = _section(sections, "Operating threshold")
    how = "; ".join(b.rstrip(".") for b in section.bullets) + "." if section else (
        f"threshold {_fmt(metrics['threshold'])} ({metrics.get('threshold_method')})")
    return {"value": metrics["threshold"], "method": metrics.get("threshold_method"),
            "how_chosen": how}


def _caveats(run: Path, config: dict[str, Any], metrics: dict[str, Any],
             report: dict[str, Any], extra: list[str]) -> list[str]:
    """What medml can see for itself that limits the figures, then the config's own."""
    caveats: list[str] = []
    training, part = report["training_data"], report["metrics"]
    if training["synthetic"]:
        caveats.append(SYNTHETIC_BANNER)
    split = (metrics.get("split") or {}).get("method")
    if split != "leave-group-out" and len(training["sites"]) <= 1:
        where = f"one site ({training['sites'][0]})" if training["sites"] else "one data source"
        caveats.append(f"Developed and validated on {where} only, by internal validation: how "
                       "the model performs at other sites (external validity) is unknown. "
                       "Evaluate it on another site's data (`medml evaluate RUN --data ...`) "
                       "before any use there.")
    elif split != "leave-group-out":
        caveats.append(f"Developed on data pooled from {len(training['sites'])} sites and "
                       "validated internally (rows of every site in every fold): performance "
                       "at a new site is unknown; a leave-group-out split (`split.method: "
                       "leave-group-out`, `split.by: site`) estimates it.")
    n = (metrics.get("n") or {}).get("samples")
    if isinstance(n, int) and n < SMALL_EVALUATION:
        caveats.append(f"Small evaluation set: the figures rest on {n} held-out samples, so "
                       "their intervals are wide and the point estimates unstable.")
    small = ((config.get("evaluation") or {}).get("min_subgroup_n")) or 30
    for row in part["per_class"]:
        if isinstance(row.get("n"), int) and row["n"] < small:
            caveats.append(f"Class {row['label']}: only {row['n']} patients (< {small}), so "
                           "its per-class figures are unstable.")
    for row in part["subgroups"]:
        if row.get("warning"):
            caveats.append(f"Subgroup {row['variable']} = {row['label']}: {row['warning']}.")
    block = metrics.get("internal_external") or {}
    caveats += [f"Leave-{block.get('by', 'group')}-out: {w}." for w in block.get("warnings", [])]
    for pooled in part.get("pooled", []):
        if pooled.get("prediction_low") is not None and pooled["name"] == part["primary_metric"]:
            caveats.append(
                f"Across held-out {block.get('by', 'group')}s the pooled {pooled['name']} is "
                f"{_fmt(pooled.get('estimate'))}, but a new one could see anything from "
                f"{_fmt(pooled['prediction_low'])} to {_fmt(pooled['prediction_high'])} "
                f"(prediction interval; I² {_fmt(pooled.get('i2'))}).")
    calibration = metrics.get("calibration") or {}
    if calibration.get("warning"):
        caveats.append(f"Calibration: {calibration['warning']}.")
    if part.get("tuning_metric") and part.get("tuning_scheme") == "validation-images":
        caveats.append(
            "Hyperparameters were tuned on the validation images (the test images never "
            "reached the study), so the test figures are an honest estimate; the study's best "
            f"validation score was optimistic by {_fmt(part.get('tuning_mean_optimism'))} "
            f"{part['tuning_metric']} (best validation minus test score).")
    elif part.get("tuning_metric"):
        caveats.append(
            "Hyperparameters were tuned by nested cross-validation, so the held-out figures "
            "include the tuning; the inner scores that chose them were optimistic by "
            f"{_fmt(part.get('tuning_mean_optimism'))} {part['tuning_metric']} on average "
            "(best inner minus outer score).")
    if run.parent.name == "trials":
        caveats.append("This run is one trial of a sweep: picking the best of many trials on "
                       "the same data flatters the winner; confirm it on data the sweep never "
                       "saw.")
    if part.get("horizons"):
        unit = part.get("time_unit") or "time units"
        caveats.append(
            f"Survival figures are given at horizons {', '.join(_fmt(h) for h in part['horizons'])}"
            f" {unit} ({part.get('horizons_source') or 'from the config'}); predictions beyond "
            "the longest follow-up of the training data are extrapolation.")
    if metrics.get("update"):
        caveats.append("This model was updated for a new site and its figures are "
                       "cross-validated within that site: they say nothing about other sites.")
    return caveats + [str(c) for c in extra]


def model_card_data(run_folder: Path | str, *, cfg: Any = None,
                    provenance: Provenance | None = None,
                    data_lines: list[str] | None = None) -> ModelCardReport:
    """The model card's data for a run, from its config.yaml, metrics.json,
    environment.json and model/card.json.

    Training passes what only the loaded dataset knows (``provenance``: source, licence,
    citation; ``data_lines``: the report's data bullets) and the typed config ``cfg``; a run
    read later without them says those items were not recorded.
    """
    return _card_report(Path(run_folder), read_card(Path(run_folder) / "model").as_dict(),
                        cfg=cfg, provenance=provenance, data_lines=data_lines)


def _card_report(run: Path, card: dict[str, Any], *, cfg: Any,
                 provenance: Provenance | None,
                 data_lines: list[str] | None) -> ModelCardReport:
    """:func:`model_card_data` with the run's model/card.json already read."""
    config = _run_config(run)
    metrics = read_metrics(run).as_dict()
    environment = read_environment(run) if (run / "environment.json").exists() else None
    status = read_status(run)
    cfg = cfg if cfg is not None else _validated_config(config)
    sections = build_sections(cfg, provenance or Provenance(source="not recorded"),
                              data_lines or [], metrics, run) if cfg is not None else []
    split_section = _section(sections, "Split and model")
    split_text = next((b.removeprefix("Split: ") for b in split_section.bullets
                       if b.startswith("Split: ")), None) if split_section else None
    model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
    card_cfg = config.get("card") if isinstance(config.get("card"), dict) else {}
    synthetic = bool(card.get("synthetic_data") or metrics.get("synthetic"))
    task = str(card.get("task") or metrics.get("task") or config.get("task"))
    summary = _task_summary(task)
    report: dict[str, Any] = {
        "details": {
            # the folder's final name is given only when the run completes: the run's name
            "run": status.get("name") or config.get("name") or run.name,
            "task": task, "task_summary": summary,
            "problem": card["problem"],
            "model_type": str(card.get("model") or metrics.get("model")),
            "parameters": {k: v for k, v in model_cfg.items() if k != "type"},
            "tuned_parameters": card.get("tuned_parameters"),
            "input_kind": card.get("input_kind"), "format": card.get("format"),
            "input_shape": card.get("input_shape"), "intensity": card.get("intensity"),
            "trained": status.get("ended") or status.get("started")
            or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "medml_version": card.get("medml_version"),
            "parent_run": card.get("parent_run"), "update_method": card.get("update_method"),
        },
        "intended_use": _intended_use(card_cfg, summary, synthetic),
        "factors": {
            "subgroup_variables": list(dict.fromkeys(
                str(r.get("variable")) for r in metrics.get("subgroups") or [])),
            "site_column": (metrics.get("split") or {}).get("by"),
            "sites": [str(s) for s in ((config.get("data") or {}).get("sites") or [])],
        },
        "metrics": _metrics_part(metrics),
        "evaluation_data": {
            "split": split_text or str(metrics.get("split") or config.get("split")),
            "n": metrics.get("n") or {}},
        "training_data": _training_part(config, metrics, card, provenance, data_lines),
        "threshold": _threshold_part(metrics, sections),
        "provenance": {
            "config_sha256": sha256_file(run / "config.yaml"),
            "data_sha256": (environment.data_sha256 or {}) if environment else {},
            "git_commit": environment.git_commit if environment else None,
            "git_dirty": environment.git_dirty if environment else None,
            "seed": config.get("seed"),
            "python": environment.python if environment else None,
            "packages": environment.packages if environment else {},
        },
    }
    calibration = metrics.get("calibration") or {}
    if calibration:
        report["calibration"] = {
            "slope": calibration.get("calibration_slope"),
            "intercept": calibration.get("calibration_intercept"),
            "brier": calibration.get("brier"), "ece": calibration.get("ece"),
            "warning": calibration.get("warning") or None}
    report["caveats"] = _caveats(run, config, metrics, report, card_cfg.get("caveats") or [])
    return ModelCardReport.model_validate(_clean(report))


# --------------------------------------------------------------------------- rendering
def _group_table(rows: list[Any], first: list[str], metric_names: list[str]
                 ) -> tuple[list[str], list[list[str]]]:
    """A table of subgroups, classes or sites: counts, each metric with its CI, warning."""
    body = []
    for row in rows:
        cells = [*([row.variable or ""] if "variable" in first else []), row.label,
                 _fmt(row.n), _fmt(row.events) if row.events is not None else "—"]
        for name in metric_names:
            value = row.values.get(name)
            low, high = row.values.get(f"{name}_low"), row.values.get(f"{name}_high")
            cells.append(_fmt(value) + (f" ({_fmt(low)} – {_fmt(high)})"
                                        if low is not None or high is not None else ""))
        body.append([*cells, row.warning or ""])
    return [*first, "n", "events", *metric_names, "warning"], body


def _listed_metrics(rows: list[Any]) -> list[str]:
    names = dict.fromkeys(k for row in rows for k in row.values
                          if not k.endswith(("_low", "_high")))
    return list(names)


def render_model_card(report: ModelCardReport) -> str:
    """The model card as Markdown, its sections in the order of Mitchell et al. 2019."""
    d, use, m = report.details, report.intended_use, report.metrics
    training, provenance = report.training_data, report.provenance
    params = ", ".join(f"{k}={v}" for k, v in (d.tuned_parameters or d.parameters).items())
    sections = [Section("Model details", paragraphs=[
        f"Model card after Mitchell et al. 2019 ({CITATION}), written by medml from this "
        "run's records; every figure is also in metrics.json."], bullets=[
        f"Run name: `{d.run}`; trained {d.trained or 'n/a'} with medml {d.medml_version or 'n/a'}",
        f"Task: `{d.task}`" + (f" ({d.task_summary})" if d.task_summary else "")
        + f"; problem: {d.problem}",
        f"Model: `{d.model_type}` ({d.format or 'skops'} file, {d.input_kind or 'tabular'} "
        "input)" + (f"; {'tuned' if d.tuned_parameters else 'parameters'}: {params}"
                    if params else ""),
        *([f"Input: images of shape {tuple(d.input_shape)}"
           + (f", intensity {_intensity_text(d.intensity)}" if d.intensity else "")]
          if d.input_shape else []),
        *([f"Updated from run `{d.parent_run}` by {d.update_method}"] if d.parent_run else []),
    ])]
    sections.append(Section("Intended use", bullets=[
        f"Primary intended use: {use.intended_use}",
        f"Primary intended users: {use.intended_users}",
        *(f"Out of scope: {item}" for item in use.out_of_scope),
    ], paragraphs=[] if use.source == "config" else [
        "medml's default wording (no `card:` section in the config)."]))
    f = report.factors
    sections.append(Section("Factors", bullets=[
        "Subgroups reported: " + (", ".join(f"`{v}`" for v in f.subgroup_variables)
                                  or "none configured (evaluation.subgroups)"),
        "Sites: " + (", ".join(f.sites) or "not recorded by the data source")
        + (f"; each `{f.site_column}` held out in turn" if f.site_column else ""),
    ]))
    level = m.confidence or 0.95
    sections.append(Section("Metrics", bullets=[
        f"Primary metric: {m.primary_metric or 'n/a'}",
        f"Uncertainty: {level:.0%} CIs from {m.bootstrap_resamples} bootstrap resamples"
        if m.bootstrap_resamples else "Uncertainty: no confidence intervals (bootstrap: 0)",
        *([f"Horizons: {', '.join(_fmt(h) for h in m.horizons)} {m.time_unit or ''} "
           f"({m.horizons_source})"] if m.horizons else []),
    ]))
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m.n.items()
                       if not isinstance(v, (dict, list)))
    classes = (m.n.get("classes") or {}) if isinstance(m.n.get("classes"), dict) else {}
    sections.append(Section("Evaluation data", bullets=[
        f"Split: {report.evaluation_data.split}",
        f"Held-out predictions: {counts}"
        + (" (" + ", ".join(f"class {k}: {v}" for k, v in classes.items()) + ")"
           if classes else ""),
    ]))
    sections.append(Section("Training data", bullets=[
        *(["SYNTHETIC: generated data, not patients"] if training.synthetic else []),
        f"Dataset: `{training.dataset}`; source: {training.source or 'not recorded'}",
        f"Licence: {training.licence or 'not recorded'}",
        *([f"Citation: {training.citation}"] if training.citation else []),
        "Sites: " + (", ".join(training.sites) or "not recorded by the data source"),
        "Fitted on: " + (f"{training.rows} rows" if training.rows is not None
                         else f"{training.images} images" if training.images is not None
                         else "n/a")
        + (f", {training.events} events" if training.events is not None else "")
        + (" (" + ", ".join(f"{k}: {v}" for k, v in training.class_counts.items()) + ")"
           if training.class_counts else ""),
        f"Dates: {training.dates or 'not recorded by the data source'}",
        f"Missing data: {training.missing_policy or 'not recorded'}",
        *training.description,
    ]))
    metric_block = {"metrics": {v.name: v.value for v in m.values},
                    "intervals": {v.name: [v.low, v.high] for v in m.values
                                  if v.low is not None or v.high is not None},
                    "baseline": m.baseline, "reference": m.references, "confidence": level}
    analyses = Section("Quantitative analyses", paragraphs=[
        "Pooled over every held-out prediction; baseline: the trivial model"
        + ("; references: simpler models fitted on the same split." if m.references
           else ".")],
        tables=[metric_rows(metric_block)])
    if m.per_class:
        analyses.tables.append(_group_table(m.per_class, ["class"], _listed_metrics(m.per_class)))
    if m.subgroups:
        analyses.tables.append(_group_table(m.subgroups, ["variable", "subgroup"],
                                            _listed_metrics(m.subgroups)))
    if m.sites:
        analyses.paragraphs.append(f"Each `{f.site_column}` held out in turn (model developed "
                                   "on the others), then pooled by random-effects "
                                   "meta-analysis with a prediction interval for a new one.")
        analyses.tables.append(_group_table(m.sites, [f.site_column or "site"],
                                            _listed_metrics(m.sites)))
        analyses.tables.append((["measure", "pooled (CI)", "prediction interval", "I²"], [
            [p.name, f"{_fmt(p.estimate)} ({_fmt(p.low)} – {_fmt(p.high)})",
             f"{_fmt(p.prediction_low)} – {_fmt(p.prediction_high)}", _fmt(p.i2)]
            for p in m.pooled]))
    sections.append(analyses)
    c = report.calibration
    if c is not None:
        sections.append(Section("Calibration", bullets=[
            f"Calibration slope {_fmt(c.slope)} (1 is ideal; < 1: over-confident)",
            f"Calibration-in-the-large {_fmt(c.intercept)} (0 is ideal)",
            f"Brier score {_fmt(c.brier)}, expected calibration error {_fmt(c.ece)}",
            *([f"Warning: {c.warning}"] if c.warning else []),
        ]))
    elif m.horizons:
        sections.append(Section("Calibration", bullets=[
            "Calibration slope at each horizon: `calibration_slope@t` in the table above"]))
    t = report.threshold
    sections.append(Section("Threshold", bullets=[
        *([f"Threshold: {_fmt(t.value)} (method: {t.method})"] if t and t.value is not None
          else []),
        t.how_chosen if t else "Not applicable: the model predicts a value or a risk, "
                               "not a class.",
    ]))
    sections.append(Section("Caveats and recommendations",
                            bullets=report.caveats or ["none recorded"]))
    packages = ", ".join(f"{k} {v}" for k, v in provenance.packages.items() if v)
    sections.append(Section("Provenance", bullets=[
        f"config.yaml sha256: {provenance.config_sha256 or 'n/a'}",
        *(f"data {name} sha256: {digest}" for name, digest in provenance.data_sha256.items()),
        "git commit: " + (f"{provenance.git_commit}"
                          + (" (uncommitted changes)" if provenance.git_dirty else "")
                          if provenance.git_commit else "not a git checkout"),
        f"seed: {provenance.seed}; Python {provenance.python or 'n/a'}",
        f"packages: {packages or 'not recorded'}",
    ]))
    return render_markdown(f"Model card: {d.run}", sections, training.synthetic,
                           Path(".")) + "\n"


# --------------------------------------------------------------------------- writing/reading
def write_model_card(run_folder: Path | str, *, cfg: Any = None,
                     provenance: Provenance | None = None,
                     data_lines: list[str] | None = None) -> Path:
    """Store the card's data in model/card.json's ``reporting`` block and write
    model/card.md, both through the model folder's manifest. Called last in a run, after
    metrics.json and the report, so a run that fails before then has no card.md."""
    from medml_cli.runs.artifacts import write_model_text

    run = Path(run_folder)
    card = read_card(run / "model").as_dict()
    report = _card_report(run, card, cfg=cfg, provenance=provenance, data_lines=data_lines)
    write_card(run / "model", {**card, "reporting": report.model_dump(mode="json")})
    return write_model_text(run / "model", CARD_MD, render_model_card(report))


def read_model_card(run_folder: Path | str) -> tuple[str, ModelCardReport, bool]:
    """(card.md's text, its data, whether it was rendered now) for a run: a run written
    before medml wrote card.md has it rendered on the fly from its records. card.md and
    card.json are checked against the manifest first."""
    from medml_cli.runs.artifacts import verify_file

    run = Path(run_folder)
    model = run / "model"
    if not (model / CARD).exists():
        raise RunNotUsableError(f"{run} has no model/{CARD}: it did not complete (a failed "
                                "or interrupted run has no model card). Fix: train again.")
    card = read_card(model)
    if (model / CARD_MD).exists():
        text = verify_file(model, CARD_MD).read_text(encoding="utf-8")
        report = card.reporting or model_card_data(run)
        return text, report, False
    report = card.reporting or model_card_data(run)
    return render_model_card(report), report, True


def _intensity_text(intensity: list[Any]) -> str:
    """How pixel values were scaled in training (as ``_normalise`` does it)."""
    kind, *bounds = intensity
    if str(kind).lower() == "unit":
        return "values used as they are (already 0-1)"
    if len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds):
        window = "HU window" if str(kind).lower() == "hu" else f"{kind} window"
        return f"{window} {bounds[0]:g} to {bounds[1]:g} (clipped, then scaled to 0-1)"
    return " ".join(str(v) for v in intensity)
