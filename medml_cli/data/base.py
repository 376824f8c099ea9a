"""The loaded-dataset container and the checks every tabular frame goes through."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medml_cli.errors import DataError
from medml_cli.registry import did_you_mean
from medml_cli.schemas import ColumnSpec, FeatureSchema, Provenance

#: Strings read as missing in every tabular file ("?" is the UCI convention).
DEFAULT_NA_VALUES = ["?", "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


@dataclass
class LoadedDataset:
    """Features, target and bookkeeping for one tabular dataset."""

    X: pd.DataFrame
    y: pd.Series
    ids: pd.Series
    schema: FeatureSchema
    provenance: Provenance
    groups: pd.Series | None = None
    #: Extra per-row columns that are not features (e.g. ``site``), kept for reports.
    meta: pd.DataFrame | None = None

    @property
    def n_samples(self) -> int:
        return len(self.y)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_bad_row(mask: pd.Series) -> int:
    """1-based data row number (header excluded) of the first True in mask."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def coerce_numeric_column(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """Convert one column to float, or raise naming the first row that is not a number."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        converted = values.astype(float)
    else:
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            row = _first_bad_row(bad)
            raise DataError(
                f"column '{column}' should be numeric but row {row} holds "
                f"{str(values.iloc[row - 1])!r}.",
                "correct the value, or leave the cell empty (or '?') to mark it missing.",
                source=source,
            )
        converted = converted.astype(float)
    infinite = np.isinf(converted.to_numpy())
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0]) + 1
        raise DataError(
            f"column '{column}' holds an infinite value at row {row}.",
            "replace it with a finite number or leave the cell empty to mark it missing.",
            source=source,
        )
    return converted


def looks_numeric(values: pd.Series) -> bool:
    """True when a column is numeric, or text where at least 90% of present cells parse."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return True
    parsed = pd.to_numeric(present.astype(str), errors="coerce")
    return parsed.notna().mean() >= 0.9


def as_categorical(values: pd.Series) -> pd.Series:
    """Categorical features go to the model as object strings with NaN for missing."""
    out = values.astype(object)
    mask = values.isna()
    out = out.where(mask, out.map(lambda v: str(v)))
    out[mask] = np.nan
    return out


def prepare_features(
    frame: pd.DataFrame, schema: FeatureSchema, source: str, *, context: str = "training"
) -> pd.DataFrame:
    """Select and type-check the schema's feature columns of ``frame``.

    Missing columns are an error that lists them; unexpected ones are the caller's concern.
    """
    missing = [c for c in schema.feature_names if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:30]))
        hints = "".join(did_you_mean(m, map(str, frame.columns)) for m in missing[:3])
        raise DataError(
            f"the {context} data lack the column(s) {', '.join(missing)} that the model needs "
            f"(found: {available}){hints}",
            "add those columns (empty cells are read as missing) or rename them to match.",
            source=source,
        )
    out = {}
    for column in schema.columns:
        if column.kind == "numeric":
            out[column.name] = coerce_numeric_column(frame, column.name, source)
        else:
            out[column.name] = as_categorical(frame[column.name])
    return pd.DataFrame(out, index=frame.index)


def check_not_all_missing(X: pd.DataFrame, source: str) -> None:
    empty = [c for c in X.columns if X[c].isna().all()]
    if empty:
        raise DataError(
            f"column(s) {', '.join(empty)} have no values at all, so nothing can be learnt "
            "from them and they cannot even be imputed.",
            "drop them with `data.exclude: [...]` or list the features to use in `data.features`.",
            source=source,
        )


def check_unique_ids(ids: pd.Series, column: str, source: str) -> None:
    duplicated = ids[ids.duplicated()]
    if not duplicated.empty:
        examples = ", ".join(map(str, duplicated.unique()[:5]))
        raise DataError(
            f"the id column '{column}' has {duplicated.size} duplicated value(s) "
            f"(e.g. {examples}).",
            "ids must identify rows uniquely; use `data.group_column` for a patient with "
            "several rows, and a per-row id column (or none) as `data.id_column`.",
            source=source,
        )


def binary_target(
    values: pd.Series, target: str, source: str, positive_class: object | None
) -> tuple[pd.Series, list[str]]:
    """Encode a classification target as 0/1 and return it with [negative, positive] labels."""
    present = values.dropna()
    labels = list(pd.unique(present))
    if len(labels) < 2:
        raise DataError(
            f"the target '{target}' has a single class ({labels[0] if labels else 'none'}) in "
            f"{len(present)} rows; a classifier needs both classes.",
            "check the target column and any site or row filters in the config.",
            source=source,
        )
    if positive_class is not None:
        matches = [lab for lab in labels if str(lab) == str(positive_class)]
        if not matches:
            raise DataError(
                f"positive_class {positive_class!r} does not occur in target '{target}' "
                f"(values: {', '.join(map(str, labels[:10]))}).",
                "set `data.positive_class` to one of the values listed.",
                source=source,
            )
        positive = matches[0]
        negatives = [lab for lab in labels if lab != positive]
        negative_label = str(negatives[0]) if len(negatives) == 1 else f"not {positive}"
    elif len(labels) == 2:
        ordered = sorted(labels, key=lambda v: (str(type(v)), v))
        if set(map(str, ordered)) <= {"0", "1", "0.0", "1.0", "False", "True"}:
            ordered = sorted(labels, key=lambda v: float(v))
        negative_label, positive = str(ordered[0]), ordered[1]
    else:
        raise DataError(
            f"the target '{target}' has {len(labels)} classes "
            f"({', '.join(map(str, labels[:10]))}); medml's classifiers are binary.",
            "set `data.positive_class` to the class to predict (the others become negative).",
            source=source,
        )
    encoded = (values.astype(object).map(str) == str(positive)).astype(int)
    encoded[values.isna()] = -1
    return encoded, [negative_label, str(positive)]


def make_schema(
    X: pd.DataFrame,
    categorical: list[str],
    *,
    target: str,
    id_column: str | None,
    group_column: str | None,
    classes: list[str],
    descriptions: dict[str, str] | None = None,
) -> FeatureSchema:
    descriptions = descriptions or {}
    columns = [
        ColumnSpec(
            name=str(c),
            kind="categorical" if c in categorical else "numeric",
            description=descriptions.get(str(c), ""),
        )
        for c in X.columns
    ]
    return FeatureSchema(
        columns=columns,
        target=target,
        id_column=id_column,
        group_column=group_column,
        classes=classes,
        positive_value=classes[1] if classes else None,
    )
