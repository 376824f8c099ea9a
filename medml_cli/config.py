"""Experiment configs: YAML loading, ``--set`` overrides, validation and the JSON schema.

One entry point, :func:`load_experiment_config`: read YAML safely (duplicate keys rejected),
apply overrides, validate with pydantic (unknown keys are errors), then run the cross-field
checks. Every problem becomes one line of a :class:`ConfigError` that names the field path,
the value given, what was expected and, when one is close, the valid name meant.
"""

from __future__ import annotations

import copy
import functools
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from medml_cli.errors import ConfigError
from medml_cli.plugins import load_builtins
from medml_cli.registry import DATASETS, MODELS, TASKS, did_you_mean
from medml_cli.schemas import StrictModel
from medml_cli.yamlio import (
    MAX_YAML_BYTES,
    YamlTooLargeError,
    dump_yaml,
    load_yaml,
    load_yaml_value,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


# --------------------------------------------------------------------------- sections
class SplitConfig(StrictModel):
    """How held-out data are made. Every split is seeded and, with a group column, grouped."""

    method: Literal["kfold", "holdout"] = Field(
        "kfold", description="kfold: k-fold cross-validation; holdout: one train/test split."
    )
    n_splits: int = Field(5, ge=2, le=100, description="Number of folds (kfold).")
    test_size: float = Field(0.2, gt=0, lt=1, description="Held-out share (holdout).")
    stratify: bool = Field(True, description="Keep the class balance in every fold.")
    val_size: float = Field(
        0.15, gt=0, lt=1,
        description="Image tasks: share of the training part held out for early stopping.",
    )


class EvaluationConfig(StrictModel):
    """How held-out predictions are scored."""

    threshold: float = Field(
        0.5, gt=0, lt=1,
        description="Probability at or above which a case is called positive "
                    "(threshold_method: fixed).",
    )
    threshold_method: Literal["fixed", "youden", "sensitivity", "specificity"] = Field(
        "fixed",
        description="fixed: `threshold`; youden: max sensitivity + specificity - 1; "
                    "sensitivity/specificity: reach `threshold_target`. Chosen on training "
                    "data (inner cross-validation) or validation data, never on test data.",
    )
    threshold_target: float | None = Field(
        None, gt=0, lt=1, description="Target sensitivity or specificity for those methods.")
    bootstrap: int = Field(1000, ge=0, le=100_000,
                           description="Bootstrap resamples for confidence intervals; 0: none.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Confidence level of CIs.")
    recalibration: Literal["none", "sigmoid", "isotonic"] = Field(
        "none", description="Recalibrate probabilities (fitted on training folds only).")
    subgroups: list[str] = Field(
        default_factory=list,
        description="Columns to report metrics by (e.g. sex, site, age_band).")
    min_subgroup_n: int = Field(30, ge=1, description="Warn for subgroups smaller than this.")
    min_subgroup_events: int = Field(10, ge=0,
                                     description="Warn for subgroups with fewer events.")
    plots: bool = Field(True, description="Save ROC, PR, calibration, confusion-matrix and "
                                          "decision-curve (or residual) plots in plots/.")
    importance_repeats: int = Field(5, ge=1, le=100,
                                    description="Permutation-importance repeats per fold.")
    baseline: bool = Field(True, description="Report the trivial baseline beside the model.")
    voxel_logistic_baseline: bool = Field(
        True, description="Image tasks: also fit a logistic regression on the raw voxels, in "
                          "the same split, as a reference the CNN must beat.")
    explain: Literal["none", "gradcam", "permutation"] = Field(
        "none",
        description="gradcam (image tasks): Grad-CAM overlays of held-out images; permutation "
                    "(tabular): permutation importance on held-out folds + partial dependence.")
    explain_n: int = Field(8, ge=1, le=200, description="How many Grad-CAM overlays to save.")

    @model_validator(mode="after")
    def _threshold_target(self) -> EvaluationConfig:
        needs = self.threshold_method in ("sensitivity", "specificity")
        if needs and self.threshold_target is None:
            raise ValueError(f"threshold_method '{self.threshold_method}' needs "
                             "threshold_target, e.g. 0.9")
        if not needs and self.threshold_target is not None:
            raise ValueError("threshold_target only applies to threshold_method "
                             "sensitivity or specificity")
        return self


class ExperimentConfigBase(StrictModel):
    """Fields shared by every experiment; ``data`` and ``model`` are added from the registries."""

    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="Run name; default: '<task>-<model type>'."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for splits and models.")
    task: str = Field(description="Task preset or generic task; see `medml tasks list`.")
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(
                f"'{value}' is not a task{did_you_mean(value, TASKS.names())} "
                f"(tasks: {', '.join(TASKS.names())})"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, values: Any) -> Any:
        """Presets fill in the data and model sections the config leaves out."""
        if not isinstance(values, dict) or values.get("task") not in TASKS:
            return values
        spec = TASKS.get(values["task"])
        values = dict(values)
        if spec.default_split:
            given = values.get("split")
            values["split"] = {**spec.default_split, **(given if isinstance(given, dict) else {})}
        for key, default in (("data", spec.default_data), ("model", spec.default_model)):
            if key not in values and default is not None:
                values[key] = copy.deepcopy(default)
            elif isinstance(values.get(key), dict) and "type" not in values[key] and default:
                values[key] = {"type": default["type"], **values[key]}
        return values

    @model_validator(mode="after")
    def _cross_field_checks(self) -> ExperimentConfigBase:
        problems = cross_field_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def run_name(self) -> str:
        return self.name or f"{self.task}-{self.model.type}"  # type: ignore[attr-defined]


def cross_field_problems(cfg: Any) -> list[str]:
    """Checks that span sections: does the model solve the task, does the data fit it."""
    spec = TASKS.get(cfg.task)
    problems: list[str] = []
    model_entry = MODELS.entry(cfg.model.type)
    if spec.problem not in model_entry.tags:
        fitting = [e.name for e in MODELS.entries() if spec.problem in e.tags
                   and spec.data_kind in e.tags]
        problems.append(
            f"model.type: '{cfg.model.type}' is a "
            f"{' / '.join(sorted(model_entry.tags & {'binary-classification', 'regression'}))} "
            f"model but task '{cfg.task}' is {spec.problem}; "
            f"use one of: {', '.join(fitting)}"
        )
    elif spec.data_kind not in model_entry.tags:
        problems.append(f"model.type: '{cfg.model.type}' does not take {spec.data_kind} data")
    data_entry = DATASETS.entry(cfg.data.type)
    if spec.data_kind not in data_entry.tags:
        fitting = [e.name for e in DATASETS.entries() if spec.data_kind in e.tags]
        problems.append(
            f"data.type: '{cfg.data.type}' is not {spec.data_kind} data, which task "
            f"'{cfg.task}' needs; use one of: {', '.join(fitting)}"
        )
    elif spec.problem not in data_entry.tags:
        kinds = " / ".join(sorted(data_entry.tags & {"binary-classification", "regression"}))
        problems.append(
            f"data.type: '{cfg.data.type}' is {kinds} data but task '{cfg.task}' is "
            f"{spec.problem}; pick a {spec.problem} task or other data"
        )
    explain = cfg.evaluation.explain
    if explain == "gradcam" and spec.data_kind != "image":
        problems.append("evaluation.explain: gradcam is for image tasks; use permutation")
    if explain == "permutation" and spec.data_kind != "tabular":
        problems.append("evaluation.explain: permutation is for tabular tasks; use gradcam")
    if spec.problem == "regression" and (cfg.evaluation.threshold_method != "fixed"
                                         or cfg.evaluation.recalibration != "none"):
        problems.append("evaluation.threshold_method / recalibration: only for classification")
    if spec.data_kind == "image" and cfg.evaluation.recalibration != "none":
        problems.append("evaluation.recalibration: not supported for image models yet; "
                        "use none")
    if spec.data_kind == "image" and cfg.split.method != "holdout":
        problems.append("split.method: image tasks use `holdout` (a train/validation/test "
                        "split); k-fold CV of a CNN is not supported")
    model_dims = getattr(cfg.model, "spatial_dims", None)
    data_dims = getattr(cfg.data, "dim", None) or (3 if cfg.data.type == "luna16" else None)
    if cfg.data.type == "image-folder":
        data_dims = 2
    if cfg.data.type == "dicom-series":
        data_dims = 3 if cfg.data.level == "series" else 2
    if model_dims and data_dims and model_dims != data_dims:
        problems.append(f"model.type: '{cfg.model.type}' takes {model_dims}D input but the "
                        f"data are {data_dims}D; use "
                        f"{'cnn3d or resnet3d' if data_dims == 3 else 'cnn2d or resnet2d'}")
    check = getattr(cfg.model, "problems_check", None)
    if check is not None:
        problems.extend(f"model.{p}" for p in check(spec.problem))
    return problems


def _discriminated(configs: list[type]) -> Any:
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[tuple(configs)], Field(discriminator="type")]  # noqa: UP007


