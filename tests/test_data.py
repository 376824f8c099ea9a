"""The bundled and user-supplied tabular data sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import validate_config_data
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.sources.uci_heart import FEATURES, bundled_dir, load_frame
from medml_cli.errors import DataError
from medml_cli.workflows.train import load_dataset

# sha256 from the dataset's PROVENANCE.md: the bundled files must be byte-exact.
UCI_SHA256 = {
    "cleveland": "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8",
    "hungarian": "d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796",
    "switzerland": "834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314",
    "va": "e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f",
}


def load(data: dict, task: str = "tabular-classification"):
    return load_dataset(validate_config_data({"task": task, "data": data}))


@pytest.mark.parametrize("site", sorted(UCI_SHA256))
def test_bundled_uci_files_are_byte_exact(site):
    assert sha256_file(bundled_dir() / f"processed.{site}.data") == UCI_SHA256[site]
    assert (bundled_dir() / "PROVENANCE.md").exists() and (bundled_dir() / "LICENSE.txt").exists()


def test_uci_heart_schema_and_conventions():
    frame = load_frame(["cleveland", "hungarian", "switzerland", "va"])
    assert len(frame) == 920
    assert frame.groupby("site").size().to_dict() == {
        "cleveland": 303, "hungarian": 294, "switzerland": 123, "va": 200}
    # chol == 0 means "not measured": all of Switzerland, 49 VA rows
    assert frame.loc[frame.site == "switzerland", "chol"].isna().all()
    assert (frame["chol"] == 0).sum() == 0
    # target num > 0, with the published counts
    assert frame.groupby("site")["disease"].sum().to_dict() == {
        "cleveland": 139, "hungarian": 106, "switzerland": 115, "va": 149}
    # '?' is missing: Cleveland has 4 missing ca and 2 missing thal
    cleveland = frame[frame.site == "cleveland"]
    assert cleveland["ca"].isna().sum() == 4 and cleveland["thal"].isna().sum() == 2


def test_uci_heart_dataset_types_and_site_option():
    ds = load({"type": "uci-heart-disease", "sites": ["hungarian", "va"]}, task="heart-disease")
    assert ds.n_samples == 494
    assert set(ds.meta["site"]) == {"hungarian", "va"}
    kinds = {c.name: c.kind for c in ds.schema.columns}
    assert kinds["cp"] == kinds["thal"] == kinds["slope"] == kinds["restecg"] == "categorical"
    assert kinds["age"] == kinds["chol"] == "numeric"
    assert list(kinds) == list(FEATURES)
    assert ds.schema.classes == ["no disease", "disease"]
    assert ds.provenance.licence == "CC BY 4.0"
    assert set(ds.provenance.files) == {"processed.hungarian.data", "processed.va.data"}


def test_diabetes_uses_real_unscaled_values():
    ds = load({"type": "diabetes"}, task="diabetes")
    assert ds.X.shape == (442, 10)
    assert list(ds.X.columns) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    first = ds.X.iloc[0]
    assert first["age"] == 59 and first["bmi"] == pytest.approx(32.1)
    assert ds.y.iloc[0] == 151
    assert sorted(ds.X["sex"].unique()) == [1, 2]


def _csv(tmp_path, text, name="table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_user_csv_with_ids_groups_and_categoricals(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "pid": [f"p{i}" for i in range(40)],
        "patient": [f"g{i // 2}" for i in range(40)],
        "age": rng.integers(30, 80, 40),
        "smoker": rng.choice(["yes", "no"], 40),
        "outcome": ["sick", "well"] * 20,
        "note": ["x"] * 40,
    })
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    ds = load({"type": "csv", "path": str(path), "target": "outcome", "id_column": "pid",
               "group_column": "patient", "exclude": ["note"], "positive_class": "sick"})
    assert ds.schema.feature_names == ["age", "smoker"]
    assert {c.name: c.kind for c in ds.schema.columns} == {"age": "numeric",
                                                         "smoker": "categorical"}
    assert ds.y.sum() == 20 and ds.schema.classes == ["well", "sick"]
    assert ds.groups.nunique() == 20


def test_parquet_reads_like_csv(tmp_path):
    pytest.importorskip("pyarrow", reason="parquet support needs the [parquet] extra")
    frame = pd.DataFrame({"a": np.arange(20.0), "y": [0, 1] * 10})
    frame.to_parquet(tmp_path / "t.parquet")
    ds = load({"type": "parquet", "path": str(tmp_path / "t.parquet"), "target": "y"})
    assert ds.n_samples == 20


@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("a,b,y\n", "no data rows"),
    ("a,b\n1,2\n3,4\n", "target column(s) y not found"),
    ("a,y\n1,0\n2,0\n3,0\n", "single class"),
    ("a,y\n1,0\n2,1\n3,2\n4,0\n", "outside the classes"),  # with data.classes: [0, 1, 2]
    ("a,y\n1,0\n2,1\ntext,0\n" + "4,1\n" * 20, "column 'a' should be numeric but row 3"),
    ("a,y\n1,0\ninf,1\n3,0\n", "infinite value at row 2"),
    ("a,y\n1,0\n1e300,1\n3,0\n", "holds 1e+300 at row 2, beyond the largest number"),
    ("id,a,y\nx,1,0\nx,2,1\n", "duplicated value"),
    ("a,y\n1,0\n2,\n3,1\n", "is empty in 1 row"),
    ("a,a,y\n1,2,0\n", "duplicated column"),
])
def test_bad_tables_raise_clear_data_errors(tmp_path, text, expected):
    path = _csv(tmp_path, text)
    data = {"type": "csv", "path": str(path), "target": "y"}
    if text.startswith("id,"):
        data["id_column"] = "id"
    if expected == "outside the classes":  # three labels are multi-class; a fourth is refused
        data["classes"] = [0, 1, 5]
    with pytest.raises(DataError) as info:
        load(data)
    assert expected in str(info.value)
    assert "Fix:" in str(info.value)


def test_all_missing_feature_loads_but_is_refused_for_training(tmp_path):
    """Loading keeps the column (evaluation and predict impute it and warn); training,
    which would have nothing to learn from it, refuses it (issue 10)."""
    from medml_cli.data.base import check_not_all_missing

    ds = load({"type": "csv", "path": str(_csv(tmp_path, "a,b,y\n1,,0\n2,,1\n3,,0\n")),
               "target": "y"})
    assert ds.X["b"].isna().all()
    with pytest.raises(DataError) as info:
        check_not_all_missing(ds.X, "t.csv")
    assert "have no values at all" in str(info.value) and "Fix:" in str(info.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load({"type": "csv", "path": str(tmp_path / "none.csv"), "target": "y"})


def test_question_mark_means_missing(tmp_path):
    path = _csv(tmp_path, "a,y\n1,0\n?,1\n3,0\n4,1\n")
    ds = load({"type": "csv", "path": str(path), "target": "y"})
    assert ds.X["a"].isna().sum() == 1
