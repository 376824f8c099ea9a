"""A user's own CSV or Parquet file: the generic tabular data source."""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from medml_cli.data.base import (
    DEFAULT_NA_VALUES,
    NUMERIC_SHARE,
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


#: Separators tried when `data.separator` is not set; the preferred one (`,`, tab for .tsv,
#: or the training's for evaluate/predict) wins whenever the first lines fit it.
SEPARATORS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_SNIFF_ROWS = 200
_BLOCK = 1 << 20
#: "1,5", "-0,25", ",5": a number written with a decimal comma.
_DECIMAL_COMMA = r"[+-]?\d*,\d+"
_LEGACY_HINT = "`data.encoding: cp1252` (Excel on Windows) or `data.encoding: latin-1`"


def _is_parquet(path: Path, fmt: str) -> bool:
    return fmt == "parquet" or path.suffix.lower() in {".parquet", ".pq"}


def _yaml(separator: str) -> str:
    """A separator as it is written in YAML (a tab needs double quotes)."""
    return '"\\t"' if separator == "\t" else f"'{separator}'"


def _label(separator: str) -> str:
    return "tab" if separator == "\t" else f"`{separator}`"


def _in_config(role: str) -> bool:
    return role.startswith("`data.")


def _resolve_encoding(head: bytes, encoding: str) -> str:
    """The codec to read with. A byte-order mark wins over the configured encoding: Excel's
    "CSV UTF-8" starts with one, and read any other way it becomes part of the first name."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text"
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _first_decode_error(path: Path, encoding: str) -> tuple[int, int, bytes] | None:
    """(byte offset, line, bad bytes) of the first byte that does not decode, or None.

    Read in blocks so a large file is never held twice; pandas' own error gives neither
    the offset in the file nor the line.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = lines = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            pending = decoder.getstate()[0]  # bytes of a character split across blocks
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                at = offset - len(pending) + exc.start
                line = lines + block[: max(0, at - offset)].count(b"\n") + 1
                return at, line, bytes(exc.object[exc.start:exc.end])
            if not block:
                return None
            offset += len(block)
            lines += block.count(b"\n")


def _codec_name(codec: str) -> str:
    """utf-8-sig is UTF-8 that may start with a byte-order mark; say utf-8 to the user."""
    name = codecs.lookup(codec).name
    return "utf-8" if name == "utf-8-sig" else name


def _check_encoding(path: Path, codec: str, role: str, source: str) -> None:
    if codecs.lookup(codec).name == "iso8859-1":
        return  # every byte is a latin-1 character
    error = _first_decode_error(path, codec)
    if error is None:
        return
    at, line, bad = error
    shown = _codec_name(codec)
    others = [e for e in ("utf-8", "cp1252", "latin-1") if codecs.lookup(e).name != shown]
    if _in_config(role):
        options = _LEGACY_HINT if shown == "utf-8" else \
            " or ".join(f"`data.encoding: {e}`" for e in others)
        fix = f"set {options}, or re-save the file as CSV UTF-8."
    else:
        fix = ("re-save the file as CSV UTF-8 (or in the encoding of the run's training table, "
               f"{shown})" + (", or give --data a data config (.yaml) with `encoding: cp1252`."
                              if role == "--data" else "."))
    raise DataError(
        f"the file is not valid {shown} text: byte(s) {bad.hex(' ')} at byte offset {at} "
        f"(line {line}) cannot be decoded.",
        fix,
        source=source,
    )


def _sample_text(path: Path, encoding: str) -> str:
    """The first lines, decoded; a line cut at the sample's end is left out (it looks short)."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES + 1)
    text = head[:_SNIFF_BYTES].decode(encoding, errors="replace")
    if len(head) > _SNIFF_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    return text


def _split_rows(text: str, separator: str) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=separator,
                              skipinitialspace=True):
            if row:  # pandas skips blank lines too
                rows.append(row)
            if len(rows) > _SNIFF_ROWS:
                break
    except (csv.Error, TypeError):  # TypeError: a multi-character (regex) separator
        return []
    return rows


def _fit(rows: list[list[str]]) -> int:
    """Columns of the header when it has at least two and no sampled row is wider (an empty
    cell after a trailing separator aside); 0 when the separator does not fit."""
    if not rows or len(rows[0]) < 2:
        return 0
    width = len(rows[0])
    if any(any(cell.strip() for cell in row[width:]) for row in rows[1:]):
        return 0
    return width


def detect_separator(text: str, prefer: str = ",", *, role: str = "`data.path`",
                     source: str | None = None) -> str:
    """The separator of a CSV's first lines (quotes respected): ``prefer`` whenever they fit
    it, else the one other candidate that fits; two that fit equally well are refused."""
    candidates = [prefer, *(s for s in SEPARATORS if s != prefer)]
    fits = {s: _fit(_split_rows(text, s)) for s in candidates}
    header = _split_rows(text.split("\n", 1)[0], prefer)
    names = header[0] if header else []
    if fits[prefer]:
        # a header that splits on `,` into names holding `;` (`a;b, mm;y`) is not a comma file
        rivals = [s for s in candidates[1:] if fits[s] > fits[prefer]
                  and any(s in name for name in names)]
    else:
        rivals = [s for s in candidates[1:] if fits[s]]
        if len(rivals) == 1:
            return rivals[0]
    if not rivals:
        return prefer
    options = [s for s in candidates if fits[s]]
    where = "`data.separator`" if _in_config(role) else \
        "`data.separator` (in a data config given to --data)"
    raise DataError(
        "cannot tell the separator: the first lines split evenly into "
        + " and ".join(f"{fits[s]} columns on {_label(s)}" for s in options) + ".",
        f"set {where}, e.g. `data.separator: {_yaml(options[0])}`.",
        source=source,
    )


def _better_separator(text: str, separator: str) -> str | None:
    """Another separator the first lines fit when ``separator`` does not, for a hint."""
    if _fit(_split_rows(text, separator)):
        return None
    others = [s for s in SEPARATORS if s != separator and _fit(_split_rows(text, s))]
    return others[0] if len(others) == 1 else None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _decimal_comma_columns(frame: pd.DataFrame, skip: set[str]) -> tuple[str, int, str] | None:
    """(column, data row, cell) of the first text column of numbers with decimal commas."""
    for column in frame.columns:
        values = frame[column]
        if column in skip or pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values):
            continue
        present = values.dropna().astype(str).str.strip()
        commas = present.str.fullmatch(_DECIMAL_COMMA)
        if not commas.any():
            continue
        dotted = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce")
        if dotted.notna().mean() >= NUMERIC_SHARE:
            first = commas[commas].index[0]
            return str(column), int(frame.index.get_loc(first)) + 1, str(present[first])
    return None


def _read_decimal_commas(frame: pd.DataFrame, skip: set[str]) -> None:
    """With `decimal: ','`, text cells pandas left alone (`' 1,5'`, or a column where a word
    was only marked missing afterwards) become numbers when every present cell is one."""
    for column in frame.columns:
        values = frame[column]
        if column in skip or pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values):
            continue
        present = values.dropna().astype(str).str.strip()
        if present.empty or not present.str.contains(",", regex=False).any():
            continue
        dotted = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce")
        if dotted.notna().all():
            dotted_all = values.astype(str).str.strip().str.replace(",", ".", regex=False)
            frame[column] = pd.to_numeric(dotted_all.where(values.notna()), errors="coerce")


def read_table(
    path: Path,
    fmt: str = "csv",
    separator: str | None = None,
    *,
    decimal: str = ".",
    encoding: str = "utf-8",
    text_columns: Iterable[str | None] = (),
    categorical: Iterable[str | None] = (),
    na_values: Iterable[str] = (),
    prefer_separator: str | None = None,
    role: str = "`data.path`",
) -> pd.DataFrame:
    """Read a CSV/Parquet file with clear errors for missing, empty and malformed files.

    ``separator`` None detects it from the first lines (``prefer_separator``, else tab for
    .tsv and `,` otherwise, whenever they fit); a separator given is used as is. A UTF-8 or
    UTF-16 byte-order mark wins over ``encoding``; bytes that do not decode are an error
    naming the offset and line. ``decimal`` is the decimal mark; with '.', a column of
    numbers written with decimal commas is an error saying so (``categorical`` columns,
    which may hold "1,2" code lists, excepted). ``text_columns`` (ids, patient groups) are
    read as text, so "00002" stays "00002"; names not in the file are ignored.
    ``na_values`` are extra cell values read as missing, compared after stripping spaces.
    ``role`` names where the path came from ("`data.path`", "--input") in messages. What was
    detected is listed in ``frame.attrs["notes"]``.
    """
    source = str(path)
    if not path.exists() and not path.is_symlink():
        where = " (relative paths are read from the config file's folder)" \
            if _in_config(role) else ""
        raise DataError(f"file not found: {path}.", f"check {role}{where}.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a {fmt} file.", f"point {role} at a file.")
    # before any open: a FIFO would block forever and /dev/zero would fill the memory
    require_regular_file(path, role)
    text = [c for c in dict.fromkeys(text_columns) if c]
    extra_na = [str(v).strip() for v in na_values]
    parquet = _is_parquet(path, fmt)
    notes: list[str] = []
    codec = encoding
    if not parquet:
        try:
            with path.open("rb") as handle:
                head = handle.read(4096)
        except PermissionError:
            raise DataError("the file cannot be read (permission denied).",
                            "check the file's permissions.", source=source) from None
        codec = _resolve_encoding(head, encoding)
        if b"\x00" in head and codec != "utf-16":
            raise DataError(f"the file could not be parsed as {fmt}: it holds NUL bytes, so it "
                            "is binary (or UTF-16 text without a byte-order mark).",
                            "export the table as CSV (CSV UTF-8 in Excel).", source=source)
        if _codec_name(codec) != _codec_name(encoding):
            notes.append(f"{path.name} starts with a {_codec_name(codec)} byte-order mark, so "
                         f"it was read as {_codec_name(codec)}, not {encoding}")
        _check_encoding(path, codec, role, source)
        if separator is None:
            prefer = prefer_separator or ("\t" if path.suffix.lower() == ".tsv" else ",")
            separator = detect_separator(_sample_text(path, codec), prefer, role=role,
                                         source=source)
            if separator != prefer:
                notes.append(f"{path.name} was read as {_label(separator)}-separated (detected "
                             f"from its first lines; set `data.separator` to override)")
    try:
        if parquet:
            frame = pd.read_parquet(path)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    sep=separator,
                    decimal=decimal,
                    encoding=codec,
                    na_values=[*DEFAULT_NA_VALUES, *extra_na],
                    keep_default_na=True,
                    skipinitialspace=True,
                    # a separator at the end of every row must not turn the first column
                    # into the index (and shift every name onto the wrong values)
                    index_col=False,
                    dtype=dict.fromkeys(text, str) or None,
                )
            if any("loss of data" in str(w.message) for w in caught):
                other = _better_separator(_sample_text(path, codec), separator)
                raise DataError(
                    "some rows have more cells than the header has names (an unquoted "
                    f"separator {_label(separator)} inside a cell, or a column without a name)"
                    + (f"; the header looks {_label(other)}-separated." if other else "."),
                    f"set `data.separator: {_yaml(other)}`." if other else
                    "quote cells that contain the separator, and give every column a name.",
                    source=source,
                )
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty.", "give a file with a header row and data rows.",
                        source=source) from None
    except PermissionError:
        raise DataError("the file cannot be read (permission denied).",
                        "check the file's permissions.", source=source) from None
    except pd.errors.ParserError as exc:
        wide = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if wide is None:
            raise DataError(f"the file could not be parsed as {fmt}: {_first_line(exc)}.",
                            f"check that it is a valid {fmt} file.", source=source) from None
        other = _better_separator(_sample_text(path, codec), separator)
        names, line, cells = wide.groups()
        raise DataError(
            f"line {line} has {cells} cells but the header has {names} names (an unquoted "
            f"separator {_label(separator)} inside a cell?)"
            + (f"; the header looks {_label(other)}-separated." if other else "."),
            f"set `data.separator: {_yaml(other)}`." if other else
            "quote cells that contain the separator, or give the extra column a name.",
            source=source,
        ) from None
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        first = _first_line(exc)
        raise DataError(f"the file could not be parsed as {fmt}: {first}.",
                        f"check that it is a valid {fmt} file.", source=source) from None
    if frame.empty:
        raise DataError(
            f"the file has a header ({', '.join(map(str, frame.columns[:10]))}) but no data rows."
            if len(frame.columns) else "the file holds no data.",
            "give a file with at least a few data rows.",
            source=source,
        )
    header = pd.Series([str(c) for c in frame.columns])
    unnamed = pd.Series(False, index=header.index)
    if not parquet:
        # pandas renames a repeated header 'a' to 'a.1'; read the raw header to catch it
        raw = pd.read_csv(path, sep=separator, encoding=codec, header=None, nrows=1,
                          dtype=str, keep_default_na=False, index_col=False,
                          skipinitialspace=True).iloc[0]
        header = pd.Series([str(c) for c in raw])
        unnamed = header.str.strip() == ""
        if len(header) != len(frame.columns):  # cannot happen; never guess which is which
            unnamed = pd.Series(False, index=header.index)
    empty_unnamed = [c for c, blank in zip(frame.columns, unnamed, strict=False)
                     if blank and frame[c].isna().all()]
    if empty_unnamed:
        # Excel writes a separator after the last cell when a column beyond was ever touched
        frame = frame.drop(columns=empty_unnamed)
        notes.append(f"dropped {len(empty_unnamed)} empty column(s) without a name (a trailing "
                     "separator)")
    frame.columns = [str(c).strip() for c in frame.columns]
    names = pd.Index([str(c).strip() for c, blank in zip(header, unnamed, strict=False)
                      if not blank])
    duplicated = names[names.duplicated()].tolist()
    if duplicated:
        raise DataError(f"duplicated column name(s): {', '.join(duplicated)}.",
                        "give every column a distinct name.", source=source)
    if extra_na:
        _mark_missing(frame, set(extra_na))
    skip = {*text, *(c for c in categorical if c)}
    if not parquet and decimal == ",":
        _read_decimal_commas(frame, skip)
    elif not parquet and separator != ",":
        # only where a decimal comma can stand unquoted: a `,` file reads as it always did
        found = _decimal_comma_columns(frame, skip)
        if found is not None:
            column, row, cell = found
            fix = ("set `data.decimal: ','`; or, if the column holds text such as code lists, "
                   f"declare it `data.categorical: [{column}]`." if _in_config(role) else
                   "re-save the file with decimal points, or with the run's training settings.")
            raise DataError(
                f"column '{column}' should be numeric but holds {cell!r} (data row {row}), "
                "which looks like decimal commas while `data.decimal` is '.'.",
                fix,
                source=source,
            )
    for name in text:
        if name in frame.columns:
            frame[name] = as_text(frame[name])  # parquet numbers; CSV columns are str already
    frame.attrs["notes"] = notes
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
    frame = read_table(cfg.path, cfg.type, cfg.separator, decimal=cfg.decimal,
                       encoding=cfg.encoding, text_columns=(cfg.id_column, cfg.group_column),
                       categorical=[*(cfg.categorical or []), *cfg.exclude],
                       na_values=cfg.na_values)
    provenance = Provenance(
        source=f"user file {cfg.path.name}",
        files={cfg.path.name: sha256_file(cfg.path)},
    )
    dataset = frame_to_dataset(frame, cfg, problem=problem, source=str(cfg.path),
                               provenance=provenance)
    dataset.notes[:0] = frame.attrs.get("notes", [])  # detected separator, BOM, empty columns
    return dataset


def reading_options(path: Path, data: Any) -> dict[str, Any]:
    """Separator, decimal mark and encoding for a new table scored by a run (evaluate --data,
    predict --input): the run's training settings, unless the file is obviously different.

    A byte-order mark or a file that is valid UTF-8 with accented letters is read as such even
    when the training table was cp1252; the separator is detected preferring the training's;
    a `,`-separated file has decimal points. Unreadable files are left to read_table to
    report, so this never raises.
    """
    path = Path(path)
    if _is_parquet(path, "csv"):
        return {}
    encoding = getattr(data, "encoding", None) or "utf-8"
    decimal = getattr(data, "decimal", None) or "."
    options: dict[str, Any] = {"decimal": decimal, "encoding": encoding}
    prefer = getattr(data, "separator", None) or (
        "\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        if not path.is_file():
            return options
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        codec = _resolve_encoding(head, encoding)
        # valid UTF-8 is almost never meant as cp1252 (and ASCII reads the same either way)
        if codec == encoding and _codec_name(encoding) != "utf-8" \
                and _first_decode_error(path, "utf-8") is None:
            codec = options["encoding"] = "utf-8"
        sample = _sample_text(path, codec)
        options["separator"] = separator = detect_separator(sample, prefer)
    except (OSError, DataError, LookupError):
        return options
    if separator == "," and prefer != ",":
        options["decimal"] = "."
    elif separator != "," and decimal == "." and _decimal_commas_only(sample, separator):
        options["decimal"] = ","
    return options


def _decimal_commas_only(text: str, separator: str) -> bool:
    """True when the first lines hold numbers with decimal commas and none with points."""
    cells = [c.strip() for row in _split_rows(text, separator)[1:] for c in row]
    commas = pd.Series(cells, dtype=object).str.fullmatch(_DECIMAL_COMMA)
    points = pd.Series(cells, dtype=object).str.fullmatch(r"[+-]?\d*\.\d+")
    return bool(commas.any()) and not bool(points.any())
