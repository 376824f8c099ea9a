"""Reproducible sweeps: many trials from one YAML file, run locally or on Dask, resumable.

A sweep file is an ordinary experiment config (optionally ``base: other.yaml``, read relative
to the sweep file and merged *under* the file's own keys) plus a top-level ``sweep:`` block::

    task: heart-disease
    data: {type: uci-heart-disease, sites: [cleveland]}
    model: {type: random-forest}
    sweep:
      name: heart-disease-models        # default: the file's stem
      grid:                             # cartesian product of dotted parameters
        model.type: [svm, random-forest]
        model.C: [0.1, 1.0]             # not a random-forest field: dropped for those trials
      random:                           # random search, drawn once with its own seed
        trials: 4
        seed: 0
        parameters:
          model.C: {distribution: log-uniform, low: 0.01, high: 10}
          model.n_estimators: {distribution: choice, values: [100, 300]}
      seeds: [0, 1, 2]                  # every trial once per seed (sets `seed`)
      metric: auroc                     # leaderboard metric; default: the task's primary one
      conditions:                       # parameters that only apply to some trials
        model.C: {model.type: [svm, logistic-regression]}

Distributions: ``uniform`` and ``log-uniform`` (``low``, ``high``), ``int-uniform``
(``low``..``high`` inclusive) and ``choice`` (``values``). Trials = grid points x random
draws x seeds. A swept ``model.*`` key that is not a field of a trial's model type is dropped
for that trial (and recorded), as are base ``model`` keys when the grid changes
``model.type``. Every trial is a complete, validated config; its id is the first 12 hex
digits of the sha256 of its resolved YAML, so identical trials collapse into one and ids are
stable across machines and invocations. Relative paths (``data.path``) resolve against the
sweep file's folder.

Each trial runs ``python -m medml_cli --quiet train configs/<id>.yaml --runs-dir trials
--name t-<id> --json`` in its own process, so a crashing trial cannot take the sweep down.
The sweep folder ``<runs_dir>/<YYYYmmdd-HHMMSS>-sweep-<name>/`` holds ``sweep.yaml`` (the
file as given, overrides applied), ``configs/<id>.yaml``, ``trials/`` (ordinary run folders),
``logs/<id>.log`` (each trial's stdout and stderr), ``sweep.json`` (the manifest, rewritten
atomically after every change), ``summary.csv`` and ``leaderboard.csv``.

Executors
---------
``local`` (default): a thread pool of ``workers`` threads, each driving one trial process.
When ``workers > 1`` each trial's BLAS/OpenMP thread count is capped at cores / workers
(unless already set), so parallel trials do not oversubscribe the CPU.

``dask``: one task per trial on a ``distributed`` cluster; the task runs the same command on
the worker. Without ``scheduler`` medml starts a ``LocalCluster(n_workers=workers,
threads_per_worker=1, processes=True)`` and stops it afterwards. With ``scheduler`` it
connects to an existing one: ``tcp://host:8786`` or a scheduler file (``dask scheduler
--scheduler-file sched.json``). Workers must see the sweep folder at the same path (a shared
filesystem) and have medml installed.

Slurm / PBS via dask-jobqueue (not a medml dependency; ``pip install dask-jobqueue``)::

    # on the login node, in a long-lived Python session or script
    from dask_jobqueue import SLURMCluster          # or PBSCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00",
                           queue="short", job_extra_directives=["--cpus-per-task=1"])
    cluster.scale(jobs=16)                           # or cluster.adapt(maximum_jobs=32)
    print(cluster.scheduler_address)                 # tcp://10.0.0.5:8786

    medml sweep sweep.yaml --executor dask --scheduler tcp://10.0.0.5:8786 --runs-dir /shared/runs

or without Python: ``dask scheduler --scheduler-file /shared/sched.json`` on the login node,
``sbatch --array=1-16 --wrap "dask worker --scheduler-file /shared/sched.json --nthreads 1"``,
then ``--scheduler /shared/sched.json``.

Resume
------
``resume=SWEEP_DIR`` re-reads ``sweep.json``: completed trials whose run folder still holds a
completed run are skipped; failed, interrupted, pending and running-but-dead trials run
again (a completed run folder left by a trial whose sweep was killed before it could record
it is adopted instead of re-run). ``fail_fast`` stops starting trials after the first
failure; trials not started stay ``pending``.

One process at a time: a sweep session holds an exclusive ``flock`` on ``sweep.lock`` in its
folder (the file names the holder's pid, host and start time), so a second ``--resume`` of a
running sweep is refused (exit 2) instead of running its pending trials again; the kernel
drops the lock when its holder dies, so a killed sweep never blocks. A damaged ``sweep.json``
or trial config is refused field by field (exit 2) before anything runs.

Stopping: Ctrl-C or SIGTERM (``errors.Terminated``) stops every running trial process and its
children (a moment to stop on their own, then SIGTERM, then SIGKILL after
:data:`STOP_GRACE` s), on the local pool and on Dask workers (an abort file in the sweep
folder), records them ``interrupted`` for ``--resume``, and exits 130 (143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import io
import itertools
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medml_cli.config.overrides import CONFIG_KEY, NotASectionError, set_by_path
from medml_cli.config.sections import NAME_PATTERN
from medml_cli.errors import ConfigError, MedmlUsageError, RunNotUsableError
from medml_cli.jsonio import read_json, write_json, write_text_atomic
from medml_cli.runs.directory import pid_alive
from medml_cli.schemas import StrictModel
from medml_cli.tasks.base import LOWER_IS_BETTER

STATES = ("pending", "running", "completed", "failed", "interrupted")
MAX_TRIALS = 10_000
ID_LENGTH = 12

ProgressFn = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- the sweep block
class _Uniform(StrictModel):
    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> _Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class _LogUniform(_Uniform):
    distribution: Literal["log-uniform"]  # type: ignore[assignment]
    low: float = Field(gt=0)


class _IntUniform(StrictModel):
    distribution: Literal["int-uniform"]
    low: int
    high: int

    @model_validator(mode="after")
    def _order(self) -> _IntUniform:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class _Choice(StrictModel):
    distribution: Literal["choice"]
    values: list[Any] = Field(min_length=1)


DISTRIBUTIONS = {"uniform": _Uniform, "log-uniform": _LogUniform, "int-uniform": _IntUniform,
                 "choice": _Choice}
Distribution = Annotated[Union[_Uniform, _LogUniform, _IntUniform, _Choice],  # noqa: UP007
                         Field(discriminator="distribution")]


class RandomSearch(StrictModel):
    """Random search: ``trials`` draws of ``parameters``, reproducible from ``seed``."""

    trials: int = Field(ge=1, le=MAX_TRIALS, description="Number of random draws.")
    seed: int = Field(0, ge=0, description="Seed of the draws (not the trials' `seed`).")
    parameters: dict[str, Distribution] = Field(min_length=1)


class SweepBlock(StrictModel):
    """The ``sweep:`` block of a sweep file."""

    name: str | None = Field(None, pattern=NAME_PATTERN, description="Default: file stem.")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    random: RandomSearch | None = None
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(None, min_length=1)
    metric: str | None = None
    conditions: dict[str, dict[str, Any]] = Field(default_factory=dict)


# --------------------------------------------------------------------------- results
@dataclass
class Trial:
    """One complete experiment of a sweep."""

    id: str
    params: dict[str, Any]
    seed: int
    config_yaml: str
    dropped: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    """An expanded sweep: its trials and how to rank them."""

    name: str
    metric: str
    trials: list[Trial]
    task: str = ""
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)
    sweep_yaml: str = ""
    duplicates: int = 0

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


@dataclass
class SweepResult:
    """What :func:`run_sweep` did."""

    path: Path
    manifest: dict[str, Any]
    counts: dict[str, int]
    leaderboard: dict[str, Any]

    @property
    def all_succeeded(self) -> bool:
        return self.counts.get("completed", 0) == len(self.manifest["trials"])


# --------------------------------------------------------------------------- expansion
def _sweep_error(source: str, exc: ValidationError, lines: dict[tuple, int],
                 data: dict[str, Any]) -> ConfigError:
    """pydantic errors in the sweep block -> one line per problem, naming sweep.* paths."""
    from medml_cli.registry import did_you_mean

    problems = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        # tagged unions put the tag in loc: (random, parameters, model.C, uniform, low)
        if loc[:2] == ["random", "parameters"] and len(loc) > 3 and loc[3] in DISTRIBUTIONS:
            del loc[3]
        if loc and isinstance(loc[-1], str) and loc[-1].startswith("function-"):
            loc.pop()
        path = ".".join(["sweep", *map(str, loc)])
        kind = err["type"]
        if kind == "extra_forbidden":
            owner: Any = SweepBlock
            if loc[:1] == ["random"]:
                owner = RandomSearch
                if len(loc) > 3:
                    spec = ((data.get("random") or {}).get("parameters") or {}).get(loc[2])
                    owner = DISTRIBUTIONS.get((spec or {}).get("distribution"), _Uniform)
            valid = list(owner.model_fields)
            text = (f"{path}: unknown key{did_you_mean(str(loc[-1]), valid)} "
                    f"(valid keys: {', '.join(valid)})")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            tag = err.get("ctx", {}).get("tag")
            names = list(DISTRIBUTIONS)
            text = (f"{path}.distribution: " + (
                "missing" if kind == "union_tag_not_found"
                else f"'{tag}' is not a distribution{did_you_mean(str(tag), names)}")
                + f" (valid: {', '.join(names)})")
        elif kind == "less_than_equal" and loc == ["random", "trials"]:
            text = (f"{path}: {err.get('input')!r} random trials is over the limit of "
                    f"{MAX_TRIALS:,} trials per sweep; nothing was drawn or run. Fix: draw "
                    "fewer, or split the search into several sweeps")[:300]
        else:
            message = str(err.get("ctx", {}).get("error", err["msg"])).rstrip(".")
            text = f"{path}: {message}; got {err.get('input')!r}"[:300]
        full = ("sweep", *loc)
        line = next((lines[full[:n]] for n in range(len(full), 0, -1) if full[:n] in lines),
                    None)
        problems.append(text + (f" [line {line}]" if line else ""))
    return ConfigError(source, problems)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``top`` over ``base``; a section whose ``type`` changes is replaced whole,
    since another type's keys would not be valid for it."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and \
                value.get("type", old.get("type")) == old.get("type"):
            out[key] = _merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_with_base(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    from medml_cli.config.loader import read_config_file

    data, _ = read_config_file(path)
    base_ref = data.pop("base", None)
    if base_ref is None:
        return data
    return _merge(_resolve_base(path, base_ref, seen), data)


def _resolve_base(path: Path, base_ref: Any, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise ConfigError(str(path), [f"base: expected a file name, got {base_ref!r}"])
    base_path = (path.resolve().parent / base_ref).resolve()
    if base_path in seen or base_path == path.resolve():
        raise ConfigError(str(path), [f"base: '{base_ref}' includes itself (a cycle)"])
    if not base_path.exists():
        raise ConfigError(str(path), [f"base: '{base_ref}' not found (looked for {base_path}; "
                                      "relative to the sweep file's folder)"])
    data = _read_with_base(base_path, (*seen, path.resolve()))
    if "sweep" in data:
        raise ConfigError(str(base_path), ["sweep: a base is a plain experiment config; move "
                                           "the sweep block into the sweep file"])
    return data


def _get(data: dict[str, Any], parts: list[str]) -> Any:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(data: dict[str, Any], parts: list[str], value: Any, source: str, key: str) -> None:
    try:
        set_by_path(data, parts, copy.deepcopy(value))
    except NotASectionError as exc:
        raise ConfigError(source, [f"sweep parameter {key}: {exc}"]) from None


def _section_type(data: dict[str, Any], section: str, task: Any) -> str | None:
    """model.type / data.type of a config mapping, falling back on the task preset."""
    from medml_cli.registry import TASKS

    value = _get(data, [section, "type"])
    if value is None and isinstance(task, str) and task in TASKS:
        spec = TASKS.get(task)
        default = spec.default_model if section == "model" else spec.default_data
        value = (default or {}).get("type")
    return value


def _candidate_types(section: str, data: dict[str, Any], block: SweepBlock) -> set[str]:
    types = {_section_type(data, section, data.get("task"))}
    types.update(block.grid.get(f"{section}.type", []))
    if block.random is not None:
        spec = block.random.parameters.get(f"{section}.type")
        if isinstance(spec, _Choice):
            types.update(spec.values)
    return {t for t in types if isinstance(t, str)}


def _check_path(key: str, where: str, data: dict[str, Any], block: SweepBlock) -> str | None:
    """Why a dotted parameter path cannot be a config key, or None when it can."""
    from medml_cli.config.sections import experiment_config_class
    from medml_cli.registry import DATASETS, MODELS, did_you_mean

    parts = key.split(".")
    if not all(CONFIG_KEY.match(p) for p in parts):
        return f"{where}.{key}: '{key}' is not a dotted path of keys (e.g. model.C)"
    root = experiment_config_class()
    top = list(root.model_fields)
    if parts[0] not in top:
        return (f"{where}.{key}: '{parts[0]}' is not a config key"
                f"{did_you_mean(parts[0], top)} (valid: {', '.join(top)})")
    if len(parts) == 1:
        return None
    if parts[0] in ("model", "data"):
        registry = MODELS if parts[0] == "model" else DATASETS
        fields: list[str] = []
        for name in sorted(_candidate_types(parts[0], data, block)):
            if name in registry:
                fields += [f for f in registry.entry(name).config.model_fields if f not in fields]
        if fields and parts[1] not in fields:
            return (f"{where}.{key}: '{parts[1]}' is not a field of any {parts[0]} type in this "
                    f"sweep{did_you_mean(parts[1], fields)} (fields: {', '.join(fields)})")
        return None
    annotation = root.model_fields[parts[0]].annotation
    fields = list(getattr(annotation, "model_fields", {}))
    if not fields:
        return f"{where}.{key}: '{parts[0]}' is a single value; sweep it as '{parts[0]}'"
    if parts[1] not in fields:
        return (f"{where}.{key}: '{parts[1]}' is not a key of {parts[0]}"
                f"{did_you_mean(parts[1], fields)} (valid: {', '.join(fields)})")
    return None


def _draw(spec: Any, rng: random.Random) -> Any:
    if isinstance(spec, _Choice):
        return copy.deepcopy(rng.choice(spec.values))
    if isinstance(spec, _IntUniform):
        return rng.randint(spec.low, spec.high)
    if isinstance(spec, _LogUniform):
        value = math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
    else:
        value = rng.uniform(spec.low, spec.high)
    # 6 significant digits: readable in tables and file names, still a fine-grained search
    return float(f"{value:.6g}")


def _describe(params: dict[str, Any], seed: int | None = None) -> str:
    text = ", ".join(f"{k}={v}" for k, v in params.items()) or "base config"
    return text + (f", seed={seed}" if seed is not None else "")


def sweep_size(block: SweepBlock) -> int:
    """How many trials ``block`` expands to before duplicates are removed, counted from the
    lengths of its lists (nothing is built, so an absurd grid costs nothing to refuse)."""
    n_grid = math.prod(len(values) for values in block.grid.values())  # 1 for no grid
    n_draws = block.random.trials if block.random is not None else 1
    n_seeds = len(block.seeds) if block.seeds else 1
    return n_grid * n_draws * n_seeds


def _check_size(source: str, block: SweepBlock) -> None:
    total = sweep_size(block)
    if total <= MAX_TRIALS:
        return
    factors = [f"sweep.grid.{key} ({len(values):,} values)" for key, values in block.grid.items()]
    if block.random is not None:
        factors.append(f"sweep.random.trials ({block.random.trials:,})")
    if block.seeds:
        factors.append(f"sweep.seeds ({len(block.seeds):,})")
    raise ConfigError(source, [
        f"sweep: {total:,} trials ({' x '.join(factors)}) is over the limit of "
        f"{MAX_TRIALS:,} trials per sweep; nothing was built or run. Fix: sweep fewer values "
        "(or seeds, or random trials), or split the search into several sweeps"])


def trial_id(config_yaml: str) -> str:
    """A trial's id: the start of the sha256 of its resolved config."""
    return hashlib.sha256(config_yaml.encode("utf-8")).hexdigest()[:ID_LENGTH]


