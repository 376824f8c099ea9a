"""Find, filter, sort, show and compare run directories (``medml runs list|show|compare``).

A runs folder holds ordinary runs (``<stamp>-<name>-<hash>``, ``-failed``, ``-interrupted``,
and ``.tmp-*`` while running or after being killed) and sweep folders whose ``trials/`` hold
more runs. Everything here only reads.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medml_cli.config.yaml_io import load_written_yaml
from medml_cli.errors import MedmlUsageError, RunNotUsableError
from medml_cli.jsonio import RUN_FIX
from medml_cli.runs.directory import pid_alive
from medml_cli.runs.records import (
    ENVIRONMENT,
    METRICS,
    STATUS,
    EnvironmentRecord,
    MetricsRecord,
    StatusRecord,
    read_environment,
    read_metrics,
    read_status,
)
from medml_cli.tasks.base import higher_is_better

BASE_COLUMNS = ["run", "path", "state", "task", "problem", "primary_metric", "model", "data",
                "name", "seed", "started", "ended", "sweep", "reason"]
DATE_FILTERS = ("since", "until", "date")
#: Packages worth showing in ``runs show`` (the rest stay in environment.json).
KEY_PACKAGES = ("medml", "scikit-learn", "numpy", "pandas", "scipy", "skops", "tensorflow",
                "keras")


# --------------------------------------------------------------------------- reading one run
@dataclass
class RunRecord:
    """What the run files say, each read through its typed record (None when the file is
    absent or damaged). ``problems`` lists each damaged file (one message each, naming the
    file and the fix); a run with problems is shown as ``broken``."""

    status: StatusRecord
    config: dict[str, Any]
    metrics: MetricsRecord | None
    environment: EnvironmentRecord | None
    problems: list[str]


def _damaged(path: Path, detail: str) -> RunNotUsableError:
    return RunNotUsableError(f"{path} {detail}; it was damaged or edited after it was written. "
                             f"Fix: {RUN_FIX}.")


def _read_config_strict(path: Path) -> dict[str, Any]:
    try:
        data = load_written_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunNotUsableError(f"{path} cannot be read ({exc}). Fix: {RUN_FIX}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _damaged(path, f"is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _damaged(path, f"holds a {type(data).__name__}, not a mapping of settings")
    return data


def read_record(run: Path, *, environment: bool = False) -> RunRecord:
    """Every record file of a run, each read defensively: a damaged file becomes a problem
    message, never an exception, so one broken run cannot take a listing down."""
    record = RunRecord(status=StatusRecord.unknown(), config={}, metrics=None,
                       environment=None, problems=[])
    readers: list[tuple[str, Any]] = [
        (STATUS, lambda p: read_status(p, strict=True)),
        ("config.yaml", _read_config_strict),
        (METRICS, read_metrics),
    ]
    if environment:
        readers.append((ENVIRONMENT, read_environment))
    for name, reader in readers:
        path = run / name
        if not path.exists():  # absent files are normal (a failed run has no metrics)
            continue
        try:
            value = reader(path)
        except RunNotUsableError as exc:
            record.problems.append(str(exc))
            continue
        setattr(record, name.split(".")[0], value)
    return record


def _short_problem(message: str, run: Path) -> str:
    """A problem message without the run's path and the fix, for a table cell."""
    text = message.replace(f"{run}/", "").replace(f"{run}", "")
    return text.split("; it was damaged")[0].split(". Fix:")[0]


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def is_run_dir(path: Path) -> bool:
    """A folder ``medml train`` made (finished or not)."""
    return path.is_dir() and ((path / "status.json").exists() or (path / "config.yaml").exists())


def is_sweep_dir(path: Path) -> bool:
    """True for a folder holding a sweep.json."""
    return path.is_dir() and (path / "sweep.json").exists()


