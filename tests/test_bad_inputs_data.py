"""Catalogue cases for data reading (see tests/test_bad_inputs.py for the shared checks):
non-regular files, an unstated positive class, identifier-like and half-numeric columns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.imaging.test_dicom_series import write_slice
from tests.test_bad_inputs import Case, csv_task, run_case

pytestmark = pytest.mark.usefixtures("no_hang")


def _rows(make, n: int = 40) -> str:
    return "".join(make(i) for i in range(n))


FEW_WORDS = "age,y\n" + _rows(lambda i: f"{'unknown' if i % 7 == 3 else 40 + i},{i % 2}\n")
NAMES = "patient_name,a,y\n" + _rows(lambda i: f"Person {chr(65 + i % 26)}{i},{i},{i % 2}\n")
TEXT_LABELS = "a,y\n" + _rows(lambda i: f"{i},{'disease' if i % 3 == 0 else 'healthy'}\n")

DATA_CASES = [
    Case("device as data.path", ["train", "exp.yaml"],
         ["/dev/zero", "character device", "not a regular file", "`data.path`"],
         files={"exp.yaml": "task: tabular-classification\ndata: {type: csv, path: /dev/zero, "
                            "target: y}\n"}),
    Case("FIFO as data.path", ["train", "exp.yaml"], ["t.csv", "FIFO", "not a regular file"],
         files={"exp.yaml": csv_task("")["exp.yaml"]}),
    Case("FIFO in a DICOM series folder", ["train", "exp.yaml"],
         ["2.dcm", "FIFO", "remove it from the series folder"],
         files={"exp.yaml": "task: lung-ct\ndata: {type: dicom-series, root: series, labels: "
                            "l.csv}\nmodel: {type: cnn2d}\n",
                "l.csv": "file,label\n0.dcm,0\n1.dcm,1\n2.dcm,1\n"}),
    Case("FIFO as DICOM labels", ["train", "exp.yaml"], ["l.csv", "FIFO", "`data.labels`"],
         files={"exp.yaml": "task: lung-ct\ndata: {type: dicom-series, root: series, labels: "
                            "l.csv}\nmodel: {type: cnn2d}\n"}),
    Case("two text labels without positive_class", ["train", "exp.yaml"],
         ["disease and healthy", "set `data.positive_class: <one of them>`"],
         files=csv_task(TEXT_LABELS)),
    Case("1/2 labels without positive_class", ["train", "exp.yaml"],
         ["1 and 2", "not a 0/1 coding", "data.positive_class"],
         files=csv_task("a,y\n" + _rows(lambda i: f"{i},{1 + i % 2}\n"))),
    Case("patient names as a feature", ["train", "exp.yaml"],
         ["patient_name", "identifiers or free text", "data.exclude: [patient_name]",
          "data.id_column: patient_name"],
         files=csv_task(NAMES)),
    Case("patient names listed as categorical", ["train", "exp.yaml"],
         ["patient_name", "does not make it a feature"],
         files=csv_task(NAMES, ", categorical: [patient_name]")),
    Case("numbers with a few words", ["train", "exp.yaml"],
         ["column 'age' should be numeric", "'unknown'", "data.na_values: [unknown]",
          "data.categorical: [age]"],
         files=csv_task(FEW_WORDS)),
    Case("numbers with a few words, regression target", ["train", "exp.yaml"],
         ["column 'y' should be numeric", "'n/k'"],
         files=csv_task("a,y\n" + _rows(lambda i: f"{i},{'n/k' if i % 5 == 0 else i * 2}\n"),
                        task="tabular-regression")),
    Case("empty group cells", ["train", "exp.yaml"],
         ["group column 'g' is empty in 1 row(s)", "data.group_column"],
         files=csv_task("g,a,y\n,0,0\n" + _rows(lambda i: f"p{i // 2},{i},{i % 2}\n"),
                        ", group_column: g")),
]


def _write_special(tmp_path: Path, case: Case) -> None:
    """FIFOs and DICOM files cannot be written as plain text."""
    if case.name == "FIFO as data.path":
        os.mkfifo(tmp_path / "t.csv")
    if "DICOM" in case.name:
        (tmp_path / "series").mkdir()
        for i in range(2):
            write_slice(tmp_path / "series" / f"{i}.dcm", i)
    if case.name == "FIFO in a DICOM series folder":
        os.mkfifo(tmp_path / "series" / "2.dcm")
    if case.name == "FIFO as DICOM labels":
        os.mkfifo(tmp_path / "l.csv")


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.name)
def test_bad_data_input(tmp_path, monkeypatch, case):
    run_case(case, tmp_path, monkeypatch, _write_special)
