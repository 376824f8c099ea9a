"""The ``tune:`` block of an experiment config (hyperparameter tuning inside a run: nested
cross-validation for tabular tasks, a study on the validation images with pruning by epoch for
image tasks) and the checks that tie its search space to the registered models."""

from __future__ import annotations

import itertools
from typing import Any, Literal, Union

from pydantic import Field, ValidationError

from medml_cli.config.search_space import Choice, Distribution, IntUniform
from medml_cli.registry import MODELS, PROBLEMS, TASKS, did_you_mean
from medml_cli.schemas import StrictModel

#: A grid larger than this is a sweep, not a tune: every combination costs inner_splits fits
#: in every outer fold.
MAX_TUNE_TRIALS = 2_000

#: Inner folds of a tabular study when ``tune.inner_splits`` is not given.
DEFAULT_INNER_SPLITS = 5
#: Epochs every image trial runs before the pruner may stop it (``tune.pruning_warmup_epochs``).
DEFAULT_PRUNING_WARMUP_EPOCHS = 2
#: Trials an image study runs before the pruner compares against them (Optuna's default).
PRUNING_STARTUP_TRIALS = 5

#: A list is shorthand for ``{distribution: choice, values: [...]}`` (as in ``sweep.grid``).
TuneParameter = Union[Distribution, list[Any]]  # noqa: UP007


class TuneConfig(StrictModel):
    """Tuning inside a run. Tabular tasks: in every outer fold an Optuna study on the inner
    folds picks the hyperparameters; the shipped model is tuned the same way on all rows.
    Image tasks: one study fits the CNN on the training images and scores it on the
    validation images after every epoch, pruning poor trials; the test images are never seen
    by it."""

    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="Optuna sampler, seeded from the run's seed: tpe (Bayesian), "
                           "random, or grid (every combination of the listed values).")
    trials: int | None = Field(
        None, ge=1, le=MAX_TUNE_TRIALS,
        description="Trials per study (default 50 for tabular tasks, 20 for image tasks; "
                    "grid: the number of combinations).")
    metric: str | None = Field(
        None, description="What the study optimises (the inner folds, or an image task's "
                          "validation images); default: the task's primary metric.")
    inner_splits: int = Field(
        DEFAULT_INNER_SPLITS, ge=2, le=20,
        description="Inner cross-validation folds of a tabular study; image tasks tune on "
                    "their validation images instead (no inner folds).")
    pruner: Literal["median", "none"] | None = Field(
        None, description="Image tasks: stop a trial whose validation score after an epoch "
                          "is below the median of earlier trials at that epoch (median, the "
                          "default), or never (none). Tabular studies do not prune.")
    pruning_warmup_epochs: int | None = Field(
        None, ge=0, le=1000,
        description="Image tasks: epochs every trial runs before it may be pruned "
                    f"(default {DEFAULT_PRUNING_WARMUP_EPOCHS}).")
    parameters: dict[str, TuneParameter] = Field(
        min_length=1, description="model.* keys: a list of values, or a distribution "
                                  "(uniform, log-uniform, int-uniform, choice).")


def choices_of(spec: Any) -> list[Any] | None:
    """The values of a choice parameter (a list or ``distribution: choice``), else None."""
    if isinstance(spec, list):
        return spec
    return spec.values if isinstance(spec, Choice) else None


def candidate_model_types(tune: TuneConfig, base_type: str) -> list[str]:
    """The model types a study can try: the config's own, or the ``model.type`` choices."""
    values = choices_of(tune.parameters.get("model.type"))
    return [str(t) for t in values] if values else [base_type]


def applicable_keys(tune: TuneConfig, model_type: str) -> list[str]:
    """The tuned keys that ``model_type`` has (a key another model type has is skipped)."""
    fields = MODELS.entry(model_type).config.model_fields
    return [k for k in tune.parameters if k != "model.type" and k.split(".", 1)[1] in fields]


def _grid_points(tune: TuneConfig, base_type: str) -> list[dict[str, Any]]:
    """Every combination of a grid, per model type (a model's own keys only), in order."""
    points: list[dict[str, Any]] = []
    typed = "model.type" in tune.parameters
    for model_type in candidate_model_types(tune, base_type):
        keys = applicable_keys(tune, model_type)
        for values in itertools.product(*(choices_of(tune.parameters[k]) or [] for k in keys)):
            point = {"model.type": model_type} if typed else {}
            points.append({**point, **dict(zip(keys, values, strict=True))})
    return points