def expand_sweep(path: Path, overrides: list[str] | None = None) -> Sweep:
    """Read a sweep file and expand it into complete, validated, de-duplicated trials.

    Raises ConfigError (exit 2) for a bad sweep block or any invalid trial, before anything
    runs.
    """
    from medml_cli.config.loader import config_to_yaml, read_config_file, validate_config_data
    from medml_cli.config.overrides import apply_overrides
    from medml_cli.plugins import load_builtins
    from medml_cli.registry import MODELS, TASKS, did_you_mean

    load_builtins()
    path = Path(path)
    source = str(path)
    overrides = list(overrides or [])
    raw, lines = read_config_file(path)
    raw, applied = apply_overrides(raw, overrides)
    block_data = raw.pop("sweep", None)
    if block_data is None:
        raise ConfigError(source, ["sweep: missing; a sweep file is an experiment config plus "
                                   "a `sweep:` block (e.g. `sweep: {grid: {model.type: [svm, "
                                   "random-forest]}}`); for one run use `medml train`"])
    if not isinstance(block_data, dict):
        raise ConfigError(source, [f"sweep: expected a mapping, got {block_data!r}"])
    try:
        block = SweepBlock.model_validate(block_data)
    except ValidationError as exc:
        raise _sweep_error(source, exc, lines, block_data) from None

    _check_size(source, block)

    base_ref = raw.pop("base", None)
    data = _merge(_resolve_base(path, base_ref, ()), raw) if base_ref is not None else raw

    random_keys = list(block.random.parameters) if block.random else []
    problems = []
    def at(*loc: str) -> str:
        line = lines.get(tuple(loc))
        return f" [line {line}]" if line else ""

    for where, keys in (("sweep.grid", block.grid), ("sweep.random.parameters", random_keys),
                        ("sweep.conditions", block.conditions)):
        for key in keys:
            problem = _check_path(key, where, data, block)
            if problem:
                problems.append(problem + at(*where.split("."), key))
    swept = [*block.grid, *random_keys]
    both = [k for k in block.grid if k in random_keys]
    if both:
        problems.append(f"sweep.grid.{both[0]}: also in sweep.random.parameters; sweep it in one")
    for key, condition in block.conditions.items():
        if key not in swept:
            problems.append(f"sweep.conditions.{key}: not a swept parameter"
                            f"{did_you_mean(key, swept)} (swept: {', '.join(swept) or 'none'})")
        for on in condition:
            problem = _check_path(on, f"sweep.conditions.{key}", data, block)
            if problem:
                problems.append(problem + at("sweep", "conditions", key, on))
    if block.seeds and "seed" in swept:
        problems.append("sweep.seeds: `seed` is also swept as a parameter; use one of them")
    if problems:
        raise ConfigError(source, problems)

    # sized by _check_size above: at most MAX_TRIALS points, so building them is cheap
    grid_points = [dict(zip(block.grid, values, strict=True))
                   for values in itertools.product(*block.grid.values())]
    draws: list[dict[str, Any]] = [{}]
    if block.random is not None:
        rng = random.Random(block.random.seed)
        draws = [{k: _draw(spec, rng) for k, spec in block.random.parameters.items()}
                 for _ in range(block.random.trials)]
    seeds: list[int | None] = list(block.seeds) if block.seeds else [None]

    trials: list[Trial] = []
    seen: set[str] = set()
    duplicates = 0
    base_model_type = _section_type(data, "model", data.get("task"))
    for point, draw, seed in itertools.product(grid_points, draws, seeds):
        params = {**point, **draw}
        merged = copy.deepcopy(data)
        dropped = []

        def value_of(key: str, params: dict[str, Any] = params,
                     merged: dict[str, Any] = merged) -> Any:
            if key in params:
                return params[key]
            parts = key.split(".")
            if parts[-1] == "type" and len(parts) == 2:
                return _section_type(merged, parts[0], merged.get("task"))
            return _get(merged, parts)

        for key, condition in block.conditions.items():
            if key in params and not all(
                    value_of(on) in (allowed if isinstance(allowed, list) else [allowed])
                    for on, allowed in condition.items()):
                params.pop(key)
                dropped.append(key)
        model_type = value_of("model.type")
        model_fields: Any = MODELS.entry(model_type).config.model_fields \
            if model_type in MODELS else None
        if model_fields is not None:
            for key in [k for k in params if k.startswith("model.")]:
                if key.split(".")[1] not in model_fields:
                    params.pop(key)
                    dropped.append(key)
            if model_type != base_model_type and isinstance(merged.get("model"), dict):
                # base hyperparameters of another model type would make this trial invalid
                for key in [k for k in merged["model"] if k not in model_fields]:
                    merged["model"].pop(key)
                    dropped.append(f"model.{key}")
        for key, value in params.items():
            _set(merged, key.split("."), value, source, key)
        if seed is not None:
            merged["seed"] = seed
        label = f"{source} (trial {_describe(params, seed)})"
        cfg = validate_config_data(merged, source=label, lines=lines, overrides=applied,
                                   base_dir=path.resolve().parent)
        text = config_to_yaml(cfg)
        tid = trial_id(text)
        if tid in seen:
            duplicates += 1
            continue
        seen.add(tid)
        trials.append(Trial(id=tid, params=params, seed=cfg.seed, config_yaml=text,
                            dropped=list(dict.fromkeys(dropped))))

    task = yaml.safe_load(trials[0].config_yaml)["task"]
    spec = TASKS.get(task)
    metric = block.metric or spec.primary_metric
    if metric not in spec.metrics:
        raise ConfigError(source, [f"sweep.metric: '{metric}' is not a metric of task '{task}'"
                                   f"{did_you_mean(metric, spec.metrics)} "
                                   f"(valid: {', '.join(spec.metrics)})"])
    name = block.name or re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:64] or "sweep"
    file_data = {**({"base": str((path.resolve().parent / base_ref).resolve())}
                    if base_ref is not None else {}),
                 **raw, "sweep": block_data}
    header = f"# medml sweep from {path.resolve()}\n"
    if overrides:
        header += "# overrides applied: " + " ".join(overrides) + "\n"
    return Sweep(name=name, metric=metric, trials=trials, task=task, source=path.resolve(),
                 overrides=overrides, duplicates=duplicates,
                 sweep_yaml=header + yaml.safe_dump(file_data, sort_keys=False,
                                                    allow_unicode=True))