def run_state(run: Path, status: StatusRecord | None = None) -> str:
    """completed / failed / interrupted / running; a run whose status says running but whose
    process is gone (killed outright) is interrupted."""
    status = read_status(run) if status is None else status
    state = status.state
    if state == "running":
        return "running" if pid_alive(status.pid) else "interrupted"
    if state == "unknown":
        if run.name.endswith("-failed"):
            return "failed"
        if run.name.endswith("-interrupted") or run.name.startswith(".tmp-"):
            return "interrupted"
    return state


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _run_row(run: Path, sweep: str | None) -> dict[str, Any]:
    record = read_record(run)
    status, config = record.status, record.config
    metrics = record.metrics or MetricsRecord.empty()
    seed = config.get("seed")
    row: dict[str, Any] = {
        "run": run.name, "path": str(run),
        "state": "broken" if record.problems else run_state(run, status),
        "task": metrics.task or _text(config.get("task")),
        "problem": metrics.problem,
        "primary_metric": metrics.primary_metric,
        "model": metrics.model or _text(_section(config, "model").get("type")),
        "data": _text(metrics.data) or _text(_section(config, "data").get("type")),
        "name": status.name or _text(config.get("name")),
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "started": status.started, "ended": status.ended, "sweep": sweep,
        "reason": " | ".join(_short_problem(p, run) for p in record.problems) or None,
    }
    for metric, value in metrics.metrics.items():
        if value is not None and metric not in BASE_COLUMNS:  # nor may it hide a column
            row[metric] = value
    return row


def _run_dirs(runs_dir: Path, include_sweeps: bool) -> list[tuple[Path, str | None]]:
    found: list[tuple[Path, str | None]] = []
    for child in sorted(runs_dir.iterdir()):
        if is_sweep_dir(child):
            if include_sweeps and (child / "trials").is_dir():
                found += [(t, child.name) for t in sorted((child / "trials").iterdir())
                          if is_run_dir(t)]
        elif is_run_dir(child):
            found.append((child, None))
    return found


