"""``medml runs export --mlflow``: log finished runs, and sweeps with their trials, to MLflow.

Each medml run becomes one MLflow run: the flattened config.yaml as params, metrics.json's
metrics with their CI bounds (and the trivial baseline's, under ``baseline/``) as metrics,
provenance as ``medml.*`` tags, and the report, plots, model folder and record files as
artifacts. predictions.csv holds one row per patient, so it is uploaded only when asked.

Exports are idempotent: every MLflow run carries ``medml.run_id``, a digest of the run
folder's name, config.yaml and metrics.json. A FINISHED MLflow run with the same key is left
as it is (reported ``skipped``); an unfinished one (an export that died halfway) is deleted
and the run exported again (``replaced``), so there is never a second finished copy.

A sweep becomes a parent MLflow run (the sweep spec as params, the leaderboard's best trial
as metrics) with one child run per completed trial (``mlflow.parentRunId``).

MLflow is an optional dependency, imported only here and only when an export runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from medml_cli.config.yaml_io import load_written_yaml
from medml_cli.errors import MedmlUsageError, RunFailedError, RunNotUsableError
from medml_cli.jsonio import read_run_json
from medml_cli.runs.directory import open_completed_run, pid_alive
from medml_cli.runs.index import flatten, is_sweep_dir, resolve_run, show_run
from medml_cli.runs.records import read_card
from medml_cli.sweep.manifest import read_manifest

#: Where exports go when neither --tracking-uri nor MLFLOW_TRACKING_URI says: a SQLite
#: store in the current folder (MLflow 3 keeps its plain file store in maintenance mode).
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: MLflow's limits (mlflow.utils.validation): longer param values are cut with a marker.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_TAG_VALUE = 8000
TRUNCATED = "...[truncated by medml]"
#: Entities per log_batch call (MLflow refuses more than 100 params/tags or 1000 metrics).
BATCH = 100
#: Seconds the first request to an http(s) tracking server may take, without retries, so an
#: unreachable server is an error in seconds rather than after MLflow's minutes of retries.
PROBE_TIMEOUT = 5
#: Run files uploaded as artifacts (when present), and folders uploaded whole.
ARTIFACT_FILES = ("report.md", "report.html", "metrics.json", "config.yaml", "environment.json")
ARTIFACT_FOLDERS = ("plots", "model")
SWEEP_FILES = ("sweep.yaml", "sweep.json", "summary.csv", "leaderboard.csv")
#: What an evaluation folder (``medml evaluate``) uploads; its predictions.csv as a run's.
EVALUATION_FILES = ("metrics.json", "report.md", "report.html", "decision_curve.csv",
                    "sites.csv", "site_shift.csv", "subgroups.csv")
INSTALL_HINT = ('pip install -e ".[mlflow]" in a medml checkout, or pip install '
                '"medml[mlflow]"')

_INVALID_NAME = re.compile(r"[^\w./\- ]")


@dataclass
class ExportResult:
    """What happened to one medml run (or sweep) on export."""

    run: str
    path: str
    mlflow_run_id: str
    #: created; skipped (already exported); replaced (an unfinished export); updated (a
    #: sweep's parent, after the sweep was resumed)
    action: str
    experiment: str
    kind: str = "run"  # run, sweep, trial or evaluation
    parent: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the run's page on a tracking server (http/https stores only)
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (``--json``)."""
        return {"run": self.run, "path": self.path, "kind": self.kind, "action": self.action,
                "mlflow_run_id": self.mlflow_run_id, "experiment": self.experiment,
                "parent_run_id": self.parent, "notes": self.notes, "url": self.url}


@dataclass
class _Evaluation:
    """One finished ``medml evaluate`` folder of a run (``RUN/evaluations/<name>/``)."""

    path: Path
    info: dict[str, Any]
    key: str


@dataclass
class _Run:
    """A checked, completed run folder and what it records."""

    path: Path
    info: dict[str, Any]
    key: str
    sweep: str | None = None
    evaluations: list[_Evaluation] = field(default_factory=list)


