"""Typed run records: status.json, metrics.json, model/card.json and environment.json.

Each record is a pydantic model with one writer and one reader:

=================  ==========================================  ===============================
record             writer                                      reader
=================  ==========================================  ===============================
StatusRecord       ``write_status(run_folder, record)``        ``read_status(run_folder)``
MetricsRecord      ``write_metrics(run_folder, record)``       ``read_metrics(run_folder)``
ModelCard          ``write_card(model_folder, record)``        ``read_card(model_folder)``
EnvironmentRecord  ``write_environment(run_folder, record)``   ``read_environment(run_folder)``
=================  ==========================================  ===============================

Writers take the record or the plain dict the workflows build, validate it, and stamp it with
``format_version`` (:data:`FORMAT_VERSION`); a file without one is version 1, written by an
earlier medml, and reads the same. Readers raise :class:`RunNotUsableError` (exit 2) with one
paragraph naming the file, what is wrong and the fix. The card is written through the model
folder's manifest and checked against it on read (:mod:`medml_cli.runs.artifacts`).

Records keep every key of their file: keys not declared here (metrics.json's free-form blocks:
calibration, per_fold, explanations...) are kept as extras, and ``record.get(key)`` /
``record[key]`` read any key that was in the file, so code written against the plain dicts
keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from medml_cli.errors import RunNotUsableError
from medml_cli.jsonio import RUN_FIX, _clean, read_run_json, write_json

#: The version written into every record. 1 = no ``format_version`` key (medml before typed
#: records); 2 = typed records, same keys as version 1 plus ``format_version``.
FORMAT_VERSION = 2

STATUS = "status.json"
METRICS = "metrics.json"
CARD = "card.json"
ENVIRONMENT = "environment.json"

#: The states a run's status.json says (``runs list`` adds "broken" for damaged files and
#: reads a missing or damaged status as "unknown").
RunState = Literal["running", "completed", "failed", "interrupted"]
RUN_STATES: tuple[str, ...] = ("running", "completed", "failed", "interrupted")


def json_value(value: Any) -> str:
    """A short rendering of a JSON value for an error message."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _damaged(detail: str, fix: str | None = None) -> PydanticCustomError:
    """A problem found by a record's own checks: ``detail`` follows the file's name."""
    return PydanticCustomError("record_damaged", "{detail}",
                               {"detail": detail, **({"fix": fix} if fix else {})})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the base