@functools.cache
def experiment_config_class() -> type[ExperimentConfigBase]:
    """The full ExperimentConfig, with data and model unions built from the registries."""
    load_builtins()
    return create_model(
        "ExperimentConfig",
        __base__=ExperimentConfigBase,
        data=(_discriminated(DATASETS.config_classes()), Field(description="Data source.")),
        model=(_discriminated(MODELS.config_classes()), Field(description="Model and "
                                                                       "hyperparameters.")),
    )


# --------------------------------------------------------------------------- YAML
def _line_map(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Field path -> 1-based line, for pointing errors at the YAML."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            lines[path] = key_node.start_mark.line + 1
            lines.update(_line_map(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            lines[path] = item.start_mark.line + 1
            lines.update(_line_map(item, path))
    return lines


def parse_yaml_text(text: str, source: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Parse a config's text into a mapping and its line map, with clear errors."""
    try:
        data, node = load_yaml(text)
    except YamlTooLargeError as exc:
        raise ConfigError(source, [f"refused: {exc}. Write the values out, or split the "
                                   "experiment into several configs or a sweep"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        what = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None:
            what += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        raise ConfigError(source, [f"YAML syntax error at {where}: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"YAML error: {exc}"]) from None
    if data is None:
        raise ConfigError(source, [
            "the config is empty; expected a mapping with at least `task:` "
            "(e.g. `task: heart-disease`) — see configs/ for examples"
        ])
    if not isinstance(data, dict):
        raise ConfigError(source, [
            f"the top level is a {type(data).__name__}, expected a mapping of keys such as "
            "`task:`, `data:`, `model:`"
        ])
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(source, [f"top-level key {bad_keys[0]!r} is not a string"])
    return data, _line_map(node)


def read_config_file(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    source = str(path)
    if not path.exists():
        raise ConfigError(source, ["file not found; check the path"])
    if path.is_dir():
        raise ConfigError(source, ["this is a folder; give a YAML config file"])
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # /dev/zero or a FIFO would be read forever
            raise ConfigError(source, ["not a regular file (a device, FIFO or socket); give "
                                       "a YAML config file"])
        if info.st_size > MAX_YAML_BYTES:
            raise ConfigError(source, [f"the file is {info.st_size:,} bytes; configs are "
                                       f"limited to {MAX_YAML_BYTES:,}. Is this the config?"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read the file: {exc}"]) from None
    return parse_yaml_text(text, source)


# --------------------------------------------------------------------------- overrides
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'model.n_estimators=500' -> (['model', 'n_estimators'], 500); values parse as YAML."""
    if "=" not in text:
        raise ConfigError("--set", [f"'{text}': expected KEY.PATH=VALUE, e.g. "
                                    "model.n_estimators=500"])
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(CONFIG_KEY.match(p) for p in parts):
        raise ConfigError("--set", [f"'{text}': '{key}' is not a dotted path of keys"])
    try:
        value = load_yaml_value(raw) if raw.strip() else None
    except YamlTooLargeError as exc:
        raise ConfigError("--set", [f"'{text[:80]}': refused: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError("--set", [f"'{text}': the value is not valid YAML ({exc})"]) from None
    return parts, value


class NotASectionError(ValueError):
    """A dotted path runs through a plain value (``seed.x`` when ``seed`` is a number)."""

    def __init__(self, path: str, value: Any, key: str) -> None:
        self.path, self.value, self.key = path, value, key
        super().__init__(f"'{path}' holds a value ({value!r}), not a section, so it has no "
                         f"key '{key}'")


def set_by_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """``data[a][b][c] = value`` for parts [a, b, c], creating sections that are missing."""
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise NotASectionError(".".join(parts[: depth + 1]), child, parts[depth + 1])
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> tuple[dict, dict]:
    """Apply ``--set`` overrides to a copy; returns the new mapping and path -> override text."""
    data = copy.deepcopy(data)
    applied: dict[tuple, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        try:
            set_by_path(data, parts, value)
        except NotASectionError as exc:
            raise ConfigError("--set", [f"'{text}': {exc}"]) from None
        applied[tuple(parts)] = text
    return data, applied


# --------------------------------------------------------------------------- errors
def _section_class(root: type, loc: tuple, data: dict) -> type | None:
    """The pydantic class that owns the field at ``loc`` (for did-you-mean on keys)."""
    cls: type | None = root
    value: Any = data
    for part in loc:
        if cls is None:
            return None
        if part in ("model", "data") and cls is root:
            registry = MODELS if part == "model" else DATASETS
            value = value.get(part) if isinstance(value, dict) else None
            type_name = value.get("type") if isinstance(value, dict) else None
            cls = registry.entry(type_name).config if type_name in registry else None
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        cls = annotation if isinstance(annotation, type) and hasattr(annotation,
                                                                     "model_fields") else None
        value = value.get(part) if isinstance(value, dict) else None
    return cls


def _clean_loc(loc: tuple, data: dict) -> tuple:
    """Drop the discriminator tag pydantic inserts: ('model', 'svm', 'C') -> ('model', 'C')."""
    if len(loc) >= 2 and loc[0] in ("model", "data"):
        registry = MODELS if loc[0] == "model" else DATASETS
        if isinstance(loc[1], str) and loc[1] in registry:
            return (loc[0], *loc[2:])
    # function-after validators on the whole model put nothing in loc
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(
    exc: ValidationError,
    data: dict,
    lines: dict[tuple, int],
    overrides: dict[tuple, str],
    root: type,
) -> list[str]:
    problems: list[str] = []
    errors = exc.errors(include_url=False)
    task_invalid = any(tuple(e["loc"]) == ("task",) for e in errors)
    for err in errors:
        loc = _clean_loc(tuple(err["loc"]), data)
        if task_invalid and err["type"] == "missing" and loc in (("data",), ("model",)):
            continue  # a preset would have filled these in; the task error says it all
        path = ".".join(str(p) for p in loc) or "(top level)"
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            owner = _section_class(root, loc[:-1], data)
            valid = list(getattr(owner, "model_fields", {})) if owner else []
            what = "unknown key"
            if loc and loc[0] in ("model", "data") and len(loc) == 2:
                type_name = (data.get(loc[0]) or {}).get("type")
                what = f"unknown key for {loc[0]} type '{type_name}'"
            text = f"{path}: {what} (given {_fmt_value(value)})"
            text += did_you_mean(str(loc[-1]), valid)
            if valid:
                text += f" (valid keys: {', '.join(valid)})"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            registry = MODELS if loc and loc[0] == "model" else DATASETS
            tag = err.get("ctx", {}).get("tag")
            if kind == "union_tag_not_found":
                text = f"{path}.type: missing; set one of: {', '.join(registry.names())}"
            else:
                text = (f"{path}.type: '{tag}' is not a {registry.kind} "
                        f"type{did_you_mean(str(tag), registry.names())} "
                        f"(valid: {', '.join(registry.names())}; see `{registry.list_command}`)")
            loc = (*loc, "type")
        elif kind == "missing":
            owner = _section_class(root, loc[:-1], data)
            field = getattr(owner, "model_fields", {}).get(loc[-1]) if owner and loc else None
            desc = f" ({field.description})" if field is not None and field.description else ""
            text = f"{path}: required but missing{desc}"
        elif kind == "bool_for_number":
            loc = (*loc, err["ctx"]["field"])
            text = f"{'.'.join(map(str, loc))}: {err['msg'].split(': ', 1)[1]}"
        elif kind == "value_error" and not loc:
            # cross-field checks: each line already names its own field path
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            for part in message.splitlines():
                field_path = tuple(part.split(":", 1)[0].split("."))
                line = lines.get(field_path)
                problems.append(part + (f" [line {line}]" if line else ""))
            continue
        elif kind == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            text = f"{path}: {message} (got {_fmt_value(value)})"
        else:
            text = f"{path}: {err['msg'].rstrip('.')}; got {_fmt_value(value)}"
        line = lines.get(loc) or (lines.get(loc[:-1]) if loc else None)
        related = [v for k, v in overrides.items()
                   if loc[: len(k)] == k or (loc and k[: len(loc)] == loc)]
        if related:
            source = overrides.get(loc) or related[0]
            text += f" [from --set {source}]"
        elif line:
            text += f" [line {line}]"
        problems.append(text)
    return problems


# --------------------------------------------------------------------------- entry points
def validate_config_data(
    data: dict[str, Any],
    *,
    source: str = "<config>",
    lines: dict[tuple, int] | None = None,
    overrides: dict[tuple, str] | None = None,
    base_dir: Path | None = None,
) -> Any:
    """Validate a config mapping; raises ConfigError with one line per problem."""
    root = experiment_config_class()
    try:
        return root.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(
            source, format_validation_error(exc, data, lines or {}, overrides or {}, root)
        ) from None


def load_experiment_config(path: str | Path, overrides: list[str] | None = None) -> Any:
    """Read, override and validate an experiment config file."""
    path = Path(path)
    data, lines = read_config_file(path)
    data, applied = apply_overrides(data, overrides or [])
    return validate_config_data(
        data, source=str(path), lines=lines, overrides=applied,
        base_dir=path.resolve().parent,
    )


def config_to_yaml(cfg: Any) -> str:
    """The fully resolved config as YAML (defaults filled in, paths absolute)."""
    data = cfg.model_dump(mode="json")
    order = ["name", "seed", "task", "data", "split", "model", "evaluation"]
    data = {k: data[k] for k in [*order, *(k for k in data if k not in order)] if k in data}
    return dump_yaml(data)


def config_json_schema() -> dict[str, Any]:
    schema = experiment_config_class().model_json_schema()
    schema["title"] = "medml experiment config"
    return schema
