"""Reading a table: CSV dialects (separator, decimal mark, encoding) and Parquet.

The `csv` / `parquet` data source that uses it is :mod:`medml_cli.data.sources.table_file`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from medml_cli.data.base import (
    DEFAULT_NA_VALUES,
    NUMERIC_SHARE,
    as_text,
)
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.errors import DataError

#: Separators tried when `data.separator` is not set; the preferred one (`,`, tab for .tsv,
#: or the training's for evaluate/predict) wins whenever the first lines fit it.
SEPARATORS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_SNIFF_ROWS = 200
_BLOCK = 1 << 20
#: "1,5", "-0,25", ",5": a number written with a decimal comma.
_DECIMAL_COMMA = r"[+-]?\d*,\d+"
_LEGACY_HINT = "`data.encoding: cp1252` (Excel on Windows) or `data.encoding: latin-1`"


#: Table files by suffix: Parquet, and delimited text (read as `csv`, separator detected).
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
TEXT_TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
TABLE_SUFFIXES = PARQUET_SUFFIXES | TEXT_TABLE_SUFFIXES


def table_format(path: Path) -> str:
    """The `data.type` a table file is read as: `parquet` for .parquet/.pq, else `csv`."""
    return "parquet" if Path(path).suffix.lower() in PARQUET_SUFFIXES else "csv"


def _is_parquet(path: Path, fmt: str) -> bool:
    return fmt == "parquet" or table_format(path) == "parquet"


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
    offset = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            pending = decoder.getstate()[0]  # bytes of a character split across blocks
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                at = offset - len(pending) + exc.start
                return at, _line_at(path, at), bytes(exc.object[exc.start:exc.end])
            if not block:
                return None
            offset += len(block)


def _line_at(path: Path, offset: int) -> int:
    """1-based line of byte ``offset``; counted only once a bad byte is found (a valid file,
    the usual case, is not scanned for line breaks)."""
    lines = 0
    with path.open("rb") as handle:
        while offset > 0:
            block = handle.read(min(_BLOCK, offset))
            if not block:
                break
            lines += block.count(b"\n")
            offset -= len(block)
    return lines + 1


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
    fits = {prefer: _fit(_split_rows(text, prefer))}
    if fits[prefer]:
        header = _split_rows(text.split("\n", 1)[0], prefer)
        names = header[0] if header else []
        # a header that splits on `,` into names holding `;` (`a;b, mm;y`) is not a comma
        # file; only a separator found inside a name can be such a rival, so only those
        # are tried (the usual header has none, and the sample is split once)
        inside = [s for s in candidates[1:] if any(s in name for name in names)]
        fits.update({s: _fit(_split_rows(text, s)) for s in inside})
        rivals = [s for s in inside if fits[s] > fits[prefer]]
        if rivals:
            fits.update({s: _fit(_split_rows(text, s)) for s in candidates if s not in fits})
    else:
        fits.update({s: _fit(_split_rows(text, s)) for s in candidates[1:]})
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


def _text_columns(frame: pd.DataFrame, skip: set[str]) -> Iterable[tuple[str, pd.Series]]:
    """(column, its present cells stripped) for each text column of ``frame`` not in ``skip``."""
    for column in frame.columns:
        values = frame[column]
        if column in skip or pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values):
            continue
        yield column, values.dropna().astype(str).str.strip()


def _decimal_comma_columns(frame: pd.DataFrame, skip: set[str]) -> tuple[str, int, str] | None:
    """(column, data row, cell) of the first text column of numbers with decimal commas."""
    for column, present in _text_columns(frame, skip):
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
    for column, present in list(_text_columns(frame, skip)):
        values = frame[column]
        if present.empty or not present.str.contains(",", regex=False).any():
            continue
        dotted = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce")
        if dotted.notna().all():
            dotted_all = values.astype(str).str.strip().str.replace(",", ".", regex=False)
            frame[column] = pd.to_numeric(dotted_all.where(values.notna()), errors="coerce")


def _maybe_renamed(columns: pd.Index) -> bool:
    """Whether pandas may have renamed a header cell: a blank one ('Unnamed: 3') or a
    repeated one ('a' again becomes 'a.1'). Otherwise the names are the header's own."""
    names = {str(c) for c in columns}
    for name in names:
        if name.startswith("Unnamed: "):
            return True
        base, dot, number = name.rpartition(".")
        if dot and number.isdigit() and base in names:
            return True
    return False


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
    if not parquet and _maybe_renamed(frame.columns):
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