class Record(BaseModel):
    """Base of the run records: strict types, unknown keys kept, ``format_version``."""

    model_config = ConfigDict(strict=True, extra="allow", protected_namespaces=())

    #: The file's name in its folder, and what it is for (error messages say both).
    FILE: ClassVar[str] = ""
    WHAT: ClassVar[str] = ""

    format_version: int = 1

    @model_validator(mode="before")
    @classmethod
    def _checks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        version = data.get("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _damaged(f"has an invalid `format_version` ({json_value(version)}; expected "
                           "a whole number from 1)")
        if version > FORMAT_VERSION:
            raise _damaged(
                f"was written by a newer medml (format_version {version}; this medml reads up "
                f"to {FORMAT_VERSION})", fix="upgrade medml (`pip install -U medml`), or train "
                "again with this version")
        cls._check(data)
        return data

    @classmethod
    def _check(cls, data: dict[str, Any]) -> None:
        """The record's own checks of the raw file data, before the typed fields'."""

    # dict-style access, for code written against the plain JSON objects
    def __contains__(self, key: object) -> bool:
        return key in self.model_fields_set

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` if the file had it, else ``default`` (as ``dict.get``)."""
        return self[key] if key in self else default

    def as_dict(self) -> dict[str, Any]:
        """The keys the file had (or the record was made with), as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


# --------------------------------------------------------------------------- status.json
class StatusRecord(Record):
    """status.json: a run's state, start and end times, its process and error if any."""

    FILE: ClassVar[str] = STATUS
    WHAT: ClassVar[str] = "the run's status"

    state: RunState
    name: str | None = None
    started: str | None = None
    ended: str | None = None
    #: the training process (a run still "running" whose pid is gone was killed)
    pid: int | None = None
    error: str | None = None
    error_type: str | None = None
    #: when an interrupted image run was last resumed (``train --resume``)
    resumed: str | None = None

    @classmethod
    def _check(cls, data: dict[str, Any]) -> None:
        state = data.get("state")
        if not isinstance(state, str):
            raise _damaged(f"has no `state` string (it holds {json.dumps(state)[:40]})")
        if state not in RUN_STATES:
            raise _damaged(f"has an unknown `state` {json_value(state)} (expected "
                           f"{', '.join(RUN_STATES[:-1])} or {RUN_STATES[-1]})")
        for key in ("name", "started", "ended", "error"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise _damaged(f"has `{key}` that is not a string")

    @classmethod
    def unknown(cls) -> StatusRecord:
        """What a missing or damaged status.json reads as when the reader is tolerant."""
        return cls.model_construct(state="unknown")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metrics.json
class PerClassMetrics(BaseModel):
    """One class of a multi-class run's ``per_class`` block (one-vs-rest figures)."""

    model_config = ConfigDict(strict=True, extra="allow")

    auroc: float | None = None
    sensitivity: float | None = None
    ppv: float | None = None
    n: int | None = None


class MetricsRecord(Record):
    """metrics.json: the held-out metrics with their intervals, the counts they rest on, the
    baseline, and the blocks the report is made from (kept as extras)."""

    FILE: ClassVar[str] = METRICS
    WHAT: ClassVar[str] = "the run's metrics"

    task: str | None = None
    #: binary-classification, multiclass, regression, ... (an open set: problem types plug in)
    problem: str | None = None
    model: str | None = None
    #: the data source's name (a run), or the data config (an evaluation)
    data: str | dict[str, Any] | None = None
    synthetic: bool | None = None
    split: dict[str, Any] | None = None
    threshold: float | None = None
    threshold_method: str | None = None
    metrics: dict[str, float | None]
    intervals: dict[str, list[float | None] | None] = {}
    #: samples, events, patients ... (what every figure rests on)
    n: dict[str, Any] = {}
    baseline: dict[str, float | None] = {}
    primary_metric: str | None = None
    per_class: dict[str, PerClassMetrics] | None = None
    seconds: float | None = None

    @classmethod
    def _check(cls, data: dict[str, Any]) -> None:
        if "metrics" not in data:
            raise _damaged("has no `metrics` object")
        for key in ("metrics", "intervals", "baseline", "n", "per_class"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise _damaged(f"has `{key}` that is not a JSON object")
        for name, value in (data.get("metrics") or {}).items():
            if value is not None and not _is_number(value):
                raise _damaged(f"has a metric `{name}` that is not a number")
        for name, ci in (data.get("intervals") or {}).items():
            if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(
                    v is None or _is_number(v) for v in ci)):
                raise _damaged(f"has an interval `{name}` that is not [low, high]")
        problem = data.get("problem")
        if problem is not None and (not isinstance(problem, str) or not problem):
            raise _damaged(f"has an invalid `problem` ({json_value(problem)}; expected the "
                           "problem type's name)")

    @classmethod
    def empty(cls) -> MetricsRecord:
        """What a run without (readable) metrics shows: no metrics at all."""
        return cls.model_construct(metrics={})

    def interval(self, metric: str) -> list[float | None] | None:
        """The metric's [low, high] interval, if one was computed."""
        return self.intervals.get(metric)


# --------------------------------------------------------------------------- card.json
#: card.json fields evaluate/predict rely on, by model format: field -> what it must be.
_CARD_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "skops": {"problem": (str,)},
    "keras": {"problem": (str,), "input_shape": (list,), "spatial_dims": (int,),
              "intensity": (list,), "threshold": (int, float)},
}

CardCheck = Callable[[dict[str, Any], Callable[[str, str], PydanticCustomError]], None]


def _binary_card(card: dict[str, Any], bad: Callable[[str, str], PydanticCustomError]) -> None:
    threshold = card.get("threshold")
    if not _is_number(threshold) or not 0.0 <= float(threshold) <= 1.0:
        raise bad("threshold", "a probability between 0 and 1")
    classes = card.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != 2):
        raise bad("classes", "a list of the two class labels")


def _multiclass_card(card: dict[str, Any],
                     bad: Callable[[str, str], PydanticCustomError]) -> None:
    if card.get("threshold") is not None:
        raise bad("threshold", "null: a multi-class model predicts the most probable class, "
                               "at no threshold")
    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 3 \
            or not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        raise bad("classes", "a list of three or more distinct class labels")


def _no_threshold(card: dict[str, Any], bad: Callable[[str, str], PydanticCustomError]) -> None:
    """Regression: a value is predicted, no threshold or classes are checked."""


def _survival_card(card: dict[str, Any], bad: Callable[[str, str], PydanticCustomError]) -> None:
    _no_threshold(card, bad)
    block = card.get("survival")
    if not isinstance(block, dict):
        raise bad("survival", "a mapping with horizons and time_grid")
    for key in ("horizons", "time_grid"):
        values = block.get(key)
        if not isinstance(values, list) or not values or not all(
                _is_number(v) and float(v) > 0 for v in values):
            raise bad(f"survival.{key}", "a non-empty list of positive times")


#: How a card of each problem type states its threshold and classes. A problem type not
#: listed is classified at a threshold, as binary cards are; a new problem type (survival)
#: adds its rule here. Problems in NO_THRESHOLD_PROBLEMS may have ``threshold: null``.
CARD_RULES: dict[str, CardCheck] = {
    "binary-classification": _binary_card,
    "multiclass": _multiclass_card,
    "regression": _no_threshold,
    "survival": _survival_card,
}
NO_THRESHOLD_PROBLEMS = frozenset({"multiclass"})


def _plug_in_card_rule(problem: str) -> CardCheck:
    """A problem type without a rule here: a registered plug-in that uses no threshold is
    checked like regression; anything else like a binary card."""
    from medml_cli.registry import PROBLEMS

    if problem in PROBLEMS and not getattr(PROBLEMS.get(problem), "uses_threshold", True):
        return _no_threshold
    return _binary_card


class _CardPart(BaseModel):
    """Base of the model card's reporting parts: strict types; keys a newer medml adds are
    kept, so an older reader still reads the card."""

    model_config = ConfigDict(strict=True, extra="allow", protected_namespaces=())


class CardModelDetails(_CardPart):
    """Mitchell et al. 2019, section 1: what the model is, who made it, when, with what."""

    run: str
    task: str
    task_summary: str | None = None
    problem: str
    model_type: str
    parameters: dict[str, Any] = {}
    #: a tuned run: the values the shipped model was tuned to
    tuned_parameters: dict[str, Any] | None = None
    input_kind: str | None = None
    #: image runs: the (height, width[, depth], channels) the network takes, and how pixel
    #: values were scaled (e.g. ["hu", -1000, 400]); a caller must prepare images the same way
    input_shape: list[int] | None = None
    intensity: list[str | float] | None = None
    format: str | None = None
    trained: str | None = None
    medml_version: str | None = None
    #: evaluate --update: the run this one was updated from, and how
    parent_run: str | None = None
    update_method: str | None = None


class CardIntendedUse(_CardPart):
    """Section 2: primary intended uses and users, and uses out of scope."""

    intended_use: str
    intended_users: str
    out_of_scope: list[str] = []
    #: "config" (the run's `card:` section) or "default" (medml's wording)
    source: Literal["config", "default"] = "default"


class CardFactors(_CardPart):
    """Section 3: the groups results are broken down by (subgroups, sites)."""

    subgroup_variables: list[str] = []
    site_column: str | None = None
    sites: list[str] = []


class CardMetric(_CardPart):
    """One held-out metric with its interval."""

    name: str
    value: float | None = None
    low: float | None = None
    high: float | None = None


class CardGroupResult(_CardPart):
    """One subgroup, class or held-out site: its counts and figures (``<metric>``,
    ``<metric>_low``, ``<metric>_high``) and any warning."""

    label: str
    variable: str | None = None
    n: int | None = None
    events: int | None = None
    values: dict[str, float | None] = {}
    warning: str | None = None


class CardPooled(_CardPart):
    """A random-effects pooled estimate over held-out groups, with its prediction interval."""

    name: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    prediction_low: float | None = None
    prediction_high: float | None = None
    i2: float | None = None


class CardMetrics(_CardPart):
    """Section 4/5: the held-out metrics with CIs, the counts they rest on, and how they
    break down by class, subgroup and site."""

    primary_metric: str | None = None
    confidence: float | None = None
    bootstrap_resamples: int | None = None
    #: samples, events, patients, classes ... of the held-out predictions
    n: dict[str, Any] = {}
    values: list[CardMetric] = []
    baseline: dict[str, float | None] = {}
    #: simpler models fitted on the same split (an image run's voxel logistic regression)
    references: dict[str, dict[str, float | None]] = {}
    per_class: list[CardGroupResult] = []
    subgroups: list[CardGroupResult] = []
    #: leave-group-out: each held-out site, and the pooled estimates
    sites: list[CardGroupResult] = []
    pooled: list[CardPooled] = []
    #: survival: horizons and their source, in the data's time unit
    horizons: list[float] = []
    horizons_source: str | None = None
    time_unit: str | None = None
    #: a tuned run: nested-cv (mean of best inner minus outer score) or validation-images
    #: (best validation minus test score); positive = optimistic
    tuning_metric: str | None = None
    tuning_scheme: str | None = None
    tuning_mean_optimism: float | None = None


class CardEvaluationData(_CardPart):
    """Section 6: what the figures were computed on."""

    split: str
    n: dict[str, Any] = {}


class CardTrainingData(_CardPart):
    """Section 7: the data the shipped model was fitted on."""

    dataset: str | None = None
    source: str | None = None
    licence: str | None = None
    citation: str | None = None
    sites: list[str] = []
    rows: int | None = None
    images: int | None = None
    #: events (binary, survival) or rows per class (multiclass)
    events: int | None = None
    class_counts: dict[str, int] = {}
    dates: str | None = None
    synthetic: bool = False
    missing_policy: str | None = None
    #: the report's data bullets (target, rows, features, missing values per feature)
    description: list[str] = []


class CardCalibration(_CardPart):
    """Calibration of the held-out predictions (binary and multiclass: pooled)."""

    slope: float | None = None
    intercept: float | None = None
    brier: float | None = None
    ece: float | None = None
    warning: str | None = None


class CardThreshold(_CardPart):
    """The decision rule `medml predict` applies, and how it was chosen."""

    value: float | None = None
    method: str | None = None
    how_chosen: str


class CardProvenance(_CardPart):
    """What makes the run reproducible: config and data checksums, code and packages."""

    config_sha256: str | None = None
    data_sha256: dict[str, str] = {}
    git_commit: str | None = None
    git_dirty: bool | None = None
    seed: int | None = None
    python: str | None = None
    packages: dict[str, str | None] = {}


class ModelCardReport(_CardPart):
    """The data of model/card.md, in the sections of Mitchell et al. 2019, "Model Cards for
    Model Reporting" (FAT* '19): details, intended use, factors, metrics, evaluation and
    training data, quantitative analyses, caveats; plus calibration, threshold and
    provenance."""

    details: CardModelDetails
    intended_use: CardIntendedUse
    factors: CardFactors = CardFactors()
    metrics: CardMetrics = CardMetrics()
    evaluation_data: CardEvaluationData
    training_data: CardTrainingData = CardTrainingData()
    calibration: CardCalibration | None = None
    threshold: CardThreshold | None = None
    caveats: list[str] = []
    provenance: CardProvenance = CardProvenance()


class ModelCard(Record):
    """model/card.json: what evaluate and predict need to use the model correctly: its
    format and file, problem type, threshold and class labels, and what it was trained on."""

    FILE: ClassVar[str] = CARD
    WHAT: ClassVar[str] = "the model card"

    format: Literal["skops", "keras"] = "skops"
    file: str | None = None
    task: str | None = None
    problem: str
    model: str | None = None
    #: tabular, image2d or volume3d
    input_kind: str | None = None
    #: the probability at which the positive class is predicted (binary); null (multiclass)
    threshold: float | None = None
    threshold_method: str | None = None
    #: the original labels: [negative, positive] (binary), k >= 3 (multiclass), [] (regression)
    classes: list[str] | None = None
    features: list[str] | None = None
    target: str | None = None
    id_column: str | None = None
    trained_on_rows: int | None = None
    trained_on_images: int | None = None
    synthetic_data: bool | None = None
    medml_version: str | None = None
    input_shape: list[int] | None = None
    spatial_dims: int | None = None
    #: ("hu", low, high) or ("uint8", 0, 255) ...: how pixel values were scaled in training
    intensity: list[str | float] | None = None
    #: survival: horizons, time grid, time unit and follow-up the run was set up with
    survival: dict[str, Any] | None = None
    #: the model card's reporting data (model/card.md is rendered from it); absent in runs
    #: written before medml wrote card.md, which render it from their records instead
    reporting: ModelCardReport | None = None

    @classmethod
    def _check(cls, data: dict[str, Any]) -> None:
        def bad(field: str, expected: str) -> PydanticCustomError:
            return _damaged(f"has an invalid `{field}` ({json_value(data.get(field))}; "
                            f"expected {expected})")

        fmt = data.get("format", "skops")
        if fmt not in _CARD_FIELDS:
            raise bad("format", "skops or keras")
        problem = data.get("problem")
        for field_name, kinds in _CARD_FIELDS[fmt].items():
            if field_name == "threshold" and problem in NO_THRESHOLD_PROBLEMS:
                continue
            value = data.get(field_name)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise bad(field_name, " or ".join(k.__name__ for k in kinds))
        if not problem:
            raise bad("problem", "the problem type's name")
        CARD_RULES.get(problem, _plug_in_card_rule(problem))(data, bad)


# --------------------------------------------------------------------------- environment.json
class GitState(BaseModel):
    """The commit of a git checkout and whether it had uncommitted changes."""

    model_config = ConfigDict(strict=True, extra="allow")

    commit: str
    dirty: bool | None = None


class EnvironmentRecord(Record):
    """environment.json: Python, platform, package versions, git state, the command line and
    the sha256 of every input data file (evaluate checks the data against it)."""

    FILE: ClassVar[str] = ENVIRONMENT
    WHAT: ClassVar[str] = "the run's environment and data checksums"

    python: str | None = None
    implementation: str | None = None
    platform: str | None = None
    machine: str | None = None
    cpu_count: int | None = None
    packages: dict[str, str | None] = {}
    #: medml's own checkout (None when installed from a package)
    git_commit: str | None = None
    git_dirty: bool | None = None
    #: the checkout holding the config file, if any
    config_git: GitState | None = None
    command: list[str] = []
    #: file name -> sha256 of the bytes read
    data_sha256: dict[str, str] | None = None

    @classmethod
    def _check(cls, data: dict[str, Any]) -> None:
        recorded = data.get("data_sha256")
        if recorded is not None and not (isinstance(recorded, dict) and all(
                isinstance(v, str) for v in recorded.values())):
            raise _damaged("has an invalid `data_sha256` (expected a mapping of file name to "
                           "sha256)")
        if data.get("packages") is not None and not isinstance(data["packages"], dict):
            raise _damaged("has `packages` that is not a JSON object")


# --------------------------------------------------------------------------- validation
def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[list[str], Any]:
    """The part of a pydantic error location that is a path into ``data`` (union member
    names dropped), and the value there."""
    parts: list[str] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            break
        parts.append(str(part))
    return parts, data


def _problem(exc: ValidationError, data: Any) -> tuple[str, str | None]:
    """(what is wrong, a better fix or None) from the first error of a record's validation."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "record_damaged":
        ctx = first.get("ctx") or {}
        return str(ctx.get("detail", first["msg"])), ctx.get("fix")
    if first["type"] == "missing":
        return f"has no `{'.'.join(str(p) for p in first['loc'])}`", None
    parts, value = _data_path(data, first["loc"])
    where = ".".join(parts) or "top level"
    return f"has an invalid `{where}` ({json_value(value)}: {first['msg'].lower()})", None


def _validate(cls: type[Record], data: Any, label: str, *, when: str, fix: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        detail, better = _problem(exc, data)
        if better:
            raise RunNotUsableError(f"{label} {detail}. Fix: {better}.") from None
        raise RunNotUsableError(f"{label} {detail}; it was damaged or edited after {when}. "
                                f"Fix: {fix}.") from None


def _label(path: Path, cls: type[Record]) -> str:
    return f"{path} ({cls.WHAT})"


def _file(target: Path | str, name: str) -> Path:
    """``target`` itself when it names a .json file, else ``name`` inside the folder."""
    target = Path(target)
    return target if target.suffix == ".json" else target / name


def _to_write(cls: type[Record], record: Record | Mapping[str, Any], path: Path) -> dict:
    """The file contents for ``record`` (a record or the plain dict a workflow built):
    validated, JSON-clean, with the current ``format_version`` first."""
    if isinstance(record, Record):
        data = record.as_dict()
    elif isinstance(record, Mapping):
        data = _clean(dict(record))
    else:
        raise TypeError(f"{cls.__name__} to write must be a {cls.__name__} or a dict, not "
                        f"{type(record).__name__}")
    data = {"format_version": FORMAT_VERSION,
            **{k: v for k, v in data.items() if k != "format_version"}}
    try:
        cls.model_validate(data)
    except ValidationError as exc:
        detail, _ = _problem(exc, data)
        # a record medml builds itself: a bug, not a usage error
        raise ValueError(f"medml refused to write {path}: {cls.WHAT} to write {detail}"
                         ) from None
    return data


# --------------------------------------------------------------------------- writers/readers
def write_status(run_folder: Path | str, record: StatusRecord | Mapping[str, Any]) -> Path:
    """Write a run's status.json (atomically) from a StatusRecord or a dict of its fields."""
    path = _file(run_folder, STATUS)
    write_json(path, _to_write(StatusRecord, record, path))
    return path


def read_status(run_folder: Path | str, *, strict: bool = False) -> StatusRecord:
    """A run's status.json. Tolerant by default: a missing or damaged file reads as state
    "unknown" (listing and sweeps carry on). ``strict`` raises RunNotUsableError naming the
    file instead, for commands that act on the run."""
    path = _file(run_folder, STATUS)
    try:
        data = read_run_json(path, dict, what=StatusRecord.WHAT)
        return _validate(StatusRecord, data, _label(path, StatusRecord), when="it was written",
                         fix=RUN_FIX)
    except RunNotUsableError:
        if strict:
            raise
        return StatusRecord.unknown()


def write_metrics(run_folder: Path | str, record: MetricsRecord | Mapping[str, Any]) -> Path:
    """Write metrics.json (atomically) into a run or evaluation folder, or to the .json path
    given, from a MetricsRecord or the dict a workflow built."""
    path = _file(run_folder, METRICS)
    write_json(path, _to_write(MetricsRecord, record, path))
    return path


def read_metrics(run_folder: Path | str) -> MetricsRecord:
    """A run's (or evaluation's) metrics.json, or RunNotUsableError naming the file."""
    path = _file(run_folder, METRICS)
    data = read_run_json(path, dict, what=MetricsRecord.WHAT)
    return _validate(MetricsRecord, data, _label(path, MetricsRecord), when="it was written",
                     fix=RUN_FIX)


def write_environment(run_folder: Path | str,
                      record: EnvironmentRecord | Mapping[str, Any]) -> Path:
    """Write a run's environment.json (atomically)."""
    path = _file(run_folder, ENVIRONMENT)
    write_json(path, _to_write(EnvironmentRecord, record, path))
    return path


def read_environment(run_folder: Path | str) -> EnvironmentRecord:
    """A run's environment.json, or RunNotUsableError naming the file."""
    path = _file(run_folder, ENVIRONMENT)
    data = read_run_json(path, dict, what=EnvironmentRecord.WHAT)
    return _validate(EnvironmentRecord, data, _label(path, EnvironmentRecord),
                     when="it was written", fix=RUN_FIX)


def write_card(model_folder: Path | str, record: ModelCard | Mapping[str, Any]) -> Path:
    """Write model/card.json through the folder's manifest (its sha256 is recorded, so an edit
    after training is refused on load), from a ModelCard or the dict a workflow built."""
    from medml_cli.runs.artifacts import write_model_json

    folder = Path(model_folder)
    folder = folder.parent if folder.name == CARD else folder
    return write_model_json(folder, CARD, _to_write(ModelCard, record, folder / CARD))


def read_card(model_folder: Path | str) -> ModelCard:
    """The model card, after checking its sha256 against the manifest; RunNotUsableError
    (or ModelLoadError for a checksum problem) naming the file otherwise."""
    from medml_cli.runs.artifacts import verify_file

    folder = Path(model_folder)
    folder = folder.parent if folder.name == CARD else folder
    path = verify_file(folder, CARD)
    data = read_run_json(path, dict, what=ModelCard.WHAT)
    return _validate(ModelCard, data, _label(path, ModelCard), when="training", fix=RUN_FIX)
