"""Catalogue cases for CSV dialects (see tests/test_bad_inputs.py for the shared checks): the
wrong separator, decimal commas, encodings and byte-order marks, rows wider than the header."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.test_bad_inputs import Case, assert_clean_failure, csv_task


def _rows(make, n: int = 40) -> str:
    return "".join(make(i) for i in range(n))


SEMICOLON = "a;b;y\n" + _rows(lambda i: f"{i};{i % 3};{i % 2}\n")
DECIMAL_COMMAS = "a;b;y\n" + _rows(lambda i: f"{i},5;{i % 3};{i % 2}\n")
CP1252 = ("id,Größe,y\n" + _rows(lambda i: f"p{i},{150 + i},{i % 2}\n")).encode("cp1252")
WIDER_ROW = "a,b,y\n" + _rows(lambda i: f"{i},{i % 3},{i % 2}\n") + "1,2,0,7\n"

CSV_CASES = [
    Case("semicolon file, separator set to comma", ["train", "exp.yaml"],
         ["target column(s) y not found", "the header looks `;`-separated",
          "set `data.separator: ';'`"],
         files=csv_task(SEMICOLON, ", separator: ','")),
    Case("decimal commas, separator set to comma", ["train", "exp.yaml"],
         ["the header looks `;`-separated", "data.separator: ';'"],
         files=csv_task(DECIMAL_COMMAS, ", separator: ','")),
    Case("decimal commas without data.decimal", ["train", "exp.yaml"],
         ["column 'a' should be numeric", "'0,5'", "looks like decimal commas",
          "set `data.decimal: ','`"],
         files=csv_task(DECIMAL_COMMAS)),
    Case("cp1252 file read as utf-8", ["train", "exp.yaml"],
         ["not valid utf-8", "byte offset 5", "(line 1)", "data.encoding: cp1252",
          "data.encoding: latin-1", "re-save the file as CSV UTF-8"],
         files=csv_task(CP1252)),
    Case("undefined cp1252 byte", ["train", "exp.yaml"],
         ["not valid cp1252", "8d", "(line 2)", "data.encoding: latin-1"],
         files=csv_task(b"a,y\n\x8d,0\n", ", encoding: cp1252")),
    Case("unknown encoding", ["train", "exp.yaml"],
         ["data.encoding", "unknown text encoding 'utf8x'"],
         files=csv_task(SEMICOLON, ", encoding: utf8x")),
    Case("decimal that is not a mark", ["train", "exp.yaml"], ["data.decimal", "','"],
         files=csv_task(SEMICOLON, ", decimal: ' '")),
    Case("ambiguous separator", ["train", "exp.yaml"],
         ["cannot tell the separator", "2 columns on `;`", "on `|`", "data.separator"],
         files=csv_task("a;b|y\n" + _rows(lambda i: f"{i};{i}|{i % 2}\n"))),
    Case("row wider than the header", ["train", "exp.yaml"],
         ["line 42 has 4 cells but the header has 3 names", "quote cells"],
         files=csv_task(WIDER_ROW)),
    Case("evaluate a cp1252 table with a utf-8 run", ["evaluate", "RUN", "--data", "t.csv"],
         ["not valid utf-8", "line 1", "re-save the file as CSV UTF-8"],
         files={"t.csv": CP1252}),
]


@pytest.mark.parametrize("case", CSV_CASES, ids=lambda c: c.name)
def test_bad_csv_input(tmp_path, monkeypatch, case):
    for name, content in case.files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    args = list(case.args)
    if "RUN" in args:
        (tmp_path / "ok.yaml").write_text(csv_task("", ", id_column: id")["exp.yaml"]
                                           .replace("t.csv", "ok.csv"))
        (tmp_path / "ok.csv").write_text(
            "id,Größe,y\n" + _rows(lambda i: f"p{i},{150 + i},{i % 2}\n"))
        trained = run_cli("train", "ok.yaml", "--runs-dir", tmp_path / "trained",
                          "--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false")
        assert trained.exit_code == 0, trained.stderr
        args[args.index("RUN")] = trained.last_line
        result = run_cli(*args)
    else:
        result = run_cli(*args, "--runs-dir", str(runs))
    assert_clean_failure(result, case.code, case.expect, runs)
