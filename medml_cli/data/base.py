"""The loaded-dataset container and the checks every tabular frame goes through."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from medml_cli.errors import DataError
from medml_cli.registry import did_you_mean
from medml_cli.schemas import ColumnSpec, FeatureSchema, Provenance

log = logging.getLogger("medml")

#: Strings read as missing in every tabular file ("?" is the UCI convention).
DEFAULT_NA_VALUES = ["?", "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]

#: A column is numeric when at least this share of its present cells parse as numbers; one
#: holding more text than that is categorical. Between the two, a column of numbers with a few
#: words ("unknown") is refused rather than guessed (it used to become one category per value).
NUMERIC_SHARE = 0.5

#: Identifier-like text: more than this share of distinct values among at least
#: ID_MIN_ROWS present cells (names, MRNs, accession numbers).
ID_DISTINCT_SHARE = 0.9
ID_MIN_ROWS = 20
#: Free text (notes, comments): mostly distinct, long and made of several words.
FREE_TEXT_MIN_ROWS = 10
FREE_TEXT_DISTINCT_SHARE = 0.5
FREE_TEXT_MIN_CHARS = 20
FREE_TEXT_MIN_WORDS = 3


@dataclass
class LoadedDataset:
    """Features, target and bookkeeping for one tabular dataset."""

    X: pd.DataFrame
    #: The outcome: a Series (classes as codes, or a number per row), or for survival a
    #: frame of ``time`` and ``event`` (1.0 = the event happened, 0.0 = censored).
    y: pd.Series | pd.DataFrame
    ids: pd.Series
    schema: FeatureSchema
    provenance: Provenance
    groups: pd.Series | None = None
    #: Extra per-row columns that are not features (e.g. ``site``), kept for reports.
    meta: pd.DataFrame | None = None
    #: The target as read (classification), so evaluation can check for unseen labels.
    target_raw: pd.Series | None = None
    #: Things the loader changed on the user's behalf (e.g. labels merged by stripping).
    notes: list[str] = field(default_factory=list)
    #: The report's bullets on the outcome, where the source describes it itself (survival:
    #: events, censoring, follow-up); otherwise they come from the target and classes.
    outcome_lines: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return len(self.y)

    def column_values(self, name: str) -> pd.Series | None:
        """The values of feature or meta column ``name`` (None when the data lack it)."""
        if self.meta is not None and name in self.meta.columns:
            return self.meta[name]
        if name in self.X.columns:
            return self.X[name]
        return None

    def set_aside(self, name: str) -> LoadedDataset:
        """This dataset with feature ``name`` moved to the meta columns: kept per row for
        splits and reports, never given to the model."""
        if name not in self.X.columns:
            return self
        meta = self.X[[name]] if self.meta is None else self.meta.join(self.X[[name]])
        schema = self.schema.model_copy(update={
            "columns": [c for c in self.schema.columns if c.name != name]})
        return replace(self, X=self.X.drop(columns=[name]), meta=meta, schema=schema,
                       notes=[*self.notes, f"`{name}` is the column whose groups are held out "
                              "in turn, so it is not a feature (a held-out group's own value "
                              "is never seen in training)"])


def _first_bad_row(mask: pd.Series) -> int:
    """1-based data row number (header excluded) of the first True in mask."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _text_cells(values: pd.Series, converted: pd.Series) -> list[str]:
    """Distinct present cells of ``values`` that did not parse as numbers, first seen first."""
    bad = converted.isna() & values.notna()
    return [str(v) for v in pd.unique(values[bad])]