# --------------------------------------------------------------------------- one trial
def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def trial_command(config_path: Path | str, trials_dir: Path | str, tid: str) -> list[str]:
    """The command that runs one trial: an ordinary ``medml train`` in a fresh interpreter."""
    return [sys.executable, "-m", "medml_cli", "--quiet", "train", str(config_path),
            "--runs-dir", str(trials_dir), "--name", f"t-{tid}", "--json"]


def _trial_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    # the child must import the same medml_cli as this process, installed or not
    package_parent = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH"))
                                        if p)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    return env


def _error_summary(stderr: str) -> str:
    """The message of a failed trial: its first line, joined to the next when that only
    introduces a list (``error: invalid config X:``)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Traceback", "File "))] or lines
    if not lines:
        return ""
    text = re.sub(r"^(error|failed|internal error): ", "", lines[0])
    if text.endswith(":") and len(lines) > 1:
        text += " " + lines[1].lstrip("- ")
    return text[:500]


def _find_run_dir(trials_dir: Path, tid: str, known: set[str]) -> Path | None:
    """The run folder a trial's process left, when it did not print it (failures)."""
    candidates = [p for p in trials_dir.glob(f"*t-{tid}-*") if p.is_dir() and p.name not in known]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


#: A terminal's Ctrl-C (or a scheduler's SIGTERM to the whole job) reaches the trials too:
#: they get this long to stop on their own before the sweep signals them, since a second
#: signal inside ``medml train``'s clean-up could keep it from renaming its run.
OWN_STOP_WAIT = 1.0
#: Then SIGTERM, and this long to stop cleanly before the trial and its children are killed.
STOP_GRACE = 10.0


