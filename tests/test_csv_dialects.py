"""CSV files as Excel and LibreOffice write them: `;` with decimal commas, a UTF-8 byte-order
mark, cp1252/Latin-1 text, CRLF line endings, quoted separators and a trailing empty column.
Each is read right or refused with the fix, never silently mis-parsed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import validate_config_data
from medml_cli.data.formats.table import detect_separator, read_table, reading_options
from medml_cli.errors import ConfigError, DataError
from medml_cli.workflows.train import load_dataset
from tests.conftest import read_metrics, run_cli

FAST = ["--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false"]


def load(data: dict, task: str = "tabular-classification"):
    return load_dataset(validate_config_data({"task": task, "data": data}))


def write(path: Path, rows: list[str], *, encoding: str = "utf-8", newline: str = "\n",
          bom: bool = False) -> Path:
    raw = (newline.join(rows) + newline).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + raw)
    return path


def german_rows(n: int = 40) -> list[str]:
    """patient_id;Größe;âge;y with decimal commas, as Excel writes them in de_DE."""
    return ["patient_id;Größe;âge;y"] + [
        f"P{i:03d};{150 + i},{i % 10};{40 + i % 30};{i % 2}" for i in range(n)]


# --------------------------------------------------------------------------- separator
@pytest.mark.parametrize("text,expected", [
    ("a,b,y\n1,2,0\n", ","),
    ("a;b;y\n1,5;2,25;0\n", ";"),
    ("a;b;y\n1;2;0\n", ";"),
    ("a\tb\ty\n1\t2\t0\n", "\t"),
    ("a|b|y\n1|2|0\n", "|"),
    # `;` inside quoted (and unquoted) text cells of a comma file: still `,`
    ('id,note,y\n1,"dose; 2 mg; daily",0\n2,a;b,1\n3,plain,0\n', ","),
    ("a;b;y;\n1;2;0;\n", ";"),   # a trailing empty column
    ("a;b;y\r\n1,5;2;0\r\n", ";"),  # CRLF
])
def test_detect_separator(text, expected):
    assert detect_separator(text) == expected


def test_the_preferred_separator_wins_when_it_fits():
    assert detect_separator("a\tb,c\n1\t2,3\n", "\t") == "\t"
    assert detect_separator("a\tb\n1\t2\n", ",") == "\t"


def test_two_separators_that_fit_equally_are_refused():
    with pytest.raises(DataError, match="cannot tell the separator") as info:
        detect_separator("a;b|c\n1;2|3\n")
    assert "data.separator" in str(info.value)


def test_a_comma_header_with_semicolons_in_its_names_is_refused():
    # `y,x;z` splits on `,` as well as on `;`: the reader must not pick `,` silently
    with pytest.raises(DataError, match="cannot tell the separator"):
        detect_separator("id;size, mm;y\n1;2,5;0\n2;3,5;1\n")


# --------------------------------------------------------------------------- reading
def test_excel_german_export_reads_as_numbers(tmp_path):
    path = write(tmp_path / "t.csv", german_rows(), encoding="cp1252", newline="\r\n")
    ds = load({"type": "csv", "path": str(path), "target": "y", "id_column": "patient_id",
               "decimal": ",", "encoding": "cp1252"})
    assert list(ds.X.columns) == ["Größe", "âge"]
    assert ds.X["Größe"].dtype == float and ds.X["Größe"].iloc[1] == pytest.approx(151.1)
    assert ds.ids.iloc[0] == "P000"
    assert any("`;`-separated" in note for note in ds.notes)


def test_utf8_bom_never_reaches_the_first_name(tmp_path):
    path = write(tmp_path / "t.csv", ["patient_id,a,y"] + [f"P{i},{i},{i % 2}" for i in range(30)],
                 bom=True)
    ds = load({"type": "csv", "path": str(path), "target": "y", "id_column": "patient_id"})
    assert ds.ids.iloc[0] == "P0"
    assert list(ds.X.columns) == ["a"]
    # a latin-1 setting does not turn the BOM into "ï»¿patient_id" either
    ds = load({"type": "csv", "path": str(path), "target": "y", "id_column": "patient_id",
               "encoding": "latin-1"})
    assert ds.ids.iloc[0] == "P0"
    assert any("byte-order mark" in note for note in ds.notes)


def test_utf16_with_bom_as_excel_unicode_text(tmp_path):
    rows = ["id\tÂge\ty"] + [f"p{i}\t{i}\t{i % 2}" for i in range(30)]
    path = tmp_path / "t.txt"
    path.write_bytes("\r\n".join(rows).encode("utf-16"))
    frame = read_table(path)
    assert list(frame.columns) == ["id", "Âge", "y"]


def test_latin1_values_and_names(tmp_path):
    rows = ["id,âge,ville,y"] + [f"p{i},{30 + i},{'Besançon' if i % 2 else 'Zürich'},{i % 2}"
                                 for i in range(30)]
    path = write(tmp_path / "t.csv", rows, encoding="latin-1")
    ds = load({"type": "csv", "path": str(path), "target": "y", "id_column": "id",
               "encoding": "latin-1"})
    assert set(ds.X["ville"].dropna()) == {"Besançon", "Zürich"}


def test_invalid_utf8_names_offset_line_and_fix(tmp_path):
    rows = ["id,a,y", "p1,1,0", "p2,2,1", "p3,Größe,0"]
    path = write(tmp_path / "t.csv", rows, encoding="cp1252")
    with pytest.raises(DataError) as info:
        load({"type": "csv", "path": str(path), "target": "y"})
    message = str(info.value)
    offset = "\n".join(rows).encode("cp1252").index(b"\xf6")
    for text in ["not valid utf-8", f"byte offset {offset}", "(line 4)", "f6",
                 "data.encoding: cp1252", "latin-1", "UTF-8"]:
        assert text in message, message



def test_a_bad_byte_past_the_first_megabyte_names_its_offset_and_line(tmp_path):
    """The decoder reads 1 MB blocks; the line is counted afresh once a bad byte is found,
    across blocks, and a character split between two blocks is not mistaken for one."""
    rows = ["a,y"] + [f"{'é' * (i % 7)}{i},{i % 2}" for i in range(120_000)]
    good = ("\n".join(rows) + "\n").encode("utf-8")
    assert len(good) > 1 << 20
    path = tmp_path / "t.csv"
    path.write_bytes(good + b"\xff1,0\n")
    with pytest.raises(DataError) as info:
        load({"type": "csv", "path": str(path), "target": "y", "categorical": ["a"]})
    message = str(info.value)
    assert f"byte offset {len(good)}" in message, message
    assert f"(line {len(rows) + 1})" in message, message

def test_cp1252_undefined_byte_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,y\n1,0\n\x81,1\n")
    with pytest.raises(DataError, match="not valid cp1252 text.*line 3.*latin-1"):
        load({"type": "csv", "path": str(path), "target": "y", "encoding": "cp1252"})


def test_unknown_encoding_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown text encoding 'klingon'"):
        validate_config_data({"task": "tabular-classification", "data": {
            "type": "csv", "path": str(tmp_path / "t.csv"), "target": "y",
            "encoding": "klingon"}})
    with pytest.raises(ConfigError, match="unknown text encoding 'rot13'"):
        validate_config_data({"task": "tabular-classification", "data": {
            "type": "csv", "path": str(tmp_path / "t.csv"), "target": "y",
            "encoding": "rot13"}})


def test_decimal_commas_without_the_setting_are_refused_with_the_fix(tmp_path):
    path = write(tmp_path / "t.csv", german_rows())
    with pytest.raises(DataError) as info:
        load({"type": "csv", "path": str(path), "target": "y", "id_column": "patient_id"})
    message = str(info.value)
    assert "column 'Größe'" in message and "'150,0'" in message
    assert "looks like decimal commas" in message and "set `data.decimal: ','`" in message


def test_code_lists_declared_categorical_stay_text(tmp_path):
    rows = ["codes;a;y"] + [f"{'1,2' if i % 2 else '3'};{i};{i % 2}" for i in range(30)]
    path = write(tmp_path / "t.csv", rows)
    ds = load({"type": "csv", "path": str(path), "target": "y", "categorical": ["codes"]})
    assert set(ds.X["codes"].dropna()) == {"1,2", "3"}


def test_decimal_comma_with_na_words_and_spaces(tmp_path):
    rows = ["a;b;y"] + [f"{'unknown ' if i == 3 else f' {i},5'};{i};{i % 2}" for i in range(30)]
    path = write(tmp_path / "t.csv", rows)
    ds = load({"type": "csv", "path": str(path), "target": "y", "decimal": ",",
               "na_values": ["unknown"]})
    assert ds.X["a"].dtype == float and np.isnan(ds.X["a"].iloc[3])
    assert ds.X["a"].iloc[4] == 4.5


def test_quoted_field_with_the_separator(tmp_path):
    rows = ['id;note;a;y'] + [f'p{i};"fever; cough";{i},5;{i % 2}' for i in range(30)]
    path = write(tmp_path / "t.csv", rows)
    frame = read_table(path, decimal=",")
    assert frame["note"].iloc[0] == "fever; cough" and frame["a"].iloc[1] == 1.5


def test_comma_file_with_semicolons_in_text_is_read_with_commas(tmp_path):
    rows = ["id,note,a,y"] + [f'p{i},"x; y; z",{i},{i % 2}' for i in range(15)] + \
        [f"q{i},a;b,{i},{i % 2}" for i in range(15)]
    frame = read_table(write(tmp_path / "t.csv", rows))
    assert list(frame.columns) == ["id", "note", "a", "y"] and len(frame) == 30


def test_trailing_empty_column_is_dropped_and_noted(tmp_path):
    rows = ["a;b;y;"] + [f"{i};{i % 3};{i % 2};" for i in range(30)]
    frame = read_table(write(tmp_path / "t.csv", rows, newline="\r\n"))
    assert list(frame.columns) == ["a", "b", "y"]
    assert any("empty column" in note for note in frame.attrs["notes"])


def test_trailing_separator_on_rows_only_never_shifts_the_columns(tmp_path):
    rows = ["id,a,y"] + [f"p{i},{i},{i % 2}," for i in range(30)]
    frame = read_table(write(tmp_path / "t.csv", rows))
    assert frame["id"].iloc[0] == "p0" and frame["a"].iloc[0] == 0


def test_explicit_separator_wins_and_a_wrong_one_gets_the_hint(tmp_path):
    path = write(tmp_path / "t.csv", ["a;b;y"] + [f"{i};{i % 3};{i % 2}" for i in range(30)])
    with pytest.raises(DataError) as info:
        load({"type": "csv", "path": str(path), "target": "y", "separator": ","})
    message = " ".join(str(info.value).split())
    assert "target column(s) y not found" in message
    assert "the header looks `;`-separated: set `data.separator: ';'`" in message
    path = write(tmp_path / "d.csv", german_rows())
    with pytest.raises(DataError, match="header looks `;`-separated.*data.separator: ';'"):
        load({"type": "csv", "path": str(path), "target": "y", "separator": ","})


def test_tsv_reads_as_tab(tmp_path):
    path = write(tmp_path / "t.tsv", ["a\tb,c\ty"] + [f"{i}\tx{i},1\t{i % 2}" for i in range(9)])
    assert list(read_table(path).columns) == ["a", "b,c", "y"]


def test_binary_file_is_not_parsed(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 20)
    with pytest.raises(DataError, match="could not be parsed"):
        read_table(path)


def test_reading_options_follow_the_training_unless_the_file_differs(tmp_path):
    class Training:
        separator = ";"
        decimal = ","
        encoding = "cp1252"

    german = write(tmp_path / "g.csv", german_rows(), encoding="cp1252")
    assert reading_options(german, Training()) == {
        "separator": ";", "decimal": ",", "encoding": "cp1252"}
    plain = write(tmp_path / "p.csv", ["a,b,y", "1.5,2,0"], bom=True)
    assert reading_options(plain, Training()) == {
        "separator": ",", "decimal": ".", "encoding": "cp1252"}  # the BOM wins in read_table
    utf8 = write(tmp_path / "u.csv", german_rows())
    assert reading_options(utf8, Training())["encoding"] == "utf-8"
    # a plain-CSV training run meets a German export: decimal commas are recognised
    assert reading_options(utf8, None) == {"separator": ";", "decimal": ",", "encoding": "utf-8"}
    assert reading_options(tmp_path / "t.parquet", Training()) == {}


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory) -> Path:
    """scikit-learn's breast-cancer table, written as Excel writes it in Germany and plainly."""
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("bc")
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "diagnosis"})
    frame.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(frame))])
    frame.to_csv(folder / "excel.csv", sep=";", decimal=",", index=False, encoding="utf-8-sig",
                 lineterminator="\r\n")
    frame.to_csv(folder / "plain.csv", index=False)
    for name, extra in (("excel", ", decimal: ','"), ("plain", ""), ("nodecimal", "")):
        table = "plain" if name == "plain" else "excel"
        (folder / f"{name}.yaml").write_text(
            "task: tabular-classification\nseed: 3\nmodel: {type: logistic-regression}\n"
            f"data: {{type: csv, path: {table}.csv, target: diagnosis, id_column: patient_id"
            f"{extra}}}\n")
    return folder