# --------------------------------------------------------------------------- list
def _parse_when(key: str, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MedmlUsageError(f"--filter {key}={value}: expected a date like 2026-11-01 or "
                              "2026-11-01T14:00") from None
    if when.tzinfo is None:  # dates given by people are in local time
        when = when.astimezone()
    return when


def _started(frame: pd.DataFrame, column: str = "started") -> pd.Series:
    return pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")


def _apply_filters(frame: pd.DataFrame, filters: dict[str, str]) -> pd.DataFrame:
    from medml_cli.registry import did_you_mean

    for key, value in filters.items():
        if key in DATE_FILTERS:
            started = _started(frame)
            when = pd.Timestamp(_parse_when(key, value)).tz_convert("UTC")
            if key == "since":
                keep = started >= when
            elif key == "until":
                keep = started < when + pd.Timedelta(days=1) if len(value.strip()) <= 10 \
                    else started <= when
            else:
                keep = (started >= when) & (started < when + pd.Timedelta(days=1))
            frame = frame[keep.fillna(False)]
        elif key in frame.columns:
            column = frame[key]
            if pd.api.types.is_numeric_dtype(column):
                try:
                    target = float(value)
                except ValueError:
                    raise MedmlUsageError(f"--filter {key}={value}: {key} is a number") from None
                frame = frame[column == target]
            else:
                pattern = value.lower()
                frame = frame[column.map(lambda v, p=pattern: v is not None and v == v
                                         and fnmatch.fnmatchcase(str(v).lower(), p))]
        else:
            valid = [*BASE_COLUMNS, *DATE_FILTERS]
            raise MedmlUsageError(f"--filter {key}={value}: unknown key"
                                  f"{did_you_mean(key, valid)} (use one of: "
                                  f"{', '.join(valid)}, or a metric column)")
    return frame


def sort_runs(frame: pd.DataFrame, sort: str) -> pd.DataFrame:
    """Sort by a column; metrics best first (lowest first for brier, log_loss, rmse, mae),
    anything else ascending. A leading '-' or '+' forces descending or ascending."""
    from medml_cli.registry import did_you_mean

    key = sort.lstrip("+-")
    if key not in frame.columns:
        valid = [c for c in frame.columns if c != "path"]
        raise MedmlUsageError(f"--sort {sort}: no column '{key}'{did_you_mean(key, valid)} "
                              f"(columns: {', '.join(valid)})")
    metric = key not in BASE_COLUMNS
    ascending = not metric or not higher_is_better(key)
    if sort.startswith("-"):
        ascending = False
    elif sort.startswith("+"):
        ascending = True
    values = _started(frame, key) if key in ("started", "ended") else frame[key]
    order = values.sort_values(ascending=ascending, na_position="last", kind="stable").index
    return frame.loc[order]


def list_runs(runs_dir: Path, *, filters: dict[str, str] | None = None,
              sort: str | None = None, include_sweeps: bool = True) -> pd.DataFrame:
    """One row per run directory under ``runs_dir`` (and its sweeps' trials), with state,
    task, model, seed, times and every metric; filtered and sorted as asked."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise MedmlUsageError(f"runs directory {runs_dir} does not exist; pass --runs-dir "
                              "(default: runs)")
    rows = [_run_row(run, sweep) for run, sweep in _run_dirs(runs_dir, include_sweeps)]
    frame = pd.DataFrame(rows)
    for column in BASE_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    metric_columns = [c for c in frame.columns if c not in BASE_COLUMNS]
    frame = frame[[*BASE_COLUMNS, *metric_columns]]
    frame["seed"] = pd.array(frame["seed"], dtype="Int64")
    for column in metric_columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = sort_runs(frame, "started") if len(frame) else frame
    if filters:
        frame = _apply_filters(frame, filters)
    if sort:
        frame = sort_runs(frame, sort)
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- show
def resolve_run(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A run folder from a path, or from its folder name (or a unique part of it, such as a
    sweep trial's ``t-<id>``) under ``runs_dir``."""
    path = Path(ref)
    if is_run_dir(path):
        return path
    if runs_dir is not None and Path(runs_dir).is_dir():
        if is_run_dir(Path(runs_dir) / str(ref)):
            return Path(runs_dir) / str(ref)
        runs = [run for run, _ in _run_dirs(Path(runs_dir), include_sweeps=True)]
        exact = [r for r in runs if r.name == str(ref)]
        matches = exact or [r for r in runs if str(ref) in r.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches[:5])
            raise RunNotUsableError(f"'{ref}' matches {len(matches)} runs ({names}"
                                    f"{', ...' if len(matches) > 5 else ''}); be more specific.")
    if path.exists():
        raise RunNotUsableError(f"{path} is not a medml run directory (no status.json or "
                                "config.yaml).")
    raise RunNotUsableError(f"run '{ref}' not found" +
                            (f" (looked in {runs_dir})" if runs_dir is not None else "") +
                            ". `medml runs list` shows the runs.")


def show_run(path: Path) -> dict[str, Any]:
    """Everything worth knowing about one run: status, resolved config, metrics with CIs,
    sample counts and an environment summary."""
    path = Path(path)
    if not is_run_dir(path):
        raise RunNotUsableError(f"{path} is not a medml run directory (no status.json or "
                                "config.yaml).")
    record = read_record(path, environment=True)
    if record.problems:
        more = f" (and {len(record.problems) - 1} more damaged file(s))" \
            if len(record.problems) > 1 else ""
        raise RunNotUsableError(f"run {path.name} is broken: {record.problems[0]}{more}")
    status = record.status
    metrics = record.metrics or MetricsRecord.empty()
    env = record.environment or EnvironmentRecord()
    packages = env.packages
    sweep = path.parent.parent.name if path.parent.name == "trials" and \
        is_sweep_dir(path.parent.parent) else None
    return {
        "run": path.name,
        "path": str(path.resolve()),
        "state": run_state(path, status),
        "status": status.as_dict(),
        "sweep": sweep,
        "config": record.config,
        "task": metrics.task,
        "problem": metrics.problem,
        "primary_metric": metrics.primary_metric,
        "metrics": metrics.metrics,
        "intervals": metrics.intervals,
        "baseline": metrics.baseline,
        "n": metrics.n,
        "per_class": {name: scores.model_dump() for name, scores in metrics.per_class.items()}
        if metrics.per_class else None,
        "threshold": metrics.threshold,
        "synthetic": metrics.synthetic,
        "seconds": metrics.seconds,
        "environment": {
            "python": env.python,
            "platform": env.platform,
            "packages": {k: packages[k] for k in KEY_PACKAGES if packages.get(k)},
            "git_commit": env.git_commit,
            "git_dirty": env.git_dirty,
            "data_sha256": env.data_sha256 or {},
            "command": env.command if record.environment is not None else None,
        },
        "evaluations": sorted(p.name for p in (path / "evaluations").iterdir())
        if (path / "evaluations").is_dir() else [],
    }


# --------------------------------------------------------------------------- compare
def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'model': {'C': 1}} -> {'model.C': 1}; lists stay values."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data} if prefix else {}