def _process_tree(pid: int) -> list[Any]:
    """psutil handles of ``pid`` and its descendants. Taken while the parent lives: once it
    dies its children are re-parented and can no longer be found from it."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _running(proc: Any) -> bool:
    import psutil

    try:  # is_running() also compares start times, so a reused pid is not mistaken for it
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_trial_processes(pids: list[int], *, own_wait: float = OWN_STOP_WAIT,
                         grace: float = STOP_GRACE) -> None:
    """Stop trial processes and every process they started, for certain: give them
    ``own_wait`` s to stop on their own, then SIGTERM (``medml train`` stops as on Ctrl-C and
    renames its run ``-interrupted``; unlike SIGINT it is not ignored by trials of a sweep
    started in the background), then after ``grace`` s SIGKILL whatever is left of each
    process tree. A Ctrl-C while waiting skips straight to the kill."""
    import psutil

    roots = [tree[0] for pid in pids if (tree := _process_tree(pid))]
    known: dict[int, Any] = {}

    def collect() -> None:
        for root in roots:
            if _running(root):
                for proc in _process_tree(root.pid):
                    known.setdefault(proc.pid, proc)

    def wait(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(_running(r) for r in roots) and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        collect()
        wait(own_wait)
        collect()
        for root in roots:
            if _running(root):
                with contextlib.suppress(psutil.Error):
                    root.send_signal(signal.SIGTERM)
        wait(grace)
    finally:
        collect()
        for proc in known.values():
            if _running(proc):
                with contextlib.suppress(psutil.Error):
                    proc.kill()


def _kill_tree(pid: int) -> None:
    stop_trial_processes([pid], own_wait=0, grace=0)


def _watch_abort(proc: subprocess.Popen, marker: str) -> threading.Event:
    """Stop ``proc`` once the file ``marker`` exists (how an interrupted sweep reaches trials
    on Dask workers, which may be other machines sharing the folder). Set the returned event
    when the trial has ended."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if os.path.exists(marker):
                stop_trial_processes([proc.pid])
                return

    threading.Thread(target=watch, name=f"medml-abort-{proc.pid}", daemon=True).start()
    return done