@dataclass
class _Sweep:
    """A checked sweep folder, its manifest, its completed trials and the others."""

    path: Path
    manifest: dict[str, Any]
    key: str
    trials: list[_Run]
    left_out: list[str]


# --------------------------------------------------------------------------- names and values
def mlflow_name(name: str) -> str:
    """A medml metric or key name as MLflow accepts it: ``@`` becomes ``_at_``
    (``auroc@365`` -> ``auroc_at_365``), any other character MLflow refuses becomes ``_``."""
    return _INVALID_NAME.sub("_", name.replace("@", "_at_"))


def param_value(value: Any) -> str:
    """A config value as an MLflow param: strings as they are, everything else as JSON
    (``0.1``, ``true``, ``null``, ``["cleveland"]``)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _short_key(key: str) -> str:
    key = mlflow_name(key)
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{key[:MAX_KEY - 9]}~{digest}"


def config_params(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The flattened config (``model.C``, ``data.type``) as MLflow params, and the keys whose
    value was longer than MLflow allows and was cut (ending in :data:`TRUNCATED`)."""
    params: dict[str, str] = {}
    truncated: list[str] = []
    for key, value in flatten(config).items():
        text = param_value(value)
        if len(text) > MAX_PARAM_VALUE:
            text = text[:MAX_PARAM_VALUE - len(TRUNCATED)] + TRUNCATED
            truncated.append(key)
        params[_short_key(key)] = text
    return params, truncated


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def run_metrics(info: dict[str, Any]) -> dict[str, float]:
    """metrics.json's numeric metrics under their MLflow names, each CI as ``<name>_ci_low``
    and ``<name>_ci_high``, and the baseline's metrics as ``baseline/<name>``; values that
    are null (undefined on these data) are left out."""
    out: dict[str, float] = {}
    for name, value in info["metrics"].items():
        if (number := _number(value)) is not None:
            out[mlflow_name(name)] = number
    for name, bounds in (info.get("intervals") or {}).items():
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            continue
        for suffix, bound in zip(("ci_low", "ci_high"), bounds, strict=True):
            if (number := _number(bound)) is not None:
                out[f"{mlflow_name(name)}_{suffix}"] = number
    for name, value in (info.get("baseline") or {}).items():
        if (number := _number(value)) is not None:
            out[f"baseline/{mlflow_name(name)}"] = number
    return out


def _data_tags(digests: dict[str, str]) -> dict[str, str]:
    """``medml.data_sha256``: the file's sha256, or for several files the sha256 of their
    sorted ``name sha256`` lines; and one ``medml.data_sha256.<file>`` tag per file."""
    if not digests:
        return {}
    combined = next(iter(digests.values())) if len(digests) == 1 else hashlib.sha256(
        "".join(f"{n} {d}\n" for n, d in sorted(digests.items())).encode()).hexdigest()
    return {"medml.data_sha256": combined,
            **{_short_key(f"medml.data_sha256.{name}"): d for name, d in digests.items()}}


def run_tags(run: _Run) -> dict[str, str]:
    """The ``medml.*`` provenance tags of a run, and its MLflow run name."""
    info = run.info
    env = info["environment"]
    card_version = None
    with contextlib.suppress(RunNotUsableError):
        card_version = read_card(run.path / "model").medml_version
    tags = {
        "mlflow.runName": run.path.name,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": "medml",
        "medml.run_id": run.key,
        "medml.run_folder": str(run.path.resolve()),
        "medml.task": info.get("task"),
        "medml.problem": info.get("problem"),
        "medml.model": (info["config"].get("model") or {}).get("type")
        if isinstance(info["config"].get("model"), dict) else None,
        "medml.primary_metric": info.get("primary_metric"),
        "medml.synthetic": json.dumps(bool(info.get("synthetic"))),
        "medml.git_commit": env.get("git_commit"),
        "medml.git_dirty": json.dumps(env["git_dirty"]) if env.get("git_dirty") is not None
        else None,
        "medml.medml_version": env.get("packages", {}).get("medml") or card_version,
        "medml.sweep": run.sweep,
        **_data_tags(env.get("data_sha256") or {}),
    }
    return {k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items() if v is not None}