def model_section(base: dict[str, Any], base_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """The model section for one set of tuned values: the config's own model keys (those the
    chosen type also has, as sweeps do), then the tuned values."""
    model_type = str(params.get("model.type", base_type))
    fields = MODELS.entry(model_type).config.model_fields
    section = {k: v for k, v in base.items() if k in fields and k != "type"}
    section.update({k.split(".", 1)[1]: v for k, v in params.items() if k != "model.type"})
    return {"type": model_type, **section}


def _endpoints(spec: Any) -> list[Any]:
    values = choices_of(spec)
    if values is not None:
        return values
    return [spec.low, spec.high]


def tune_problems(cfg: Any, model_keys: dict[str, Any]) -> list[str]:
    """Why the ``tune:`` block cannot run (empty when it can). ``model_keys`` are the model
    keys the config itself sets. Every value a study can draw is validated here against its
    model's config, so no trial fails on a value the config could have refused."""
    tune: TuneConfig | None = getattr(cfg, "tune", None)
    if tune is None:
        return []
    spec = TASKS.get(cfg.task)
    problems: list[str] = []
    problems.extend(_scheme_problems(tune, spec.data_kind))
    if tune.metric is not None and tune.metric not in spec.metrics:
        problems.append(f"tune.metric: '{tune.metric}' is not a metric of task '{cfg.task}'"
                        f"{did_you_mean(tune.metric, spec.metrics)} "
                        f"(valid: {', '.join(spec.metrics)})")
    for key, value in tune.parameters.items():
        parts = key.split(".")
        if parts[0] != "model" or len(parts) != 2:
            problems.append(f"tune.parameters.{key}: only model hyperparameters (model.<key>) "
                            "are tuned inside a run; sweep other keys with `medml sweep`")
        values = choices_of(value)
        if values is not None and not all(isinstance(v, (str, int, float, bool)) or v is None
                                          for v in values):
            problems.append(f"tune.parameters.{key}: choices must be numbers, strings, "
                            "booleans or null")
    if "model.type" in tune.parameters and choices_of(tune.parameters["model.type"]) is None:
        problems.append("tune.parameters.model.type: list the model types to try, e.g. "
                        "[logistic-regression, random-forest]")
    if problems:
        return problems
    types = candidate_model_types(tune, cfg.model.type)
    for model_type in types:
        if model_type not in MODELS:
            problems.append(f"tune.parameters.model.type: '{model_type}' is not a model"
                            f"{did_you_mean(model_type, MODELS.names())}")
            continue
        entry = MODELS.entry(model_type)
        if spec.problem not in entry.tags or spec.data_kind not in entry.tags:
            problems.append(f"tune.parameters.model.type: '{model_type}' does not fit task "
                            f"'{cfg.task}' ({spec.problem}, {spec.data_kind} data)")
        elif getattr(cfg.data, "missing", "impute") == "native" and \
                not entry.extra.get("native_missing"):
            problems.append(f"tune.parameters.model.type: '{model_type}' cannot take missing "
                            "values, which data.missing: native leaves for the model")
    if problems:
        return problems
    mixed = PROBLEMS.get(spec.problem).mixed_model_scores if spec.problem in PROBLEMS else None
    if mixed and len(set(types)) > 1:
        problems.append(f"tune.parameters.model.type: {', '.join(types)} cannot be tuned "
                        f"together in a {spec.problem} run: {mixed}. Tune one model type's "
                        "hyperparameters here, and compare model types with `medml sweep` "
                        "(each trial is then its own cross-validated run)")
        return problems
    if spec.data_kind == "image":
        problems.extend(_dimension_problems(types, model_keys, cfg.model))
    if problems:
        return problems
    for key in tune.parameters:
        if key != "model.type" and not any(key in applicable_keys(tune, t) for t in types):
            fields = sorted({f for t in types for f in MODELS.entry(t).config.model_fields
                             if f != "type"})
            problems.append(f"tune.parameters.{key}: not a hyperparameter of "
                            f"{' or '.join(types)}"
                            f"{did_you_mean(key.split('.', 1)[1], fields)} "
                            f"(hyperparameters: {', '.join(fields)})")
    if problems:
        return problems
    for model_type in types:
        config_class = MODELS.entry(model_type).config
        for key in applicable_keys(tune, model_type):
            for value in _endpoints(tune.parameters[key]):
                section = model_section(model_keys, cfg.model.type,
                                        {"model.type": model_type, key: value})
                try:
                    model = config_class.model_validate(section)
                except ValidationError as exc:
                    reason = exc.errors(include_url=False)[0]["msg"]
                    problems.append(f"tune.parameters.{key}: {value!r} is not valid for "
                                    f"{model_type}: {reason}")
                    break
                check = getattr(model, "problems_check", None)
                for problem in check(spec.problem) if check is not None else []:
                    problems.append(f"tune.parameters.{key}: {value!r} with {model_type}: "
                                    f"{problem}")
    if tune.sampler == "grid":
        continuous = [k for k, v in tune.parameters.items() if choices_of(v) is None
                      and not isinstance(v, IntUniform)]
        if continuous:
            problems.append(f"tune.parameters.{continuous[0]}: the grid sampler needs a list "
                            "of values (or int-uniform); use sampler tpe or random for a "
                            "continuous range")
        else:
            n = len(_grid_points(_as_choices(tune), cfg.model.type))
            if n > MAX_TUNE_TRIALS:
                problems.append(f"tune: the grid has {n:,} combinations, over the limit of "
                                f"{MAX_TUNE_TRIALS:,}; list fewer values or use sampler tpe")
            elif tune.trials is not None and tune.trials != n:
                problems.append(f"tune.trials: the grid has {n} combinations and runs each "
                                f"once; remove trials (or use sampler random for {tune.trials} "
                                "draws)")
    return problems


def _scheme_problems(tune: TuneConfig, data_kind: str) -> list[str]:
    """Keys that belong to the other kind's tuning scheme (nested CV vs validation images)."""
    problems: list[str] = []
    if data_kind == "image":
        # the default itself passes: a run's resolved config.yaml writes it, and must load
        if "inner_splits" in tune.model_fields_set and \
                tune.inner_splits != DEFAULT_INNER_SPLITS:
            problems.append("tune.inner_splits: image tasks are tuned on their validation "
                            "images (a CNN fitted once per trial, pruned by epoch), not by "
                            "inner cross-validation; remove inner_splits (split.val_size sets "
                            "the validation images)")
        return problems
    if tune.pruner == "median":
        problems.append("tune.pruner: pruning stops a CNN trial between epochs; a tabular "
                        "trial is one inner cross-validation with nothing to stop early. "
                        "Remove pruner")
    if tune.pruning_warmup_epochs is not None:
        problems.append("tune.pruning_warmup_epochs: applies to image (CNN) tasks only; "
                        "remove it")
    return problems


def _dimension_problems(types: list[str], model_keys: dict[str, Any],
                        base_model: Any) -> list[str]:
    """Model types a study could pick whose 2D/3D input differs from the config's model
    (which the config's own checks match to the data)."""
    dims = getattr(base_model, "spatial_dims", None)
    if dims is None:
        return []
    of_type: dict[str, int | None] = {}
    for model_type in types:
        section = model_section(model_keys, base_model.type, {"model.type": model_type})
        try:
            model = MODELS.entry(model_type).config.model_validate(section)
        except ValidationError:  # reported by the value checks that follow
            continue
        of_type[model_type] = getattr(model, "spatial_dims", None)
    fitting = [t for t, d in of_type.items() if d == dims]
    return [f"tune.parameters.model.type: '{t}' takes {d}D input but the data are {dims}D "
            f"(as model.type '{base_model.type}' takes); list only {dims}D networks"
            + (f", e.g. {', '.join(fitting)}" if fitting else "")
            for t, d in of_type.items() if d is not None and d != dims]


def _as_choices(tune: TuneConfig) -> TuneConfig:
    """A grid's int-uniform ranges as lists of their integers."""
    parameters = {k: list(range(v.low, v.high + 1)) if isinstance(v, IntUniform) else v
                  for k, v in tune.parameters.items()}
    return tune.model_copy(update={"parameters": parameters})


def grid_of(tune: TuneConfig, base_type: str) -> list[dict[str, Any]]:
    """The combinations a grid study runs (int-uniform ranges expanded)."""
    return _grid_points(_as_choices(tune), base_type)
