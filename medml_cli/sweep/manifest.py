"""The sweep folder's records: ``sweep.json`` (the manifest), checks of a manifest read back for
``--resume``, trial states, the summary and the leaderboard."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import socket
import statistics
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medml_cli.config.sections import NAME_PATTERN
from medml_cli.errors import RunNotUsableError
from medml_cli.jsonio import read_json, write_json, write_text_atomic
from medml_cli.runs.directory import pid_alive
from medml_cli.sweep.expand import trial_id
from medml_cli.sweep.spec import ID_LENGTH, MAX_TRIALS, STATES, Sweep
from medml_cli.tasks.base import higher_is_better


# --------------------------------------------------------------------------- the manifest
def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Manifest:
    """sweep.json: rewritten atomically (temp file + os.replace) after every change; all
    changes go through one lock because trial threads report their start themselves."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.lock = threading.RLock()
        self.by_id = {t["id"]: t for t in data["trials"]}

    def update(self, tid: str, **fields: Any) -> None:
        """Update trial ``tid``'s fields and save the manifest."""
        with self.lock:
            self.by_id[tid].update(fields)
            self.save()

    def save(self) -> None:
        """Write the manifest with fresh counts and update time."""
        with self.lock:
            self.data["updated"] = _utc_now()
            self.data["counts"] = count_states(self.data["trials"])
            write_json(self.path, self.data)


def count_states(trials: list[dict[str, Any]]) -> dict[str, int]:
    """Number of trials in each state."""
    counts = {state: 0 for state in STATES}
    for trial in trials:
        counts[trial["status"]] = counts.get(trial["status"], 0) + 1
    return counts


def _rel(path: str | Path | None, root: Path) -> str | None:
    if not path:
        return None
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(root.resolve()))
    return str(path)


