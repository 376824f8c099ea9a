"""A user's own CSV or Parquet file: the generic tabular data source."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from medml_cli.data.base import (
    LoadedDataset,
    as_categorical,
    as_text,
    binary_target,
    check_no_identifier_features,
    check_unique_ids,
    coerce_numeric_column,
    distinct_labels,
    looks_numeric,
    make_schema,
    multiclass_target,
)
from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.formats.table import SEPARATORS, _label, _yaml, read_table
from medml_cli.data.survival_target import outcome_lines, survival_outcome
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS, PROBLEMS, did_you_mean
from medml_cli.schemas import MissingPolicy, Provenance


class TableFileData(FileDataConfig):
    """Your own table: one row per sample (or per visit, with a group column)."""

    type: Literal["csv", "parquet"] = Field(description="File format: csv or parquet.")
    path: Path = Field(description="The file; relative paths resolve against the config's folder.")
    target: str | None = Field(
        None, min_length=1,
        description="Column holding the outcome (every task except survival, which takes "
                    "`time` and `event`).")
    time: str | None = Field(
        None, min_length=1,
        description="Survival tasks: the follow-up time column (a number > 0: time to the "
                    "event, or to the last contact for censored patients).")
    event: str | None = Field(
        None, min_length=1, description="Survival tasks: the column saying whether the event "
                                        "happened (see `event_value`).")
    event_value: str | int | float | bool = Field(
        1, description="Survival tasks: the value of `event` that means the event happened "
                       "(e.g. 1, 2, dead); every other value counts as censored.")
    time_unit: Literal["days", "weeks", "months", "years"] | None = Field(
        None, description="Survival tasks: the unit of `time`, used in reports and plots.")
    features: list[str] | None = Field(
        None, description="Feature columns to use; default: every other column."
    )
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    categorical: list[str] | None = Field(
        None, description="Columns to one-hot encode; default: the non-numeric columns."
    )
    id_column: str | None = Field(None, description="Column with a unique id per row.")
    group_column: str | None = Field(
        None,
        description="Column with the patient id; a patient's rows stay on one side of a split.",
    )
    positive_class: str | int | float | bool | None = Field(
        None, description="Target value counted as positive (binary tasks); with more than "
                          "two classes it makes the task binary on purpose (that class vs "
                          "the rest)."
    )
    classes: list[str | int | float] | None = Field(
        None, min_length=2,
        description="Multi-class targets: the class labels in order (e.g. grades 0-4); "
                    "default: numbers by value, then text alphabetically.",
    )
    missing: MissingPolicy = "impute"
    drop_missing_target: bool = Field(
        False, description="Drop rows whose target is empty instead of stopping with an error."
    )
    separator: str | None = Field(
        None,
        min_length=1,
        description="CSV field separator; default: detected from the first lines (`,` unless "
                    "the header splits only on `;`, tab or `|`).",
    )
    decimal: Literal[".", ","] = Field(
        ".", description="Decimal mark in numbers: '.' or ',' (Excel in a German or French "
                         "locale writes `1,5` with a `;` separator).",
    )
    encoding: str = Field(
        "utf-8",
        min_length=1,
        description="Text encoding, e.g. utf-8 (a byte-order mark is accepted), cp1252, latin-1.",
    )
    na_values: list[str] = Field(
        default_factory=list,
        description="Extra cell values read as missing, e.g. [unknown, not done] (empty, ?, "
                    "NA, N/A and NaN always are).",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            known = codecs.lookup(value)._is_text_encoding  # rot13, zlib... are not text
        except LookupError:
            known = False
        if not known:
            raise ValueError(f"unknown text encoding {value!r}; use e.g. utf-8, cp1252 or latin-1")
        return value

def _require_columns(frame: pd.DataFrame, names: list[str], role: str, source: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        hint = did_you_mean(missing[0], frame.columns) + _separator_hint(frame, missing[0])
        raise DataError(
            f"{role} column(s) {', '.join(missing)} not found; the file has "
            f"{', '.join(map(str, frame.columns[:30]))}{hint}",
            "fix the column name(s) under `data` in the config.",
            source=source,
        )


def _separator_hint(frame: pd.DataFrame, name: str) -> str:
    """When the column sits inside a name split on another separator, name that separator."""
    for separator in SEPARATORS:
        parts = {p.strip() for c in map(str, frame.columns) if separator in c
                 for p in c.split(separator)}
        if name in parts:
            return (f" (the header looks {_label(separator)}-separated: set "
                    f"`data.separator: {_yaml(separator)}`)")
    return ""


def frame_to_dataset(
    frame: pd.DataFrame,
    cfg: TableFileData,
    *,
    problem: str,
    source: str,
    provenance: Provenance,
    descriptions: dict[str, str] | None = None,
    meta_columns: tuple[str, ...] = (),
) -> LoadedDataset:
    """Turn a raw table into a checked LoadedDataset (shared by every tabular source)."""
    if frame.empty:  # e.g. a site or row filter that left nothing
        raise DataError("the data have no rows.", "check the file and any site or row filters "
                        "in the config.", source=source)
    notes: list[str] = []
    # the problem type says how its target is read (a plug-in problem type may be numeric)
    target_kind = PROBLEMS.get(problem).target_kind if problem in PROBLEMS else (
        "numeric" if problem == "regression" else "classes")
    survival = target_kind == "time-to-event"
    outcome_columns = [cfg.time, cfg.event] if survival else [cfg.target]
    if None in outcome_columns:
        raise DataError("the data config names no outcome column.",
                        "set `data.time` and `data.event` (survival) or `data.target`.",
                        source=source)
    _require_columns(frame, outcome_columns, "time / event" if survival else "target", source)
    for role, name in (("id", cfg.id_column), ("group", cfg.group_column)):
        if name is not None:
            _require_columns(frame, [name], role, source)
    _require_columns(frame, cfg.exclude, "excluded", source)
    if cfg.categorical:
        _require_columns(frame, cfg.categorical, "categorical", source)
    _require_columns(frame, list(meta_columns), "split (`split.by`)", source)

    reserved = {*outcome_columns, cfg.id_column, cfg.group_column, *cfg.exclude,
                *meta_columns} - {None}
    if cfg.features is not None:
        _require_columns(frame, cfg.features, "feature", source)
        clash = [f for f in cfg.features if f in reserved]
        if clash:
            raise DataError(
                f"column(s) {', '.join(clash)} are listed as features but are also the target, "
                "id, group or excluded column.",
                "remove them from `data.features`.",
                source=source,
            )
        feature_names = list(cfg.features)
    else:
        feature_names = [c for c in frame.columns if c not in reserved]
    if not feature_names:
        raise DataError("no feature columns are left once target, id, group and exclusions "
                        "are set aside.", "list feature columns in `data.features`.",
                        source=source)

    missing_target = frame[outcome_columns].isna().any(axis=1)
    if survival and not cfg.drop_missing_target:
        missing_target[:] = False  # survival_outcome names the empty column and row
    if missing_target.any():
        if not cfg.drop_missing_target:
            raise DataError(
                f"the target '{cfg.target}' is empty in {int(missing_target.sum())} row(s) "
                f"(first at data row {int(missing_target.to_numpy().argmax()) + 1}).",
                "fill those outcomes, remove the rows, or set `data.drop_missing_target: true`.",
                source=source,
            )
        frame = frame.loc[~missing_target].reset_index(drop=True)
        if frame.empty:
            raise DataError("every row has an empty target.", "check the target column.",
                            source=source)

    target = frame[outcome_columns[0]]
    classes: list[str] = []
    if survival:
        y = survival_outcome(frame, time=cfg.time, event=cfg.event,
                             event_value=cfg.event_value, source=source)
    elif target_kind == "numeric":
        if not looks_numeric(target):
            raise DataError(
                f"the target '{cfg.target}' is not numeric, so it cannot be regressed on.",
                "use a numeric outcome, or a classification task for categories.",
                source=source,
            )
        y = coerce_numeric_column(frame, cfg.target, source)
    elif problem == "multiclass" or (cfg.positive_class is None
                                     and (cfg.classes or distinct_labels(target) > 2)):
        if cfg.positive_class is not None:
            raise DataError(
                f"`data.positive_class` makes a target binary, but this task is multi-class "
                f"(every class of '{cfg.target}' is predicted).",
                "remove `data.positive_class`, or use a binary task such as "
                "`tabular-classification`.", source=source)
        y, classes = multiclass_target(target, cfg.target, source, classes=cfg.classes,
                                       notes=notes)
    else:
        y, classes = binary_target(target, cfg.target, source, cfg.positive_class, notes=notes)

    categorical = list(cfg.categorical) if cfg.categorical is not None else [
        c for c in feature_names if not looks_numeric(frame[c])
    ]
    X = _numeric_features(frame, feature_names) if not categorical else None
    if X is None:  # text or categorical columns, or a value to refuse: column by column
        columns = {}
        for name in feature_names:
            if name in categorical:
                columns[name] = as_categorical(frame[name])
            else:
                columns[name] = coerce_numeric_column(frame, name, source)
        X = pd.DataFrame(columns, index=frame.index)
    # an all-missing column is refused by training only (check_not_all_missing): a saved
    # model imputes it, so evaluation and predict score such rows and say so loudly
    check_no_identifier_features(X, [c for c in feature_names if c in categorical], source,
                                 explicit=cfg.categorical is not None)

    if cfg.id_column:
        ids = _text_column(frame, cfg.id_column, "id", source)
        check_unique_ids(ids, cfg.id_column, source)
    else:
        # row numbers as text, "1"..."n"
        ids = pd.Series(np.array(list(map(str, range(1, len(frame) + 1))), dtype=object),
                        index=frame.index)
    groups = _text_column(frame, cfg.group_column, "group", source) \
        if cfg.group_column else None
    meta = frame[list(meta_columns)].copy() if meta_columns else None
    schema = make_schema(
        X,
        categorical,
        target=outcome_columns[0],
        id_column=cfg.id_column,
        group_column=cfg.group_column,
        classes=classes,
        descriptions=descriptions,
    )
    schema = schema.model_copy(update={"missing": cfg.missing})
    described: list[str] = []
    if survival:
        schema = schema.model_copy(update={"event_column": cfg.event,
                                           "event_value": str(cfg.event_value),
                                           "time_unit": cfg.time_unit})
        described = outcome_lines(y, time=cfg.time, event=cfg.event,
                                  event_value=cfg.event_value, unit=cfg.time_unit)
    return LoadedDataset(X=X, y=y, ids=ids, schema=schema, provenance=provenance,
                         groups=groups, meta=meta,
                         target_raw=None if target_kind != "classes" else target.copy(),
                         notes=notes, outcome_lines=described)


def _numeric_features(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame | None:
    """The features as float in one pass when every one is an int or float column holding
    only finite numbers a float32 model can take; None otherwise, and then
    :func:`coerce_numeric_column`, column by column, converts them or names the bad cell."""
    if not all(frame[name].dtype.kind in "iuf" for name in names):
        return None
    values = frame[names].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # NaN (a missing cell) is neither
        if np.isinf(values).any() or (np.abs(values) > np.finfo(np.float32).max).any():
            return None
    # one float block laid out as a frame built column by column (each column contiguous)
    return pd.DataFrame(np.ascontiguousarray(values.T).T, columns=names, index=frame.index)


def _text_column(frame: pd.DataFrame, name: str, role: str, source: str) -> pd.Series:
    """An id or group column as text; an empty cell would become the id "nan"."""
    values = as_text(frame[name])
    empty = values.isna() | (values.str.strip() == "")
    if empty.any():
        raise DataError(
            f"the {role} column '{name}' is empty in {int(empty.sum())} row(s) (first at data "
            f"row {int(empty.to_numpy().argmax()) + 1}).",
            "give every row its id (patient id for `data.group_column`), or unset "
            f"`data.{role}_column`.",
            source=source,
        )
    return values.astype(str)


@DATASETS.register("csv", config=TableFileData, summary="your own CSV file",
                   tags={"tabular", "binary-classification", "multiclass", "regression",
                         "classes-target", "numeric-target", "time-to-event-target"},
                   extra={"keep_columns": True})
@DATASETS.register("parquet", config=TableFileData, summary="your own Parquet file",
                   tags={"tabular", "binary-classification", "multiclass", "regression",
                         "classes-target", "numeric-target", "time-to-event-target"},
                   extra={"keep_columns": True})
def load_table_file(cfg: TableFileData, *, problem: str,
                    keep_columns: tuple[str, ...] = ()) -> LoadedDataset:
    """Load the user's CSV or Parquet table as a tabular dataset; ``keep_columns`` (e.g. the
    hospital column of a leave-group-out split) are read as text and kept per row, never as
    features."""
    frame = read_table(cfg.path, cfg.type, cfg.separator, decimal=cfg.decimal,
                       encoding=cfg.encoding,
                       text_columns=(cfg.id_column, cfg.group_column, *keep_columns),
                       categorical=[*(cfg.categorical or []), *cfg.exclude],
                       na_values=cfg.na_values)
    provenance = Provenance(
        source=f"user file {cfg.path.name}",
        files={cfg.path.name: sha256_file(cfg.path)},
    )
    dataset = frame_to_dataset(frame, cfg, problem=problem, source=str(cfg.path),
                               provenance=provenance, meta_columns=keep_columns)
    dataset.notes[:0] = frame.attrs.get("notes", [])  # detected separator, BOM, empty columns
    return dataset
