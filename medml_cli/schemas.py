"""Small pydantic models shared by config, data and runs (kept free of heavy imports)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True, protected_namespaces=())


class ColumnSpec(StrictModel):
    name: str
    kind: Literal["numeric", "categorical"]
    description: str = ""


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

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def names_of(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]


class Provenance(StrictModel):
    """Where the data came from; repeated in every run that uses them."""

    source: str
    licence: str = "unknown"
    citation: str = ""
    #: file name -> sha256 of the bytes read
    files: dict[str, str] = {}
    synthetic: bool = False
