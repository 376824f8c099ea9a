"""Small pydantic models shared by config, data and runs (kept free of heavy imports)."""

from __future__ import annotations

import math
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

#: The default HU window, the lung window: air (-1000 HU) to dense soft tissue / contrast
#: (+400 HU). Data sources, the HU reader and the Keras input pipeline all default to it.
DEFAULT_HU_WINDOW: tuple[float, float] = (-1000.0, 400.0)


def _types_in(annotation: Any) -> set[Any]:
    """The plain types (and Literal values' types) an annotation admits, through unions."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types_in(a) for a in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return _types_in(typing.get_args(annotation)[0])
    return {origin or annotation}


def _number_not_bool(annotation: Any) -> bool:
    admitted = _types_in(annotation)
    return bool(admitted & {int, float}) and bool not in admitted


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        # pydantic reads true as 1 for an int field: `n_estimators: true` would be one tree
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None:
                continue
            annotation, items = field.annotation, [value]
            if typing.get_origin(annotation) is list and isinstance(value, list):
                annotation, items = typing.get_args(annotation)[0], value
            flags = [v for v in items if isinstance(v, bool)]
            if flags and _number_not_bool(annotation):
                raise PydanticCustomError(
                    "bool_for_number",
                    "{field}: {value} is a boolean, but {field} takes a number; write the "
                    "number itself",
                    {"field": name, "value": str(flags[0]).lower()},
                )
        return data


class ColumnSpec(StrictModel):
    """One feature column: name, numeric or categorical, and description."""

    name: str
    kind: Literal["numeric", "categorical"]
    description: str = ""


#: ``data.missing`` of the tabular sources, and the policy a saved pipeline was built with.
MissingPolicy = Annotated[
    Literal["impute", "indicator", "native"],
    Field(description="Missing feature values: impute (median / most frequent value, learnt "
                      "in each training fold), indicator (the same plus a 0/1 column per "
                      "feature with missing values), native (left missing for a model that "
                      "handles them itself: gradient-boosting, random-forest)."),
]


class FeatureSchema(StrictModel):
    """What a tabular model was trained on; checked again at predict time."""

    columns: list[ColumnSpec]
    target: str
    id_column: str | None = None
    group_column: str | None = None
    #: Original target labels [negative, positive] for classification; empty for regression.
    classes: list[str] = []
    #: The raw target value counted as positive (classification), e.g. "1".
    positive_value: str | None = None
    #: Survival: ``target`` is the follow-up time column; this column says whether the event
    #: happened (``event_value``, as text) or the patient was censored; ``time_unit`` of time.
    event_column: str | None = None
    event_value: str | None = None
    time_unit: str | None = None
    #: How missing feature values are handled (``data.missing``).
    missing: MissingPolicy = "impute"
    #: Values (as strings) each categorical feature took in the rows the saved model was fitted
    #: on, so predict can flag a value the model never saw. Empty in runs of earlier versions.
    categories: dict[str, list[str]] = {}
    #: [min, max] of each numeric feature in those rows (same purpose, same caveat).
    ranges: dict[str, list[float]] = {}

    def with_training_stats(self, X: Any) -> FeatureSchema:
        """This schema plus the categories and numeric ranges of ``X`` (a DataFrame of the
        rows the shipped model was fitted on, as :func:`prepare_features` makes them)."""
        categories = {name: sorted({str(v) for v in X[name].dropna()})
                      for name in self.names_of("categorical")}
        ranges: dict[str, list[float]] = {}
        numeric = self.names_of("numeric")
        if numeric:
            import numpy as np  # this module is read by `medml --help`; numpy only here

            # every column at once, as pandas' min/max take one: missing cells set to the
            # far end, so a column with no values is left at +-inf and gets no range
            values = X[numeric].to_numpy(dtype=float)
            missing = np.isnan(values)
            lows = np.where(missing, np.inf, values).min(axis=0).tolist()
            highs = np.where(missing, -np.inf, values).max(axis=0).tolist()
            for name, low, high in zip(numeric, lows, highs, strict=True):
                if math.isfinite(low) and math.isfinite(high):
                    ranges[name] = [low, high]
        return self.model_copy(update={"categories": categories, "ranges": ranges})

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [c.name for c in self.columns]

    def names_of(self, kind: str) -> list[str]:
        """Names of the feature columns of ``kind`` (numeric or categorical)."""
        return [c.name for c in self.columns if c.kind == kind]


class Provenance(StrictModel):
    """Where the data came from; repeated in every run that uses them."""

    source: str
    licence: str = "unknown"
    citation: str = ""
    #: file name -> sha256 of the bytes read
    files: dict[str, str] = {}
    synthetic: bool = False