def coerce_numeric_column(
    frame: pd.DataFrame, column: str, source: str, *, context: str = "training"
) -> pd.Series:
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
            words = _text_cells(values, converted)
            found = ", ".join(repr(w) for w in words[:5]) + (" ..." if len(words) > 5 else "")
            if context == "training":
                listed = ", ".join(w.strip() for w in words[:3])
                fix = (f"correct the values; or mark them missing (empty cell or '?', or list "
                       f"the words under `data.na_values`, e.g. `data.na_values: [{listed}]`); "
                       f"or, if the column is a category, declare it "
                       f"`data.categorical: [{column}]`.")
            else:
                fix = "correct the value, or leave the cell empty (or '?') to mark it missing."
            raise DataError(
                f"column '{column}' should be numeric but row {row} holds "
                f"{str(values.iloc[row - 1])!r} ({int(bad.sum())} of "
                f"{int(values.notna().sum())} present cells are text: {found}).",
                fix,
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
    # tree models compute in float32: a larger number would fail inside scikit-learn
    huge = np.abs(np.nan_to_num(converted.to_numpy(), nan=0.0)) > np.finfo(np.float32).max
    if huge.any():
        row = int(np.flatnonzero(huge)[0]) + 1
        raise DataError(
            f"column '{column}' holds {converted.iloc[row - 1]:g} at row {row}, beyond the "
            f"largest number the models can take (about ±3.4e38).",
            "correct the value (a unit or export error?), or leave the cell empty to mark it "
            "missing.", source=source)
    return converted


def looks_numeric(values: pd.Series) -> bool:
    """True when a column is numeric, or text where at least half of the present cells parse.

    A column in between (mostly numbers, some words) counts as numeric on purpose: reading it
    then fails naming the words, instead of one-hot encoding every distinct number.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return True
    parsed = pd.to_numeric(present.astype(str), errors="coerce")
    return parsed.notna().mean() >= NUMERIC_SHARE


def as_text(values: pd.Series) -> pd.Series:
    """Ids and groups as text, missing kept missing: 2 -> "2" (never "2.0"), "00002" kept."""

    def one(value: object) -> object:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return np.nan
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    return values.astype(object).map(one)


def identifier_like(values: pd.Series) -> str | None:
    """Why a categorical column looks like an identifier or free text, or None.

    Names, record numbers and notes are nearly unique per row: one-hot encoding them copies
    them into the model file and report, and teaches the model nothing.
    """
    present = values.dropna().astype(str).str.strip()
    present = present[present != ""]
    n = len(present)
    if n == 0:
        return None
    distinct = int(present.nunique())
    if n >= ID_MIN_ROWS and distinct / n > ID_DISTINCT_SHARE:
        return f"{distinct} distinct values in {n} rows"
    if n >= FREE_TEXT_MIN_ROWS and distinct / n > FREE_TEXT_DISTINCT_SHARE:
        chars = float(present.str.len().median())
        words = float(present.str.split().str.len().median())
        if chars >= FREE_TEXT_MIN_CHARS and words >= FREE_TEXT_MIN_WORDS:
            return f"free text, {distinct} distinct values in {n} rows"
    return None


def check_no_identifier_features(
    X: pd.DataFrame, categorical: list[str], source: str, *, explicit: bool
) -> None:
    """Refuse categorical features that look like names, ids or free text (see above)."""
    found = {c: why for c in categorical if c in X.columns
             if (why := identifier_like(X[c])) is not None}
    if not found:
        return
    names = list(found)
    detail = "; ".join(f"{c}: {why}" for c, why in found.items())
    override = (" Listing a column under `data.categorical` does not make it a feature: "
                "identifiers and notes never are." if explicit else "")
    raise DataError(
        f"column(s) {', '.join(names)} look like identifiers or free text ({detail}); as "
        "features their values (e.g. patient names) would be copied into the model file and "
        f"the report, and nearly unique categories teach the model nothing.{override}",
        f"leave them out with `data.exclude: [{', '.join(names)}]`, or name a per-row id as "
        f"`data.id_column: {names[0]}` (a patient id with several rows: `data.group_column`).",
        source=source,
    )


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
            out[column.name] = coerce_numeric_column(frame, column.name, source,
                                                     context=context)
        else:
            out[column.name] = as_categorical(frame[column.name])
    return pd.DataFrame(out, index=frame.index)


def check_not_all_missing(X: pd.DataFrame, source: str) -> None:
    """Raise a DataError when a feature column has no values at all."""
    empty = [c for c in X.columns if X[c].isna().all()]
    if empty:
        raise DataError(
            f"column(s) {', '.join(empty)} have no values at all, so nothing can be learnt "
            "from them and they cannot even be imputed.",
            "drop them with `data.exclude: [...]` or list the features to use in `data.features`.",
            source=source,
        )


def check_unique_ids(ids: pd.Series, column: str, source: str) -> None:
    """Raise a DataError when the id column repeats a value."""
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


def _number_key(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def label_key(value: object) -> str:
    """How target labels and ``positive_class`` are compared.

    As stripped text, numbers by value (``1``, ``1.0`` and ``" 1"`` are one label) and
    booleans as 1/0 (``True``, ``"true"`` and ``1`` are one label), so that neither a stray
    space nor the way a file or YAML typed a value changes which rows count as positive.
    """
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _number_key(float(value)) if math.isfinite(value) else str(value)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return "1" if text.lower() == "true" else "0"
    try:
        return str(int(text))
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return _number_key(number) if math.isfinite(number) else text


def _display(value: object) -> str:
    return str(value).strip()


#: Label keys of a recognised 0/1 coding (0/1, 0.0/1.0, False/True).
ZERO_ONE = frozenset({"0", "1"})


def _labels_by_key(present: pd.Series) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Key -> display text (first spelling seen), and the keys spelt in several ways."""
    spellings: dict[str, list[str]] = {}
    for raw in pd.unique(present):
        spellings.setdefault(label_key(raw), []).append(raw if isinstance(raw, str)
                                                        else str(raw))
    display = {k: _display(v[0]) for k, v in spellings.items()}
    return display, {k: v for k, v in spellings.items() if len(v) > 1}


def _note_merged_spellings(merged: dict[str, list[str]], display: dict[str, str], target: str,
                           notes: list[str] | None) -> None:
    """Log (and add to ``notes``) each label read from several spellings."""
    for key, spellings in merged.items():
        note = (f"target '{target}': the values {', '.join(repr(v) for v in spellings[:5])} "
                f"were read as one label, '{display[key]}' (spaces stripped; numbers and "
                "true/false compared by value)")
        log.warning("warning: %s", note)
        if notes is not None:
            notes.append(note)


def unseen_labels(values: pd.Series, known_labels: Iterable[object]) -> list[str]:
    """Present values of ``values`` matching none of ``known_labels`` (compared by label_key)."""
    known = {label_key(k) for k in known_labels}
    display, _ = _labels_by_key(values.dropna())
    return [text for key, text in display.items() if key not in known]


def _encode_by_label(values: pd.Series, code_of: Callable[[str], int]) -> pd.Series:
    """``code_of(label_key(v))`` for every value, -1 where missing, as an int Series.

    label_key runs once per distinct value rather than once per row: a 100,000-row target has
    two or a handful of distinct values.
    """
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    lookup = np.array([code_of(label_key(u)) for u in uniques] + [-1], dtype=int)
    # factorize's sentinel -1 picks the trailing -1: missing rows stay -1
    return pd.Series(lookup[codes], index=values.index, name=values.name)


def binary_target(
    values: pd.Series,
    target: str,
    source: str,
    positive_class: object | None,
    *,
    known_labels: Iterable[object] | None = None,
    notes: list[str] | None = None,
) -> tuple[pd.Series, list[str]]:
    """Encode a classification target as 0/1 and return it with [negative, positive] labels.

    Labels are compared with :func:`label_key`. Two labels that are not a 0/1 coding need
    ``positive_class``: guessing (alphabetically, "healthy" after "disease") inverts a model.
    ``known_labels`` (at evaluation: the labels seen in training) makes any other label an
    error instead of a silent negative. Merged spellings are added to ``notes`` and logged.
    """
    present = values.dropna()
    display, merged = _labels_by_key(present)
    keys = list(display)
    shown = ", ".join(display[k] for k in keys[:10]) + (" ..." if len(keys) > 10 else "")
    _note_merged_spellings(merged, display, target, notes)
    if len(keys) < 2:
        raise DataError(
            f"the target '{target}' has a single class ({shown or 'none'}) in "
            f"{len(present)} rows; a classifier needs both classes.",
            "check the target column and any site or row filters in the config.",
            source=source,
        )
    if known_labels is not None:
        known = list(known_labels)
        unseen = unseen_labels(present, known)
        if unseen:
            raise DataError(
                f"the target '{target}' holds value(s) the model never saw in training: "
                f"{', '.join(map(repr, unseen[:10]))} (training labels: "
                f"{', '.join(_display(k) for k in known)}); they would silently count as "
                "negative.",
                "recode them to the training labels, or remove those rows.",
                source=source,
            )
    if positive_class is not None:
        positive = label_key(positive_class)
        if positive not in display:
            raise DataError(
                f"positive_class {positive_class!r} does not occur in target '{target}' "
                f"(values: {shown}).",
                "set `data.positive_class` to one of the values listed.",
                source=source,
            )
        negatives = [k for k in keys if k != positive]
        negative_label = display[negatives[0]] if len(negatives) == 1 else \
            f"not {display[positive]}"
    elif len(keys) == 2:
        if set(keys) != ZERO_ONE:
            raise DataError(
                f"the target '{target}' has two labels, {display[keys[0]]} and "
                f"{display[keys[1]]}, that are not a 0/1 coding, so which one is the positive "
                "class cannot be known (medml does not guess).",
                f"set `data.positive_class: <one of them>` (`{display[keys[0]]}` or "
                f"`{display[keys[1]]}`), the outcome the model should predict.",
                source=source,
            )
        positive, negative_label = "1", display["0"]
    else:
        raise DataError(
            f"the target '{target}' has {len(keys)} classes ({shown}); medml's classifiers "
            "are binary.",
            "set `data.positive_class` to the class to predict (the others become negative).",
            source=source,
        )
    encoded = _encode_by_label(values, lambda key: int(key == positive))
    return encoded, [negative_label, display[positive]]


def _class_order_key(text: str) -> tuple:
    """Numbers by value, before text (grades 0-4 stay in order; "10" after "9")."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def distinct_labels(values: pd.Series) -> int:
    """How many distinct labels ``values`` holds (compared with :func:`label_key`)."""
    display, _ = _labels_by_key(values.dropna())
    return len(display)


def multiclass_target(
    values: pd.Series,
    target: str,
    source: str,
    *,
    classes: Iterable[object] | None = None,
    notes: list[str] | None = None,
) -> tuple[pd.Series, list[str]]:
    """Encode a multi-class target as codes 0..k-1 and return them with the k class labels.

    Labels are compared with :func:`label_key`; the order is ``classes`` when given (the
    training classes at evaluation, or the user's ``data.classes``), else numbers by value and
    then text alphabetically. With ``classes`` given, any other label is an error rather than
    a silently wrong code.
    """
    present = values.dropna()
    display, merged = _labels_by_key(present)
    _note_merged_spellings(merged, display, target, notes)
    shown = ", ".join(display[k] for k in list(display)[:10]) + (
        " ..." if len(display) > 10 else "")
    if classes is not None:
        order = [label_key(c) for c in classes]
        labels = [_display(c) for c in classes]
        unseen = [display[k] for k in display if k not in order]
        if unseen:
            raise DataError(
                f"the target '{target}' holds value(s) outside the classes "
                f"{', '.join(labels)}: {', '.join(map(repr, unseen[:10]))}; they cannot be "
                "given a class code.",
                "recode them to those classes, remove those rows, or list every class in "
                "`data.classes`.",
                source=source,
            )
    else:
        order = sorted(display, key=_class_order_key)
        labels = [display[k] for k in order]
    if len(display) < 2:
        raise DataError(
            f"the target '{target}' has a single class ({shown or 'none'}) in "
            f"{len(present)} rows; a classifier needs at least two classes.",
            "check the target column and any site or row filters in the config.",
            source=source,
        )
    code = {key: i for i, key in enumerate(order)}
    encoded = _encode_by_label(values, code.__getitem__)
    return encoded, labels


def training_labels(schema: FeatureSchema) -> list[str] | None:
    """The target labels a classifier was trained on, from its saved schema; None if unknown.

    ``classes`` is [negative, positive]; a negative shown as "not X" (several negative
    labels) is not recorded, so there is nothing to check. A 0/1 positive admits 0 and 1
    (the bundled heart data show ``classes`` as "no disease"/"disease").
    """
    if schema.positive_value is None or len(schema.classes) != 2:
        return None
    negative, positive = schema.classes[0], schema.positive_value
    if negative == f"not {schema.classes[1]}":
        return None
    known = [negative, positive]
    if label_key(positive) in ZERO_ONE:
        known += ["0", "1"]
    return list(dict.fromkeys(known))


def check_known_labels(dataset: LoadedDataset, schema: FeatureSchema, source: str) -> None:
    """Evaluation data: refuse target values that were neither label in training."""
    known = training_labels(schema)
    if known is None or dataset.target_raw is None:
        return
    binary_target(dataset.target_raw, schema.target, source, schema.positive_value,
                  known_labels=known)


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
    """Build the FeatureSchema (columns, kinds, target, classes) saved with a run."""
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
        positive_value=classes[1] if len(classes) == 2 else None,
    )