def _folder_time(name: str) -> int | None:
    """Milliseconds of the ``YYYYMMDD-HHMMSS`` stamp a folder name starts with (local time,
    as medml stamps it), or None."""
    with contextlib.suppress(ValueError):
        return int(datetime.strptime(name[:15], "%Y%m%d-%H%M%S").timestamp() * 1000)
    return None


def _millis(stamp: Any) -> int | None:
    if not isinstance(stamp, str):
        return None
    with contextlib.suppress(ValueError):
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    return None


def _digest(path: Path, names: tuple[str, ...]) -> str:
    digest = hashlib.sha256(path.name.encode())
    for name in names:
        digest.update(b"\0" + name.encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update((path / name).read_bytes())
    return digest.hexdigest()[:32]


# --------------------------------------------------------------------------- checking inputs
def _check_run(path: Path) -> _Run:
    path = open_completed_run(path)
    info = show_run(path)  # every record read strictly: a damaged one is an error here
    read_card(path / "model")  # and the card checked against the model folder's manifest
    return _Run(path=path, info=info, key=_digest(path, ("config.yaml", "metrics.json")),
                sweep=info["sweep"], evaluations=_check_evaluations(path))


def _check_evaluations(run: Path) -> list[_Evaluation]:
    """The run's finished evaluation folders, oldest first; one whose metrics.json cannot
    be read stops the export before anything is sent (``.tmp-`` folders are unfinished)."""
    folder = run / "evaluations"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        info = read_run_json(path / "metrics.json", dict, what="an evaluation's metrics",
                             fix=f"remove the damaged folder {path}, or run `medml evaluate` "
                                 "again")
        if not isinstance(info.get("metrics"), dict):
            raise RunNotUsableError(
                f"{path / 'metrics.json'} has no `metrics` block, so it is not a medml "
                f"evaluation. Fix: remove the folder {path}, or run `medml evaluate` again.")
        found.append(_Evaluation(path=path, info=info, key=_digest(path, ("metrics.json",))))
    return found


def _check_sweep(path: Path) -> _Sweep:
    try:
        manifest = read_manifest(path)
    except RunNotUsableError as exc:
        # its reader words problems for --resume; the facts and the fix are the same
        raise RunNotUsableError(str(exc).replace("cannot resume", "cannot export")) from None
    if manifest.get("state") == "running" and pid_alive(manifest.get("pid")):
        raise RunNotUsableError(
            f"sweep {path.name} is still running (pid {manifest['pid']}); export it once it "
            "has ended, so its parent run records the final leaderboard.")
    trials, left_out = [], []
    for trial in manifest["trials"]:
        if trial["status"] != "completed" or not trial.get("run_dir"):
            left_out.append(f"trial {trial['id']} is {trial['status']}; not exported")
            continue
        trials.append(_check_run(path / trial["run_dir"]))
    if not trials:
        raise RunNotUsableError(f"sweep {path.name} has no completed trial to export "
                                f"({'; '.join(left_out)}).")
    return _Sweep(path=path, manifest=manifest, key=_digest(path, ("sweep.yaml",)),
                  trials=trials, left_out=left_out)


def check_targets(refs: list[str], runs_dir: Path | None) -> list[_Run | _Sweep]:
    """Each reference (a run or sweep folder, or a run's name under ``runs_dir``) checked to
    be a completed run or a finished sweep, before anything is sent to MLflow."""
    targets: list[_Run | _Sweep] = []
    for ref in refs:
        path = Path(ref)
        if not is_sweep_dir(path) and runs_dir is not None and is_sweep_dir(Path(runs_dir) / ref):
            path = Path(runs_dir) / ref
        if is_sweep_dir(path):
            targets.append(_check_sweep(path))
            continue
        targets.append(_check_run(resolve_run(ref, runs_dir)))
    return targets


# --------------------------------------------------------------------------- MLflow
def _import_mlflow() -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise MedmlUsageError(
            "exporting to MLflow needs the mlflow package, which is not installed (it is an "
            f"optional extra of medml). Install it with {INSTALL_HINT}, then run the export "
            "again.") from None
    return MlflowClient


def tracking_uri(uri: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else :data:`DEFAULT_TRACKING_URI`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


@contextlib.contextmanager
def _fail_fast() -> Iterator[None]:
    """No retries and a short timeout for the first request (MLflow reads both settings
    per request), unless the user has set them."""
    saved = {name: os.environ.get(name) for name in
             ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(PROBE_TIMEOUT))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _unusable_store(uri: str, exc: BaseException) -> MedmlUsageError:
    full = " ".join(str(exc).split())
    detail = full[:300] or type(exc).__name__
    if _is_file_store(uri) and "maintenance mode" in detail:
        return MedmlUsageError(
            f"the tracking URI {uri} is an MLflow file store, which this MLflow refuses "
            "(its filesystem backend is in maintenance mode). Use a local database instead, "
            "e.g. --tracking-uri sqlite:///mlflow.db (the default), or set "
            "MLFLOW_ALLOW_FILE_STORE=true to keep using the file store.")
    if uri.startswith(("http://", "https://")) and any(
            sign in full for sign in ("Max retries", "Connection", "timed out", "Timeout")):
        reason = next((why for why in ("Connection refused", "timed out",
                                       "Name or service not known", "No route to host")
                       if why in full), "no connection")
        return MedmlUsageError(
            f"no MLflow tracking server answered at {uri} ({reason}; medml waits "
            f"{PROBE_TIMEOUT} s and does not retry). Start the server (e.g. `mlflow server "
            "--backend-store-uri sqlite:///mlflow.db --port 5000`), check the address, or "
            "export to a local store with --tracking-uri sqlite:///mlflow.db.")
    return MedmlUsageError(
        f"cannot use the MLflow tracking URI {uri}: {detail}. Check the address (a server "
        "as http://HOST:PORT, or a local store as sqlite:///PATH/mlflow.db) and pass it with "
        "--tracking-uri or MLFLOW_TRACKING_URI.")


def _artifact_location(uri: str, experiment: str) -> str | None:
    """For a local SQLite store, artifacts beside the database (MLflow's default, ./mlruns,
    is relative to wherever the command happens to run)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlartifacts" / mlflow_name(experiment)).as_uri()


class _Exporter:
    """One connection to a tracking store, and the experiments used so far."""

    def __init__(self, uri: str, experiment: str | None, with_predictions: bool) -> None:
        client_class = _import_mlflow()
        logging.getLogger("alembic").setLevel(logging.WARNING)  # schema-creation chatter
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        self.uri = uri
        self.experiment = experiment
        self.with_predictions = with_predictions
        self.experiments: dict[str, str] = {}
        try:
            with _fail_fast():
                self.client = client_class(tracking_uri=uri)
                self.client.search_experiments(max_results=1)
        except Exception as exc:  # whatever the store's driver raises: its text says why
            raise _unusable_store(uri, exc) from None

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the tracking server's UI (None for a database or file store)."""
        if not self.uri.startswith(("http://", "https://")):
            return None
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created (artifacts beside a SQLite store) if new."""
        if name not in self.experiments:
            found = self.client.get_experiment_by_name(name)
            if found is not None and found.lifecycle_stage == "deleted":
                raise MedmlUsageError(
                    f"MLflow experiment '{name}' is deleted in {self.uri}; restore it "
                    "(mlflow experiments restore) or pass another --experiment.")
            self.experiments[name] = found.experiment_id if found is not None else \
                self.client.create_experiment(name, _artifact_location(self.uri, name))
        return self.experiments[name]

    def _existing(self, experiment_id: str, key: str) -> tuple[Any | None, int]:
        """The FINISHED MLflow run already exported under ``key`` (or None), and how many
        unfinished ones (exports that died halfway) were deleted so that it is replaced."""
        runs = self.client.search_runs([experiment_id],
                                       filter_string=f"tags.`medml.run_id` = '{key}'")
        finished = next((r for r in runs if r.info.status == "FINISHED"), None)
        stale = [r for r in runs if r.info.status != "FINISHED"]
        for run in stale:
            self.client.delete_run(run.info.run_id)
        return finished, len(stale)

    def _log(self, experiment_id: str, key: str, *, params: dict[str, str],
             metrics: dict[str, float], tags: dict[str, str], artifacts: list[tuple[Path, str]],
             start: int | None, end: int | None) -> tuple[str, str, Any]:
        """Create the MLflow run (or find it already exported) and return its id and action."""
        from mlflow.entities import Metric, Param

        existing, replaced = self._existing(experiment_id, key)
        if existing is not None:
            return existing.info.run_id, "skipped", existing
        run = self.client.create_run(experiment_id, start_time=start, tags=tags)
        run_id = run.info.run_id
        try:
            stamp = end or start or 0
            items = [Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), BATCH):
                self.client.log_batch(run_id, params=items[i:i + BATCH])
            values = [Metric(k, v, stamp, 0) for k, v in metrics.items()]
            for i in range(0, len(values), BATCH):
                self.client.log_batch(run_id, metrics=values[i:i + BATCH])
            for path, folder in artifacts:
                if path.is_dir():
                    self.client.log_artifacts(run_id, str(path), folder)
                else:
                    self.client.log_artifact(run_id, str(path), folder or None)
            self.client.set_terminated(run_id, "FINISHED", end_time=end)
        except BaseException:
            with contextlib.suppress(Exception):  # the next export replaces it
                self.client.set_terminated(run_id, "FAILED")
            raise
        return run_id, "replaced" if replaced else "created", None

    def export_run(self, run: _Run, *, parent: str | None = None,
                   experiment: str | None = None) -> list[ExportResult]:
        """Log one completed run (as a child of ``parent`` when given), then each of its
        evaluations as a child of it."""
        name = experiment or self.experiment or run.info.get("task") or "medml"
        experiment_id = self.experiment_id(name)
        params, truncated = config_params(run.info["config"])
        tags = run_tags(run)
        if truncated:
            tags["medml.truncated_params"] = ", ".join(truncated)[:MAX_TAG_VALUE]
        if parent:
            tags["mlflow.parentRunId"] = parent
        artifacts = [(run.path / f, "") for f in ARTIFACT_FILES if (run.path / f).is_file()]
        artifacts += [(run.path / d, d) for d in ARTIFACT_FOLDERS if (run.path / d).is_dir()]
        if self.with_predictions and (run.path / "predictions.csv").is_file():
            artifacts.append((run.path / "predictions.csv", ""))
        status = run.info["status"]
        run_id, action, existing = self._log(
            experiment_id, run.key, params=params, metrics=run_metrics(run.info), tags=tags,
            artifacts=artifacts, start=_millis(status.get("started")),
            end=_millis(status.get("ended")))
        notes = [f"config values cut to MLflow's {MAX_PARAM_VALUE} characters: "
                 f"{', '.join(truncated)}"] if truncated else []
        if existing is not None and parent and \
                existing.data.tags.get("mlflow.parentRunId") != parent:
            # exported on its own before: now linked under its sweep, still one run
            self.client.set_tag(run_id, "mlflow.parentRunId", parent)
            notes.append("linked to its sweep's parent run")
        result = ExportResult(run=run.path.name, path=str(run.path), mlflow_run_id=run_id,
                              action=action, experiment=name,
                              kind="trial" if run.sweep else "run", parent=parent, notes=notes,
                              url=self.run_url(experiment_id, run_id))
        return [result, *(self.export_evaluation(e, run, run_id, experiment_id, name)
                          for e in run.evaluations)]

    def export_evaluation(self, evaluation: _Evaluation, run: _Run, run_id: str,
                          experiment_id: str, experiment: str) -> ExportResult:
        """One ``medml evaluate`` folder as a child of its run's MLflow run: what was scored
        as params, its metrics and CIs, its report and tables (predictions on request)."""
        info = evaluation.info
        params, _ = config_params({"evaluation": info.get("evaluation"),
                                   "data": info.get("data")})
        tags = {"mlflow.runName": f"{run.path.name}/{evaluation.path.name}",
                "mlflow.source.name": "medml", "mlflow.parentRunId": run_id,
                "medml.kind": "evaluation", "medml.run_id": evaluation.key,
                "medml.evaluation_of": run.key,
                "medml.run_folder": str(evaluation.path.resolve()),
                "medml.task": str(info.get("task")), "medml.problem": str(info.get("problem")),
                "medml.synthetic": json.dumps(bool(info.get("synthetic")))}
        names = [*EVALUATION_FILES, *(["predictions.csv"] if self.with_predictions else [])]
        artifacts = [(evaluation.path / f, "") for f in names
                     if (evaluation.path / f).is_file()]
        if (evaluation.path / "plots").is_dir():
            artifacts.append((evaluation.path / "plots", "plots"))
        stamp = _folder_time(evaluation.path.name)
        child, action, _ = self._log(experiment_id, evaluation.key, params=params,
                                     metrics=run_metrics(info), tags=tags,
                                     artifacts=artifacts, start=stamp, end=stamp)
        return ExportResult(run=f"{run.path.name}/evaluations/{evaluation.path.name}",
                            path=str(evaluation.path), mlflow_run_id=child, action=action,
                            experiment=experiment, kind="evaluation", parent=run_id,
                            url=self.run_url(experiment_id, child))

    def _refresh(self, run_id: str, existing: Any, metrics: dict[str, float],
                 tags: dict[str, str], artifacts: list[tuple[Path, str]],
                 end: int | None) -> bool:
        """Bring a sweep's parent run up to date after the sweep was resumed (more trials,
        a new best): changed metrics logged as a new step, tags and sweep files replaced.
        Whether anything had changed."""
        from mlflow.entities import Metric, RunTag

        changed = {k: v for k, v in metrics.items() if existing.data.metrics.get(k) != v}
        new_tags = {k: v for k, v in tags.items() if existing.data.tags.get(k) != v}
        if not changed and not new_tags:
            return False
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, end or 0, 1) for k, v in changed.items()],
            tags=[RunTag(k, v) for k, v in new_tags.items()])
        for path, folder in artifacts:
            self.client.log_artifact(run_id, str(path), folder or None)
        return True

    def export_sweep(self, sweep: _Sweep) -> list[ExportResult]:
        """Log a sweep as a parent run and its completed trials as its children."""
        manifest = sweep.manifest
        name = self.experiment or manifest.get("task") or "medml"
        experiment_id = self.experiment_id(name)
        spec = load_written_yaml((sweep.path / "sweep.yaml").read_text(encoding="utf-8")) or {}
        params, truncated = config_params(spec if isinstance(spec, dict) else {})
        board = manifest.get("leaderboard") or {}
        best = board.get("best") or {}
        metric = mlflow_name(manifest["metric"])
        metrics = {f"best_{metric}": float(best["value"])} if _number(best.get("value")) \
            is not None else {}
        for suffix, bound in zip(("ci_low", "ci_high"), best.get("ci") or [], strict=False):
            if (number := _number(bound)) is not None:
                metrics[f"best_{metric}_{suffix}"] = number
        counts = manifest.get("counts") or {}
        tags = {"mlflow.runName": sweep.path.name, "mlflow.source.name": "medml",
                "medml.run_id": sweep.key, "medml.kind": "sweep",
                "medml.run_folder": str(sweep.path.resolve()), "medml.sweep": sweep.path.name,
                "medml.task": str(manifest.get("task")), "medml.sweep_metric": manifest["metric"],
                "medml.best_trial": str(best.get("id")),
                **{f"medml.trials_{state}": str(n) for state, n in counts.items()}}
        if truncated:
            tags["medml.truncated_params"] = ", ".join(truncated)[:MAX_TAG_VALUE]
        sessions = manifest.get("sessions") or [{}]
        artifacts = [(sweep.path / f, "") for f in SWEEP_FILES if (sweep.path / f).is_file()]
        end = _millis(sessions[-1].get("ended") or manifest.get("updated"))
        run_id, action, existing = self._log(
            experiment_id, sweep.key, params=params, metrics=metrics, tags=tags,
            artifacts=artifacts, start=_millis(manifest.get("created")), end=end)
        if existing is not None and self._refresh(run_id, existing, metrics, tags, artifacts,
                                                  end):
            action = "updated"
        results = [ExportResult(run=sweep.path.name, path=str(sweep.path), mlflow_run_id=run_id,
                                action=action, experiment=name, kind="sweep",
                                notes=list(sweep.left_out),
                                url=self.run_url(experiment_id, run_id))]
        for trial in sweep.trials:
            results += self.export_run(trial, parent=run_id, experiment=name)
        return results


def export_to_mlflow(refs: list[str], *, runs_dir: Path | None = None,
                     uri: str | None = None, experiment: str | None = None,
                     with_predictions: bool = False) -> list[ExportResult]:
    """Export runs and sweeps to MLflow; every input is checked before anything is sent.

    ``experiment`` defaults to each run's task name; ``uri`` to :func:`tracking_uri`'s
    choice. Raises MedmlUsageError (exit 2) for a run that is not completed or is damaged,
    a missing mlflow package, or a tracking store that cannot be used; RunFailedError
    (exit 1) when the store fails partway (running again completes the export).
    """
    if not refs:
        raise MedmlUsageError("give at least one run or sweep folder to export")
    if experiment is not None and not experiment.strip():
        raise MedmlUsageError("--experiment is empty; give an MLflow experiment name")
    targets = check_targets(refs, runs_dir)
    with _stdout_kept_for_medml():
        return _export_all(targets, _Exporter(tracking_uri(uri), experiment, with_predictions))


@contextlib.contextmanager
def _stdout_kept_for_medml() -> Iterator[None]:
    """MLflow writes "View run ... at: URL" to stdout after each run it logs to a tracking
    server, which would break `--json` and the one-line-per-run output: its own switch turns
    that off (unless the user set it), and anything it still prints goes to stderr. The URL
    is in medml's own result instead."""
    name = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    saved = os.environ.get(name)
    os.environ.setdefault(name, "true")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is None:
            os.environ.pop(name, None)


def _export_all(targets: list[_Run | _Sweep], exporter: _Exporter) -> list[ExportResult]:
    """Every checked target to ``exporter``'s store; a store failing partway is exit 1."""
    from mlflow.exceptions import MlflowException

    results: list[ExportResult] = []
    for target in targets:
        try:
            if isinstance(target, _Sweep):
                results += exporter.export_sweep(target)
            else:
                results += exporter.export_run(target)
        except (MlflowException, OSError) as exc:
            done = "; ".join(f"{r.run} -> {r.mlflow_run_id}" for r in results) or "none"
            detail = " ".join(str(exc).split())[:300]
            raise RunFailedError(
                f"the export of {target.path.name} to {exporter.uri} failed: {detail}. "
                f"Exported before it: {done}. Run the same command again: finished exports "
                "are skipped and the unfinished one is replaced.") from None
    return results