def execute_trial(task: dict[str, Any], on_start: Callable[[subprocess.Popen], None] | None = None
                  ) -> dict[str, Any]:
    """Run one trial's process to the end and describe the outcome (never raises for a
    failing trial). ``task`` holds id, config, trials_dir, log, timeout, threads, known, and
    optionally ``abort``: a file whose appearance stops the trial."""
    tid = task["id"]
    trials_dir = Path(task["trials_dir"])
    started, t0 = _utc_now(), time.perf_counter()
    proc = subprocess.Popen(trial_command(task["config"], trials_dir, tid),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_trial_env(task.get("threads")))
    if on_start is not None:
        on_start(proc)
    ended = _watch_abort(proc, task["abort"]) if task.get("abort") else threading.Event()
    timed_out = False
    try:
        out, err = proc.communicate(timeout=task.get("timeout"))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(proc.pid)  # its children too: one holding the pipes would hang us
        out, err = proc.communicate()
    except BaseException:
        stop_trial_processes([proc.pid])
        proc.communicate()
        raise
    finally:
        ended.set()
    result: dict[str, Any] = {
        "id": tid, "returncode": proc.returncode, "pid": proc.pid, "host": socket.gethostname(),
        "started": started, "ended": _utc_now(),
        "seconds": round(time.perf_counter() - t0, 3), "error": None, "run_dir": None,
        "metrics": None, "intervals": None,
    }
    if task.get("log"):
        with contextlib.suppress(OSError), open(task["log"], "a", encoding="utf-8") as handle:
            handle.write(f"--- trial {tid} started {started}, exit code {proc.returncode}\n"
                         f"--- stdout\n{out}--- stderr\n{err}")
    payload = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                payload = json.loads(line)
            break
    if proc.returncode == 0 and isinstance(payload, dict) and payload.get("run_dir"):
        result.update(status="completed", run_dir=payload["run_dir"],
                      metrics=payload.get("metrics"), intervals=payload.get("intervals"))
        return result
    found = _find_run_dir(trials_dir, tid, set(task.get("known") or ()))
    result["run_dir"] = str(found) if found else None
    if timed_out:
        result.update(status="failed", error=f"timed out after {task['timeout']:g} s; the "
                                             "trial's process was killed")
    elif proc.returncode in (130, 143, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL):
        result.update(status="interrupted",
                      error=_error_summary(err) or f"killed (exit code {proc.returncode})")
    else:
        result.update(status="failed",
                      error=_error_summary(err) or f"exit code {proc.returncode}")
    return result


def _dask_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Dask task: skip if the sweep has stopped (fail-fast), else run the trial process."""
    from distributed import Event, get_worker

    worker = get_worker()
    if Event(task["stop_event"]).is_set() or os.path.exists(task["abort"]):
        return {"id": task["id"], "status": "cancelled"}
    result = execute_trial(task)
    result["worker"] = worker.address
    return result


# --------------------------------------------------------------------------- the manifest
class Manifest:
    """sweep.json: rewritten atomically (temp file + os.replace) after every change; all
    changes go through one lock because trial threads report their start themselves."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.lock = threading.RLock()
        self.by_id = {t["id"]: t for t in data["trials"]}

    def update(self, tid: str, **fields: Any) -> None:
        with self.lock:
            self.by_id[tid].update(fields)
            self.save()

    def save(self) -> None:
        with self.lock:
            self.data["updated"] = _utc_now()
            self.data["counts"] = count_states(self.data["trials"])
            write_json(self.path, self.data)