def _metrics(run: Path) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "seconds"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(read_metrics(run))


def test_excel_export_trains_like_the_plain_csv(breast_cancer, tmp_path):
    runs = tmp_path / "runs"
    results = {}
    for name in ("excel", "plain"):
        result = run_cli("train", breast_cancer / f"{name}.yaml", "--runs-dir", runs, *FAST)
        assert result.exit_code == 0, result.stderr
        results[name] = Path(result.last_line)
    assert _metrics(results["excel"]) == _metrics(results["plain"])
    assert (results["excel"] / "predictions.csv").read_text() == \
        (results["plain"] / "predictions.csv").read_text()
    assert "read as `;`-separated" in (results["excel"] / "log.txt").read_text()

    # evaluate and predict read either file with either run's settings
    for run in results.values():
        for table in ("excel.csv", "plain.csv"):
            evaluation = run_cli("evaluate", run, "--data", breast_cancer / table, *FAST)
            assert evaluation.exit_code == 0, evaluation.stderr
            predicted = run_cli("predict", run, "--input", breast_cancer / table)
            assert predicted.exit_code == 0, predicted.stderr
            assert predicted.stdout.splitlines()[1].startswith("P0000,")

    result = run_cli("train", breast_cancer / "nodecimal.yaml", "--runs-dir", runs, *FAST)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "looks like decimal commas" in message and "set `data.decimal: ','`" in message


