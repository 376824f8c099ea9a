"""Efron et al. (2004) diabetes data, unscaled, as shipped inside scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from medml_cli.data.base import LoadedDataset
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.sources.table_file import TableFileData, frame_to_dataset
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance, StrictModel

FEATURES = {
    "age": "age in years",
    "sex": "sex (coded 1/2)",
    "bmi": "body mass index",
    "bp": "average blood pressure",
    "s1": "tc, total serum cholesterol",
    "s2": "ldl, low-density lipoproteins",
    "s3": "hdl, high-density lipoproteins",
    "s4": "tch, total cholesterol / HDL",
    "s5": "ltg, log of serum triglycerides",
    "s6": "glu, blood sugar level",
}
TARGET = "progression"
CITATION = (
    "Efron B, Hastie T, Johnstone I, Tibshirani R. Least Angle Regression. "
    "Annals of Statistics 32(2), 2004."
)


class DiabetesData(StrictModel):
    """The 442-patient diabetes data (10 baseline variables, unscaled)."""

    type: Literal["diabetes"]


def _sklearn_files() -> dict[str, str]:
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "data"
    names = ["diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"]
    return {n: sha256_file(folder / n) for n in names if (folder / n).exists()}


@DATASETS.register(
    "diabetes",
    config=DiabetesData,
    summary="Efron et al. 2004 diabetes, 442 patients (ships in scikit-learn)",
    tags={"tabular", "regression"},
)
def load_diabetes_data(cfg: DiabetesData, *, problem: str) -> LoadedDataset:
    """Load scikit-learn's diabetes data (regression only)."""
    from sklearn.datasets import load_diabetes

    if problem != "regression":
        raise DataError("the diabetes data have a continuous target (progression after a year).",
                        "use a regression task such as `diabetes`.")
    bunch = load_diabetes(scaled=False, as_frame=True)
    frame = bunch.frame.rename(columns={"target": TARGET})
    frame.insert(0, "patient_id", [f"diabetes-{i + 1:03d}" for i in range(len(frame))])
    table_cfg = TableFileData(
        type="csv", path=Path("diabetes"), target=TARGET, features=list(FEATURES),
        categorical=[], id_column="patient_id",
    )
    provenance = Provenance(
        source="scikit-learn load_diabetes(scaled=False); Efron et al. 2004",
        licence="BSD-3-Clause (scikit-learn package); no explicit licence on the data upstream",
        citation=CITATION,
        files=_sklearn_files(),
    )
    return frame_to_dataset(pd.DataFrame(frame), table_cfg, problem=problem, source="diabetes",
                            provenance=provenance, descriptions=FEATURES)
