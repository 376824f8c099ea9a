"""Reading a trained run back for evaluate and predict: its config, model card and feature
schema, and the checks of new rows against that schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.config.loader import read_config_file, validate_config_data
from medml_cli.errors import ConfigError, RunNotUsableError
from medml_cli.jsonio import RUN_FIX, read_run_json
from medml_cli.runs.artifacts import verify_file
from medml_cli.runs.records import read_card
from medml_cli.schemas import FeatureSchema


def load_run_config(run_path: Path) -> Any:
    """The run's resolved config; a damaged or edited one is a run problem, said as such."""
    path = run_path / "config.yaml"
    try:
        data, lines = read_config_file(path)
        return validate_config_data(data, source=str(path), lines=lines)
    except ConfigError as exc:
        problems = "; ".join(exc.problems[:3]) + ("; ..." if len(exc.problems) > 3 else "")
        raise RunNotUsableError(
            f"{path} (the run's resolved config) cannot be used: {problems}. It was damaged "
            "or edited after training (or written by another medml version). Fix: restore "
            "the original file, or train again from your own config."
        ) from None


def load_schema(run_path: Path) -> FeatureSchema:
    """The features the model was trained on, after checking schema.json's sha256."""
    return load_feature_schema(verify_file(run_path / "model", "schema.json"))


def load_feature_schema(path: Path, fix: str = RUN_FIX) -> FeatureSchema:
    """A schema.json (already checked against its manifest) as a FeatureSchema; a damaged
    one is a RunNotUsableError naming the file and ``fix``."""
    from pydantic import ValidationError

    data = read_run_json(path, dict, what="the model's feature schema", fix=fix)
    try:
        return FeatureSchema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise RunNotUsableError(
            f"{path} (the model's feature schema) is not valid: {where}: {first['msg']} "
            f"({exc.error_count()} problem(s)); it was damaged or edited after training. "
            f"Fix: {fix}."
        ) from None


def load_card(run_path: Path) -> dict[str, Any]:
    """The model card (format, problem, threshold, classes), after checking its sha256: the
    keys card.json holds, validated by :func:`medml_cli.runs.records.read_card`."""
    return read_card(run_path / "model").as_dict()


#: A numeric value counts as far outside the training range when it lies more than this many
#: training ranges beyond the minimum or maximum (e.g. age 400 against 29-77).
RANGE_MARGIN = 1.0


def _as_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def align_category_spelling(X: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Spell numeric category codes as training did: a table read with integers gives "1"
    where the training data (read as floats) gave "1.0", and the one-hot encoder would take
    "1" for an unseen category and silently drop it. Only values equal as numbers to exactly
    a training category are rewritten; anything else stays, and is flagged as unseen."""
    X = X.copy()
    for name, known in schema.categories.items():
        if name not in X.columns:
            continue
        by_number: dict[float, str] = {}
        for category in known:
            number = _as_number(category)
            if number is not None:
                by_number.setdefault(number, category)
        values = X[name]
        other = values.notna() & ~values.isin(known)
        if not by_number or not other.any():
            continue
        spelled = values[other].map(lambda v, known=by_number: known.get(_as_number(v)))
        spelled = spelled[spelled.notna()]
        X.loc[spelled.index, name] = spelled
    return X


def row_warnings(X: pd.DataFrame, schema: FeatureSchema) -> pd.Series:
    """Per row, what makes its score untrustworthy: category values the model never saw,
    numbers far outside the training range, more than half the features missing; "" if none.

    Vectorised per column so that 100,000-row inputs cost milliseconds, not seconds.
    """
    # only flagged rows get a list: one per row of a 100,000-row input is 100,000 objects
    # (and garbage-collector passes over them) for what is usually no warning at all
    notes: dict[int, list[str]] = {}
    for column in schema.columns:
        name = column.name
        values = X[name]
        if column.kind == "categorical" and name in schema.categories:
            unseen = values.notna() & ~values.astype(object).isin(schema.categories[name])
            for i in np.flatnonzero(unseen.to_numpy()):
                notes.setdefault(int(i), []).append(
                    f"unseen category: {name}={values.iloc[i]}")
        elif column.kind == "numeric" and name in schema.ranges:
            low, high = schema.ranges[name]
            margin = RANGE_MARGIN * ((high - low) or max(abs(high), 1.0))
            numbers = values.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                outside = (numbers < low - margin) | (numbers > high + margin)
            for i in np.flatnonzero(outside):
                notes.setdefault(int(i), []).append(
                    f"{name}={numbers[i]:g} far outside the training range {low:g}-{high:g}")
    n_features = len(schema.columns)
    missing = X[schema.feature_names].isna().sum(axis=1).to_numpy()
    for i in np.flatnonzero(missing * 2 > n_features):
        notes.setdefault(int(i), []).append(f"{missing[i]} of {n_features} features missing")
    out = np.full(len(X), "", dtype=object)
    for i, row in notes.items():
        out[i] = "; ".join(row)
    return pd.Series(out, index=X.index, dtype=object)


def row_warning_summary(warnings: pd.Series, schema: FeatureSchema | None = None) -> list[str]:
    """One line counting flagged rows by kind (none when every row is fine)."""
    flagged = warnings[warnings != ""]
    lines: list[str] = []
    if len(flagged):
        kinds = {"unseen category": "unseen category values",
                 "far outside the training range": "values far outside the training range",
                 "features missing": "more than half the features missing",
                 "constant image": "constant images"}
        counts = [f"{int(flagged.str.contains(key, regex=False).sum())} with {label}"
                  for key, label in kinds.items() if flagged.str.contains(key, regex=False).any()]
        lines.append(f"{len(flagged)} of {len(warnings)} row(s) are unlike the training data, "
                     f"so their scores are extrapolations ({', '.join(counts)}); see the "
                     "`warnings` column")
    if schema is not None and not schema.categories and not schema.ranges:
        lines.append("this run's schema.json predates medml's record of training categories "
                     "and ranges, so unseen categories and out-of-range values are not "
                     "flagged (rows with most features missing still are)")
    return lines