def count_states(trials: list[dict[str, Any]]) -> dict[str, int]:
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
    from medml_cli.runs.directory import read_status

    status = read_status(run_dir) if run_dir.is_dir() else None
    if not (isinstance(status, dict) and status.get("state") == "completed"
            and (run_dir / "metrics.json").is_file()):
        return False
    if config_text is None:
        return True
    with contextlib.suppress(OSError):
        return (run_dir / "config.yaml").read_text(encoding="utf-8") == config_text
    return False


def _prepare_resume(path: Path, *, locked: bool = True) -> dict[str, Any]:
    """Read a sweep folder's manifest and decide which trials must run again. The caller
    holds the folder's :class:`SweepLock` (``locked``); without flock support the manifest's
    own pid is the only sign of a sweep still running."""
    path = Path(path)
    manifest = _read_manifest(path)
    here = socket.gethostname()
    if not locked and manifest.get("state") == "running" and manifest.get("host") == here \
            and pid_alive(manifest.get("pid")):
        raise SweepBusyError(f"sweep {path.name} is still running (pid {manifest['pid']}); "
                             "wait for it or stop it before resuming.")
    for trial in manifest["trials"]:
        text = _trial_config_text(path, trial)
        run_dir = path / trial["run_dir"] if trial.get("run_dir") else None
        if trial["status"] == "completed" and run_dir is not None and _completed_run(run_dir):
            continue
        if trial["status"] == "running" and _trial_process_alive(trial):
            raise SweepBusyError(
                f"trial {trial['id']} of sweep {path.name} is still running as pid "
                f"{trial['pid']} (left by the stopped sweep); wait for it or kill it, then "
                "resume.")
        # a trial that finished after its sweep was killed left a complete run: adopt it
        adopted = [p for p in (path / "trials").glob(f"*-t-{trial['id']}-*")
                   if not p.name.startswith(".") and _completed_run(p, text)]
        best = max(adopted, key=lambda p: p.stat().st_mtime) if adopted else None
        metrics = None
        if best is not None:
            with contextlib.suppress(OSError, ValueError):  # damaged: run the trial again
                metrics = read_json(best / "metrics.json")
        if best is not None and isinstance(metrics, dict):
            trial.update(status="completed", run_dir=_rel(best, path), error=None,
                         metrics=metrics.get("metrics"), intervals=metrics.get("intervals"))
            continue
        if trial["status"] == "running":
            trial["status"] = "interrupted"
            trial["error"] = trial.get("error") or "the sweep stopped while this trial ran"
        if trial["status"] != "pending":
            trial["attempts"].append({k: trial.get(k) for k in
                                      ("status", "run_dir", "error", "started", "ended")})
        trial["status"] = "pending"
    return manifest


# --------------------------------------------------------------------------- the folder lock
LOCK_NAME = "sweep.lock"


class SweepBusyError(RunNotUsableError):
    """Another process holds the sweep folder's lock (exit 2)."""


class SweepLock:
    """An exclusive ``flock`` on ``<sweep>/sweep.lock``, held for a whole sweep session, so two
    sessions never run the same pending trials. The kernel drops it when its holder dies
    (even by SIGKILL), so a killed sweep never blocks a resume; the file's text (pid, host,
    start time) only names the holder in the message."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.supported = True

    def __enter__(self) -> SweepLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no flock
            self.supported = False
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        except OSError as exc:
            raise RunNotUsableError(
                f"cannot open the lock file {self.path}: {exc.strerror}. A sweep needs write "
                "access to its folder; check its permissions.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise SweepBusyError(self._busy_message(holder)) from None
        except OSError:
            # a filesystem without flock (some network mounts): run unlocked, as before locks
            os.close(fd)
            self.supported = False
            return self
        self.fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _utc_now(),
                "command": " ".join(sys.argv)[:500]}
        with contextlib.suppress(OSError):  # only informative: never fail a sweep over it
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # the holder has gone; the file stays (see __init__)
        os.close(self.fd)  # closing the only descriptor releases the flock
        self.fd = None

    @staticmethod
    def _holder(fd: int) -> dict[str, Any]:
        # the holder may not have written its details yet (it takes the lock first)
        for _ in range(20):
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
                if isinstance(info, dict):
                    return info
            time.sleep(0.05)
        return {}

    def _busy_message(self, holder: dict[str, Any]) -> str:
        pid, host = holder.get("pid"), holder.get("host")
        started = holder.get("started")
        who = (f"pid {pid}" + (f" on host {host}" if host else "")
               + (f", started {started}" if started else "")) if pid else "details not written"
        stop = (f"stop it (kill {pid}" + (f" on {host}" if host and host != socket.gethostname()
                                         else "") + ")") if pid else "stop it"
        return (f"sweep folder {self.folder} is in use by another medml sweep ({who}; it holds "
                f"{self.path}). Two sweeps on one folder would run the same trials twice. "
                f"Wait for it to finish, or {stop}, then run `medml sweep --resume "
                f"{self.folder}` again.")


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


def _read_manifest(path: Path) -> dict[str, Any]:
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
    except OSError:
        return True  # no procfs: trust pid_alive
    return f"t-{trial['id']}" in command


def connect_dask(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """A ``distributed.Client``: to ``scheduler`` (address or scheduler file), or to a
    LocalCluster of ``workers`` single-threaded worker processes started here. Returns
    (client, cluster or None); the caller closes both."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MedmlUsageError("--executor dask needs dask.distributed: pip install "
                              "'dask[distributed]'") from None
    if scheduler is None:
        import logging

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        # the connect timeout is dask's distributed.comm.timeouts.connect (default 30 s)
        if Path(scheduler).is_file():
            return Client(scheduler_file=scheduler), None
        return Client(scheduler), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise MedmlUsageError(f"cannot connect to the Dask scheduler {scheduler}: {exc}. "
                              "Check the address (tcp://host:8786) or the scheduler file."
                              ) from None


