"""Expanding a sweep file into trials: ``base:`` merging, grid x random draws x seeds, checks of
swept keys, trial ids (sha256 of the resolved YAML) and the size limit."""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import random
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medml_cli.config.overrides import CONFIG_KEY, NotASectionError, set_by_path
from medml_cli.config.search_space import DISTRIBUTIONS, Choice, IntUniform, LogUniform, Uniform
from medml_cli.config.yaml_io import load_written_yaml
from medml_cli.errors import ConfigError
from medml_cli.sweep.spec import ID_LENGTH, MAX_TRIALS, RandomSearch, Sweep, SweepBlock, Trial


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
                    owner = DISTRIBUTIONS.get((spec or {}).get("distribution"), Uniform)
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
        if isinstance(spec, Choice):
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
    if isinstance(spec, Choice):
        return copy.deepcopy(rng.choice(spec.values))
    if isinstance(spec, IntUniform):
        return rng.randint(spec.low, spec.high)
    if isinstance(spec, LogUniform):
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
    from medml_cli.plugins import load_plugins
    from medml_cli.registry import MODELS, TASKS, did_you_mean

    load_plugins()
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

    task = load_written_yaml(trials[0].config_yaml)["task"]
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


def describe_trials(sweep: Sweep) -> list[dict[str, Any]]:
    """The trials as plain records (for --dry-run)."""
    return [{"id": t.id, "params": t.params, "seed": t.seed, "dropped": t.dropped}
            for t in sweep.trials]