def test_predict_with_a_cp1252_run_on_a_utf8_bom_file(tmp_path):
    write(tmp_path / "t.csv", german_rows(), encoding="cp1252", newline="\r\n")
    (tmp_path / "exp.yaml").write_text(
        "task: tabular-classification\nmodel: {type: logistic-regression}\n"
        "data: {type: csv, path: t.csv, target: y, id_column: patient_id, decimal: ',', "
        "encoding: cp1252}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs", *FAST)
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    frame = pd.DataFrame({"patient_id": ["A1", "A2"], "Größe": [151.5, 160.0],
                          "âge": [41, 50]})
    frame.to_csv(tmp_path / "new.csv", index=False, encoding="utf-8-sig")
    predicted = run_cli("predict", run, "--input", tmp_path / "new.csv")
    assert predicted.exit_code == 0, predicted.stderr
    assert predicted.stdout.splitlines()[1].startswith("A1,")
    # valid UTF-8 without a BOM is not read as cp1252 ("GrÃ¶ÃŸe") either
    frame.to_csv(tmp_path / "plain.csv", index=False, encoding="utf-8")
    predicted = run_cli("predict", run, "--input", tmp_path / "plain.csv")
    assert predicted.exit_code == 0, predicted.stderr
    assert "ignored" not in predicted.stderr