# --------------------------------------------------------------------------- running
def run_sweep(
    sweep: Sweep | None = None,
    *,
    runs_dir: Path = Path("runs"),
    executor: Literal["local", "dask"] = "local",
    workers: int = 1,
    scheduler: str | None = None,
    resume: Path | None = None,
    fail_fast: bool = False,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Run every trial of ``sweep`` (or the unfinished ones of the sweep folder ``resume``)
    in separate processes; write the manifest, summary.csv and leaderboard.

    A failing trial is recorded and the rest go on (unless ``fail_fast``). Ctrl-C marks the
    running trials interrupted, leaves the rest pending, and re-raises KeyboardInterrupt.
    """
    if (sweep is None) == (resume is None):
        raise MedmlUsageError("give either a sweep (a sweep file) or resume=SWEEP_DIR")
    if executor not in ("local", "dask"):
        raise MedmlUsageError(f"unknown executor '{executor}'; use local or dask")
    if workers < 1:
        raise MedmlUsageError(f"workers must be at least 1, got {workers}")
    if timeout is not None and timeout <= 0:
        raise MedmlUsageError(f"timeout must be positive, got {timeout}")
    with contextlib.ExitStack() as stack:
        if resume is not None:
            path = Path(resume).resolve()
            _read_manifest(path)  # a folder that is not a sweep gets no lock file
            lock = stack.enter_context(SweepLock(path))  # before reading what to run
            data = _prepare_resume(path, locked=lock.supported)
        client, cluster = connect_dask(workers, scheduler) if executor == "dask" \
            else (None, None)
        if cluster is not None:
            stack.callback(_close_quietly, cluster)
        if client is not None:
            stack.callback(_close_quietly, client)  # the client first (LIFO)
        if sweep is not None:
            path, data = _create(sweep, Path(runs_dir))
            stack.enter_context(SweepLock(path))  # a fresh folder: nobody else holds it
        return _run(path, data, client, executor=executor, workers=workers,
                    scheduler=scheduler, resumed=resume is not None, fail_fast=fail_fast,
                    timeout=timeout, progress=progress)


def _close_quietly(resource: Any) -> None:
    with contextlib.suppress(Exception):
        resource.close()


def _run(path: Path, data: dict[str, Any], client: Any, *, executor: str, workers: int,
         scheduler: str | None, resumed: bool, fail_fast: bool, timeout: float | None,
         progress: ProgressFn | None) -> SweepResult:
    # trials sharing this machine get an even share of its cores (not on a remote cluster)
    threads = max(1, (os.cpu_count() or 1) // workers) \
        if workers > 1 and (executor == "local" or scheduler is None) else None
    data.update(state="running", pid=os.getpid(), host=socket.gethostname(),
                executor={"kind": executor, "workers": workers, "scheduler": scheduler,
                          "timeout": timeout, "threads_per_trial": threads})
    data["sessions"].append({"started": _utc_now(), "ended": None, "executor": executor,
                             "workers": workers, "resumed": resumed})
    manifest = Manifest(path / "sweep.json", data)
    manifest.save()
    todo = [t for t in data["trials"] if t["status"] != "completed"]
    runner = _SweepRunner(manifest, path, todo, fail_fast=fail_fast, timeout=timeout,
                          threads=threads, progress=progress)
    state = "interrupted"
    try:
        if executor == "local":
            runner.run_local(workers)
        else:
            runner.run_dask(client)
        state = "completed" if all(t["status"] == "completed" for t in data["trials"]) \
            else "failed"
    except BaseException as exc:
        exc.sweep_path = path  # type: ignore[attr-defined]  # the CLI says how to resume
        raise
    finally:
        with manifest.lock:
            for trial in data["trials"]:
                if trial["status"] == "running":  # only after Ctrl-C or a crash of ours
                    trial.update(status="interrupted", ended=_utc_now(),
                                 error=trial.get("error") or "the sweep was interrupted")
            data["state"] = state
            data["sessions"][-1]["ended"] = _utc_now()
            data["leaderboard"] = leaderboard(data)
            manifest.save()
        write_summary(path, data)
    return SweepResult(path=path, manifest=data, counts=count_states(data["trials"]),
                       leaderboard=data["leaderboard"])


class _SweepRunner:
    """Drives the trials of one sweep session through an executor."""

    def __init__(self, manifest: Manifest, path: Path, todo: list[dict[str, Any]], *,
                 fail_fast: bool, timeout: float | None, threads: int | None,
                 progress: ProgressFn | None) -> None:
        self.manifest = manifest
        self.path = path
        self.todo = todo
        self.fail_fast = fail_fast
        self.timeout = timeout
        self.threads = threads
        self.progress = progress
        self.done = len(manifest.data["trials"]) - len(todo)
        self.total = len(manifest.data["trials"])

    def task(self, trial: dict[str, Any]) -> dict[str, Any]:
        known = [Path(a["run_dir"]).name for a in trial["attempts"] if a.get("run_dir")]
        return {"id": trial["id"], "config": str(self.path / trial["config"]),
                "trials_dir": str(self.path / "trials"),
                "log": str(self.path / "logs" / f"{trial['id']}.log"),
                "timeout": self.timeout, "threads": self.threads, "known": known}

    def record(self, result: dict[str, Any]) -> bool:
        """Store a finished trial; True when the sweep should stop (fail-fast)."""
        fields = {k: result.get(k) for k in ("status", "error", "host", "pid", "started",
                                             "ended", "seconds", "metrics", "intervals")}
        fields["run_dir"] = _rel(result.get("run_dir"), self.path)
        if result.get("worker") is not None:
            fields["worker"] = result["worker"]
        self.manifest.update(result["id"], **fields)
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, f"trial {result['id']} {result['status']}")
        return self.fail_fast and result["status"] != "completed"

    def _report_start(self) -> None:
        if self.progress:
            self.progress(self.done, self.total, f"{self.done}/{self.total} trials")

    # ----------------------------------------------------------------- local threads
    def run_local(self, workers: int) -> None:
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        stop = threading.Event()  # start no more trials (fail-fast, Ctrl-C)
        abort = threading.Event()  # and kill the running ones (Ctrl-C)
        procs: dict[str, subprocess.Popen] = {}

        def work(trial: dict[str, Any]) -> dict[str, Any] | None:
            if stop.is_set():
                return None

            def on_start(proc: subprocess.Popen) -> None:
                procs[trial["id"]] = proc
                if abort.is_set():  # Ctrl-C came between the check above and this start
                    _kill_tree(proc.pid)
                self.manifest.update(trial["id"], status="running", pid=proc.pid,
                                     host=socket.gethostname(), started=_utc_now(),
                                     worker=threading.current_thread().name, error=None,
                                     run_dir=None, ended=None)

            try:
                return execute_trial(self.task(trial), on_start=on_start)
            finally:
                procs.pop(trial["id"], None)

        self._report_start()
        queue = iter(self.todo)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local")
        running: set[Future] = set()

        def submit_next() -> None:
            # one trial per free worker: with fail-fast nothing new starts after a failure
            trial = next(queue, None)
            if trial is not None and not stop.is_set():
                running.add(pool.submit(work, trial))

        try:
            for _ in range(workers):
                submit_next()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.discard(future)
                    result = future.result()
                    if result is not None and self.record(result):
                        stop.set()
                    submit_next()
        except BaseException:
            stop.set()
            abort.set()
            # every running trial and its children are gone before the sweep records them
            stop_trial_processes([proc.pid for proc in list(procs.values())])
            pool.shutdown(wait=True, cancel_futures=True)
            for future in running:  # keep what the stopped trials said (run folder, error)
                if future.done() and not future.cancelled() and future.exception() is None \
                        and future.result() is not None:
                    with contextlib.suppress(Exception):
                        self.record(future.result())
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # ----------------------------------------------------------------- dask
    def run_dask(self, client: Any) -> None:
        from distributed import Event, as_completed

        stop_name = f"medml-sweep-stop-{uuid.uuid4().hex}"
        # Ctrl-C/SIGTERM: a file every worker sees (they share the folder) and watches
        abort = self.path / f".abort-{uuid.uuid4().hex}"
        futures: dict[Any, dict[str, Any]] = {}
        try:
            stop = Event(stop_name, client=client)
            self._report_start()
            for trial in self.todo:
                spec = {**self.task(trial), "stop_event": stop_name, "abort": str(abort)}
                key = f"medml-trial-{trial['id']}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(_dask_trial, spec, key=key, pure=False)] = trial
                # dask does not tell the client when a task starts: "running" means submitted
                self.manifest.update(trial["id"], status="running", error=None, run_dir=None,
                                     worker=None, pid=None, started=None, ended=None)
            for future in as_completed(list(futures)):
                trial = futures[future]
                try:
                    result = future.result()
                except CancelledError:
                    self.manifest.update(trial["id"], status="pending")
                    continue
                except Exception as exc:  # the worker died, or the task could not run
                    result = {"id": trial["id"], "status": "failed", "ended": _utc_now(),
                              "error": f"dask: {type(exc).__name__}: {exc}"[:500]}
                if result.get("status") == "cancelled":
                    self.manifest.update(trial["id"], status="pending")
                    continue
                if self.record(result) and not stop.is_set():
                    stop.set()  # queued tasks see it and return without starting
        except BaseException:
            self._abort_dask(client, stop_name, abort, list(futures))
            raise
        finally:
            abort.unlink(missing_ok=True)

    def _abort_dask(self, client: Any, stop_name: str, abort: Path, futures: list[Any]) -> None:
        """Stop every trial of an interrupted Dask sweep: queued ones never start, running
        ones see the abort file and stop their process tree, and the sweep waits for them
        (a worker closed under a running trial would leave it orphaned)."""
        from distributed import Event, wait

        try:
            with contextlib.suppress(Exception):
                Event(stop_name, client=client).set()
            abort.touch()
            with contextlib.suppress(Exception):
                wait(futures, timeout=OWN_STOP_WAIT + STOP_GRACE + 5)
            for future in futures:  # keep what the stopped trials said (run folder, error)
                with contextlib.suppress(Exception):
                    result = future.result(timeout=1) if future.status == "finished" else {}
                    if result.get("status") not in (None, "cancelled") and \
                            self.manifest.by_id[result["id"]]["status"] == "running":
                        self.record(result)
        finally:
            with contextlib.suppress(Exception):
                client.cancel(futures)
            # a LocalCluster's trials are our descendants: none may outlive the sweep
            stop_trial_processes(self._local_trial_pids(), own_wait=0, grace=2)

    def _local_trial_pids(self) -> list[int]:
        """Trial processes of this sweep among this process's descendants."""
        import psutil

        trials_dir = str(self.path / "trials")
        pids = []
        for proc in _process_tree(os.getpid())[1:]:
            with contextlib.suppress(psutil.Error):
                command = proc.cmdline()
                if "medml_cli" in command and "train" in command and trials_dir in command:
                    pids.append(proc.pid)
        return pids


# --------------------------------------------------------------------------- summaries
def _metric_value(trial: dict[str, Any], metric: str) -> float | None:
    value = (trial.get("metrics") or {}).get(metric)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def leaderboard(manifest: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """Best trials by the sweep's metric, and mean and SD across seeds per parameter set."""
    metric = manifest["metric"]
    higher = metric not in LOWER_IS_BETTER
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
            "per_params": per_params}


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


def describe_trials(sweep: Sweep) -> list[dict[str, Any]]:
    """The trials as plain records (for --dry-run)."""
    return [{"id": t.id, "params": t.params, "seed": t.seed, "dropped": t.dropped}
            for t in sweep.trials]