def _new_sweep_dir(runs_dir: Path, name: str) -> Path:
    from medml_cli.runs.directory import ensure_runs_dir

    ensure_runs_dir(runs_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        path = runs_dir / f"{stamp}-sweep-{name}{'' if n == 1 else f'-{n}'}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunNotUsableError(f"could not create a sweep folder in {runs_dir}")


def _create(sweep: Sweep, runs_dir: Path) -> tuple[Path, dict[str, Any]]:
    path = _new_sweep_dir(Path(runs_dir), sweep.name)
    for sub in ("configs", "trials", "logs"):
        (path / sub).mkdir()
    write_text_atomic(path / "sweep.yaml", sweep.sweep_yaml)
    for trial in sweep.trials:
        write_text_atomic(path / "configs" / f"{trial.id}.yaml", trial.config_yaml)
    manifest = {
        "format": 1, "name": sweep.name, "created": _utc_now(), "updated": None,
        "source": str(sweep.source) if sweep.source else None, "overrides": sweep.overrides,
        "task": sweep.task, "metric": sweep.metric, "higher_is_better": sweep.higher_is_better,
        "duplicates_removed": sweep.duplicates, "state": "pending", "sessions": [],
        "trials": [{
            "id": t.id, "params": t.params, "seed": t.seed, "dropped": t.dropped,
            "config": f"configs/{t.id}.yaml", "status": "pending", "run_dir": None,
            "error": None, "worker": None, "host": None, "pid": None, "started": None,
            "ended": None, "seconds": None, "metrics": None, "intervals": None,
            "attempts": [],
        } for t in sweep.trials],
    }
    return path, manifest


def _completed_run(run_dir: Path, config_text: str | None = None) -> bool:
    from medml_cli.runs.records import METRICS, read_status

    status = read_status(run_dir) if run_dir.is_dir() else None
    if not (status is not None and status.state == "completed"
            and (run_dir / METRICS).is_file()):
        return False
    if config_text is None:
        return True
    with contextlib.suppress(OSError):
        return (run_dir / "config.yaml").read_text(encoding="utf-8") == config_text
    return False


# --------------------------------------------------------------------------- resume checks
class _Attempt(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    run_dir: str | None = None


class _TrialRecord(BaseModel):
    """The fields of a sweep.json trial that resume and the summaries read."""

    model_config = ConfigDict(strict=True, extra="allow")
    id: str = Field(pattern=f"^[0-9a-f]{{{ID_LENGTH}}}$")
    params: dict[str, Any]
    seed: int = Field(ge=0)
    config: str
    status: Literal[STATES]  # type: ignore[valid-type]
    run_dir: str | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    metrics: dict[str, Any] | None = None
    intervals: dict[str, Annotated[list[float | None], Field(min_length=2, max_length=2)]
                    | None] | None = None
    attempts: list[_Attempt]


class _ManifestRecord(BaseModel):
    """The fields of sweep.json that resume reads (others are kept as they are)."""

    model_config = ConfigDict(strict=True, extra="allow")
    format: Literal[1]
    name: str = Field(pattern=NAME_PATTERN)
    metric: str = Field(min_length=1)
    sessions: list[dict[str, Any]]
    trials: list[_TrialRecord] = Field(min_length=1, max_length=MAX_TRIALS)


def _manifest_fix(path: Path) -> str:
    """How to get going again when sweep.json is damaged: the original sweep file."""
    source = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        first = (path / "sweep.yaml").read_text(encoding="utf-8").split("\n", 1)[0]
        if first.startswith("# medml sweep from "):
            source = first.removeprefix("# medml sweep from ").strip()
    again = f"medml sweep {source}" if source else "medml sweep SWEEP.yaml"
    return (f"sweep.json is written by medml sweep; restore it if it was edited or damaged, or "
            f"start the sweep again with `{again}` (a new folder; this one is left as it is).")


def _bad_manifest(path: Path, problems: list[str]) -> RunNotUsableError:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return RunNotUsableError(f"cannot resume {path}: {path / 'sweep.json'} is not a valid sweep "
                             f"manifest: {'; '.join(problems[:3])}{more}. "
                             + _manifest_fix(path))


def _inside(root: Path, relative: str, sub: str) -> Path | None:
    """``root/relative`` if it stays inside ``root/sub`` (a manifest names files by relative
    paths; an edited one must not point a trial at files outside its sweep)."""
    target = (root / relative).resolve()
    return target if target.is_relative_to((root / sub).resolve()) else None


def read_manifest(path: Path) -> dict[str, Any]:
    """sweep.json, checked field by field; every problem is a RunNotUsableError (exit 2)."""
    if not (path / "sweep.json").exists():
        raise RunNotUsableError(f"{path} is not a medml sweep folder (no sweep.json). Pass the "
                                "folder `medml sweep` printed.")
    if not (path / "sweep.json").is_file():
        raise _bad_manifest(path, ["it is a folder, not a file"])
    try:
        manifest = read_json(path / "sweep.json")
    except (OSError, ValueError) as exc:
        raise _bad_manifest(path, [f"it cannot be read as JSON ({exc})"[:300]]) from None
    if not isinstance(manifest, dict):
        kind = {list: "a list", str: "a string", bool: "true/false", int: "a number",
                float: "a number"}.get(type(manifest), "null")
        raise _bad_manifest(path, [f"the top level is {kind}, not an object"])
    try:
        _ManifestRecord.model_validate(manifest)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                            for part in err["loc"]).lstrip(".") or "(top level)"
            got = "" if err["type"] == "missing" else f"; got {err.get('input')!r}"[:80]
            problems.append(f"{where}: {err['msg']}{got}")
        raise _bad_manifest(path, problems) from None
    problems = []
    seen: set[str] = set()
    for n, trial in enumerate(manifest["trials"]):
        if trial["id"] in seen:
            problems.append(f"trials[{n}].id: {trial['id']} appears twice")
        seen.add(trial["id"])
        if _inside(path, trial["config"], "configs") is None:
            problems.append(f"trials[{n}].config: {trial['config']!r} is not a file under "
                            "configs/")
        for key, value in [("run_dir", trial.get("run_dir")),
                           *(("attempts.run_dir", a.get("run_dir")) for a in trial["attempts"])]:
            if value is not None and _inside(path, value, "trials") is None:
                problems.append(f"trials[{n}].{key}: {value!r} is not a folder under trials/")
    if problems:
        raise _bad_manifest(path, problems)
    return manifest


def _trial_config_text(path: Path, trial: dict[str, Any]) -> str:
    config = path / trial["config"]
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
        raise RunNotUsableError(
            f"cannot resume {path}: {config} {reason}, so trial {trial['id']} cannot be re-run. "
            + _manifest_fix(path)) from None
    if trial_id(text) != trial["id"]:
        raise RunNotUsableError(
            f"cannot resume {path}: {config} was changed after the sweep was made (its sha256 no "
            f"longer starts with the trial id {trial['id']}), so re-running it would not be "
            f"that trial. Restore the file, or start a new sweep for the changed settings.")
    return text


def _trial_process_alive(trial: dict[str, Any]) -> bool:
    """Whether the trial's recorded process still runs here, and is that trial (its pid may
    belong to another program by now)."""
    pid = trial.get("pid")
    if trial.get("host") != socket.gethostname() or not pid_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        # a warm trial has its server's command line but is named after its trial
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # no procfs: trust pid_alive
    return f"t-{trial['id']}" in command or name.strip() == f"t-{trial['id']}"


# --------------------------------------------------------------------------- summaries
def _metric_value(trial: dict[str, Any], metric: str) -> float | None:
    value = (trial.get("metrics") or {}).get(metric)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def optimism_note(n_trials: int, metric: str) -> str:
    """The leaderboard's caveat, one sentence: its best score is selected and reported by the
    same cross-validation, so it is biased upward."""
    return (f"The best {metric} is optimistic: it is the best of {n_trials} trials, picked "
            "by the same cross-validation that reports it; for an honest estimate of the "
            "chosen settings, tune inside one run with a `tune:` block (nested "
            "cross-validation) in the experiment config.")


def leaderboard(manifest: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """Best trials by the sweep's metric, and mean and SD across seeds per parameter set,
    with :func:`optimism_note` as ``note``."""
    metric = manifest["metric"]
    higher = higher_is_better(metric)
    scored = [(t, v) for t in manifest["trials"] if t["status"] == "completed"
              and (v := _metric_value(t, metric)) is not None]
    scored.sort(key=lambda tv: -tv[1] if higher else tv[1])
    ranked = [{"id": t["id"], "params": t["params"], "seed": t["seed"], "value": v,
               "ci": (t.get("intervals") or {}).get(metric), "run_dir": t["run_dir"]}
              for t, v in scored]
    groups: dict[str, dict[str, Any]] = {}
    for trial, value in scored:
        key = json.dumps(trial["params"], sort_keys=True, default=str)
        group = groups.setdefault(key, {"params": trial["params"], "values": [], "ids": []})
        group["values"].append(value)
        group["ids"].append(trial["id"])
    per_params = []
    for group in groups.values():
        values = group.pop("values")
        per_params.append({**group, "n": len(values), "mean": statistics.fmean(values),
                           "sd": statistics.stdev(values) if len(values) > 1 else None})
    per_params.sort(key=lambda g: -g["mean"] if higher else g["mean"])
    return {"metric": metric, "higher_is_better": higher,
            "best": ranked[0] if ranked else None, "top": ranked[:top],
            "per_params": per_params,
            "note": optimism_note(len(ranked), metric) if len(ranked) > 1 else None}


def summary_rows(manifest: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """summary.csv: one row per trial; params as columns; every metric with its CI."""
    param_cols: list[str] = []
    metric_cols: list[str] = []
    for trial in manifest["trials"]:
        param_cols += [k for k in trial["params"] if k not in param_cols]
        metric_cols += [m for m in (trial.get("metrics") or {}) if m not in metric_cols]
    columns = ["id", *param_cols, "seed", "status", "run_dir"]
    with_ci = {m for t in manifest["trials"] for m in (t.get("intervals") or {})}
    for metric in metric_cols:
        columns.append(metric)
        if metric in with_ci:
            columns += [f"{metric}_ci_low", f"{metric}_ci_high"]
    columns += ["seconds", "worker", "error"]
    rows = []
    for trial in manifest["trials"]:
        row: dict[str, Any] = {"id": trial["id"], "seed": trial["seed"],
                               "status": trial["status"], "run_dir": trial.get("run_dir"),
                               "seconds": trial.get("seconds"), "worker": trial.get("worker"),
                               "error": trial.get("error")}
        for key in param_cols:
            value = trial["params"].get(key)
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        metrics, intervals = trial.get("metrics") or {}, trial.get("intervals") or {}
        for metric in metric_cols:
            row[metric] = metrics.get(metric)
            if metric in with_ci and intervals.get(metric):
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = intervals[metric][:2]
        rows.append(row)
    return columns, rows


def write_summary(path: Path, manifest: dict[str, Any]) -> None:
    """summary.csv and leaderboard.csv (mean and SD across seeds per parameter set)."""
    columns, rows = summary_rows(manifest)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path / "summary.csv", buffer.getvalue())
    board = manifest.get("leaderboard") or leaderboard(manifest)
    buffer = io.StringIO()
    metric = board["metric"]
    param_cols = [c for c in columns[1:columns.index("seed")]]
    writer = csv.writer(buffer)
    writer.writerow(["rank", *param_cols, "n_seeds", f"{metric}_mean", f"{metric}_sd", "trials"])
    for rank, group in enumerate(board["per_params"], 1):
        writer.writerow([rank, *(group["params"].get(c) for c in param_cols), group["n"],
                         group["mean"], group["sd"], " ".join(group["ids"])])
    write_text_atomic(path / "leaderboard.csv", buffer.getvalue())