def _labels(paths: list[Path]) -> list[str]:
    labels: list[str] = []
    for path in paths:
        label = path.name
        n = 2
        while label in labels:
            label, n = f"{path.name}#{n}", n + 1
        labels.append(label)
    return labels


def compare_runs(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(config keys whose values differ: key x run, metrics: metric x (run, value/ci_low/
    ci_high)). Configs are flattened to dotted keys; a key missing from a run is None."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise MedmlUsageError("compare needs at least two runs")
    for path in paths:
        if not is_run_dir(path):
            raise RunNotUsableError(f"{path} is not a medml run directory.")
    labels = _labels(paths)
    records = [read_record(p) for p in paths]
    for path, record in zip(paths, records, strict=True):
        if record.problems:
            raise RunNotUsableError(f"run {path.name} is broken: {record.problems[0]}")
    configs = [flatten(r.config) for r in records]
    keys: list[str] = []
    for config in configs:
        keys += [k for k in config if k not in keys]

    def same(values: list[Any]) -> bool:
        encoded = {json.dumps(v, sort_keys=True, default=str) for v in values}
        return len(encoded) == 1

    differing = [k for k in keys if not same([c.get(k) for c in configs])]
    config_diff = pd.DataFrame({label: [c.get(k) for k in differing]
                                for label, c in zip(labels, configs, strict=True)},
                               index=pd.Index(differing, name="key"), dtype=object)
    metrics = [r.metrics or MetricsRecord.empty()
               for r in records]
    names: list[str] = []
    for m in metrics:
        names += [k for k in m.metrics if k not in names]
    columns = pd.MultiIndex.from_product([labels, ["value", "ci_low", "ci_high"]],
                                         names=["run", "field"])
    table = pd.DataFrame(index=pd.Index(names, name="metric"), columns=columns, dtype=float)
    for label, m in zip(labels, metrics, strict=True):
        for name in names:
            value = m.metrics.get(name)
            ci = m.interval(name) or [None, None]
            table.loc[name, (label, "value")] = value if value is not None else float("nan")
            for field, bound in zip(("ci_low", "ci_high"), ci[:2], strict=True):
                table.loc[name, (label, field)] = bound if bound is not None else float("nan")
    return config_diff, table


def metric_table_json(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """{run: {metric: {value, ci}}} from :func:`compare_runs`' metric table (NaN -> None)."""
    def clean(x: Any) -> Any:
        return None if x is None or x != x else float(x)

    out: dict[str, dict[str, Any]] = {}
    for run in table.columns.get_level_values(0).unique():
        out[run] = {}
        for metric in table.index:
            low, high = clean(table.loc[metric, (run, "ci_low")]), \
                clean(table.loc[metric, (run, "ci_high")])
            out[run][metric] = {"value": clean(table.loc[metric, (run, "value")]),
                                "ci": [low, high] if low is not None else None}
    return out
