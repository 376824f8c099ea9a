"""A user's own CSV or Parquet file: the generic tabular data source."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, ValidationInfo, model_validator

from medml_cli.data.base import (
    DEFAULT_NA_VALUES,
    LoadedDataset,
    as_categorical,
    as_text,
    binary_target,
    check_no_identifier_features,
    check_unique_ids,
    coerce_numeric_column,
    looks_numeric,
    make_schema,
    sha256_file,
)
from medml_cli.data.paths import require_regular_file
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS, did_you_mean
from medml_cli.schemas import Provenance, StrictModel


def resolve_config_path(value: str | Path, info: ValidationInfo) -> Path:
    """Relative paths in a config resolve against the config file's own folder."""
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir") if info.context else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path.resolve() if path.is_absolute() or base is not None else path


class FileDataConfig(StrictModel):
    """Base of data sections that name files: every Path field (and Path | None) resolves
    against the config file's folder."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_paths(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            value = data.get(name)
            if "Path" in str(field.annotation) and isinstance(value, (str, Path)) and str(value):
                data[name] = resolve_config_path(value, info)
        return data


class TableFileData(FileDataConfig):
    """Your own table: one row per sample (or per visit, with a group column)."""

    type: Literal["csv", "parquet"] = Field(description="File format: csv or parquet.")
    path: Path = Field(description="The file; relative paths resolve against the config's folder.")
    target: str = Field(min_length=1, description="Column holding the outcome.")
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
        None, description="Target value counted as positive (binary tasks)."
    )
    drop_missing_target: bool = Field(
        False, description="Drop rows whose target is empty instead of stopping with an error."
    )
    separator: str = Field(",", min_length=1, description="CSV field separator.")
    na_values: list[str] = Field(
        default_factory=list,
        description="Extra cell values read as missing, e.g. [unknown, not done] (empty, ?, "
                    "NA, N/A and NaN always are).",
    )


def _is_parquet(path: Path, fmt: str) -> bool:
    return fmt == "parquet" or path.suffix.lower() in {".parquet", ".pq"}


def read_table(
    path: Path,
    fmt: str = "csv",
    separator: str = ",",
    *,
    text_columns: Iterable[str | None] = (),
    na_values: Iterable[str] = (),
    role: str = "`data.path`",
) -> pd.DataFrame:
    """Read a CSV/Parquet file with clear errors for missing, empty and malformed files.

    ``text_columns`` (ids, patient groups) are read as text, so "00002" stays "00002" and
    never becomes 2 or 2.0; names not in the file are ignored. ``na_values`` are extra cell
    values read as missing, compared after stripping spaces. ``role`` names where the path
    came from ("`data.path`", "--input") in messages.
    """
    source = str(path)
    if not path.exists() and not path.is_symlink():
        where = " (relative paths are read from the config file's folder)" \
            if role.startswith("`data.") else ""
        raise DataError(f"file not found: {path}.", f"check {role}{where}.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a {fmt} file.", f"point {role} at a file.")
    # before any open: a FIFO would block forever and /dev/zero would fill the memory
    require_regular_file(path, role)
    text = [c for c in dict.fromkeys(text_columns) if c]
    extra_na = [str(v).strip() for v in na_values]
    parquet = _is_parquet(path, fmt)
    try:
        if parquet:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path,
                sep=separator,
                na_values=[*DEFAULT_NA_VALUES, *extra_na],
                keep_default_na=True,
                skipinitialspace=True,
                dtype=dict.fromkeys(text, str) or None,
            )
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty.", "give a file with a header row and data rows.",
                        source=source) from None
    except PermissionError:
        raise DataError("the file cannot be read (permission denied).",
                        "check the file's permissions.", source=source) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"the file could not be parsed as {fmt}: {first}.",
                        f"check that it is a valid {fmt} file.", source=source) from None
    if frame.empty:
        raise DataError(
            f"the file has a header ({', '.join(map(str, frame.columns[:10]))}) but no data rows."
            if len(frame.columns) else "the file holds no data.",
            "give a file with at least a few data rows.",
            source=source,
        )
    header = frame.columns
    if not parquet:
        # pandas renames a repeated header 'a' to 'a.1'; read the raw header to catch it
        header = pd.read_csv(path, sep=separator, header=None, nrows=1).iloc[0].astype(str)
    frame.columns = [str(c).strip() for c in frame.columns]
    header = pd.Index([str(c).strip() for c in header])
    duplicated = header[header.duplicated()].tolist()
    if duplicated:
        raise DataError(f"duplicated column name(s): {', '.join(duplicated)}.",
                        "give every column a distinct name.", source=source)
    if extra_na:
        _mark_missing(frame, set(extra_na))
    for name in text:
        if name in frame.columns:
            frame[name] = as_text(frame[name])  # parquet numbers; CSV columns are str already
    return frame


def _mark_missing(frame: pd.DataFrame, words: set[str]) -> None:
    """Cells equal to one of ``words`` (after stripping) become missing, in text columns.

    pandas compares na_values exactly, so "unknown " and Parquet text need this pass; a
    column left with only numbers is then read as numeric like any other.
    """
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        hits = values.notna() & values.astype(str).str.strip().isin(words)
        if hits.any():
            frame[column] = values.mask(hits)


def _require_columns(frame: pd.DataFrame, names: list[str], role: str, source: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        hint = did_you_mean(missing[0], frame.columns)
        raise DataError(
            f"{role} column(s) {', '.join(missing)} not found; the file has "
            f"{', '.join(map(str, frame.columns[:30]))}{hint}",
            "fix the column name(s) under `data` in the config.",
            source=source,
        )


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
    notes: list[str] = []
    _require_columns(frame, [cfg.target], "target", source)
    for role, name in (("id", cfg.id_column), ("group", cfg.group_column)):
        if name is not None:
            _require_columns(frame, [name], role, source)
    _require_columns(frame, cfg.exclude, "excluded", source)
    if cfg.categorical:
        _require_columns(frame, cfg.categorical, "categorical", source)

    reserved = {cfg.target, cfg.id_column, cfg.group_column, *cfg.exclude, *meta_columns} - {None}
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

    target = frame[cfg.target]
    missing_target = target.isna()
    if missing_target.any():
        if not cfg.drop_missing_target:
            raise DataError(
                f"the target '{cfg.target}' is empty in {int(missing_target.sum())} row(s) "
                f"(first at data row {int(missing_target.to_numpy().argmax()) + 1}).",
                "fill those outcomes, remove the rows, or set `data.drop_missing_target: true`.",
                source=source,
            )
        frame = frame.loc[~missing_target].reset_index(drop=True)
        target = frame[cfg.target]
        if frame.empty:
            raise DataError("every row has an empty target.", "check the target column.",
                            source=source)

    if problem == "regression":
        if not looks_numeric(target):
            raise DataError(
                f"the target '{cfg.target}' is not numeric, so it cannot be regressed on.",
                "use a numeric outcome, or a classification task for categories.",
                source=source,
            )
        y = coerce_numeric_column(frame, cfg.target, source)
        classes: list[str] = []
    else:
        y, classes = binary_target(target, cfg.target, source, cfg.positive_class, notes=notes)

    categorical = list(cfg.categorical) if cfg.categorical is not None else [
        c for c in feature_names if not looks_numeric(frame[c])
    ]
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
        ids = pd.Series([str(i + 1) for i in range(len(frame))], index=frame.index)
    groups = _text_column(frame, cfg.group_column, "group", source) \
        if cfg.group_column else None
    meta = frame[list(meta_columns)].copy() if meta_columns else None
    schema = make_schema(
        X,
        categorical,
        target=cfg.target,
        id_column=cfg.id_column,
        group_column=cfg.group_column,
        classes=classes,
        descriptions=descriptions,
    )
    return LoadedDataset(X=X, y=y, ids=ids, schema=schema, provenance=provenance,
                         groups=groups, meta=meta,
                         target_raw=None if problem == "regression" else target.copy(),
                         notes=notes)


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
                   tags={"tabular", "binary-classification", "regression"})
@DATASETS.register("parquet", config=TableFileData, summary="your own Parquet file",
                   tags={"tabular", "binary-classification", "regression"})
def load_table_file(cfg: TableFileData, *, problem: str) -> LoadedDataset:
    frame = read_table(cfg.path, cfg.type, cfg.separator,
                       text_columns=(cfg.id_column, cfg.group_column), na_values=cfg.na_values)
    provenance = Provenance(
        source=f"user file {cfg.path.name}",
        files={cfg.path.name: sha256_file(cfg.path)},
    )
    return frame_to_dataset(frame, cfg, problem=problem, source=str(cfg.path),
                            provenance=provenance)
