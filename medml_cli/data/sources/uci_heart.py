"""The bundled UCI Heart Disease data (four hospitals, 920 patients, CC BY 4.0).

Files are the byte-exact UCI ``processed.*.data`` files; see
``bundled/uci_heart_disease/PROVENANCE.md``. Conventions applied, as the UCI notes and the
dataset's users do: ``?`` is missing; ``chol == 0`` means "not measured" (all of Switzerland,
49 VA rows) and is missing; the target is angiographic disease, ``num > 0``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from medml_cli.data.base import LoadedDataset
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.sources.table_file import TableFileData, frame_to_dataset
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import MissingPolicy, Provenance, StrictModel

Site = Literal["cleveland", "hungarian", "switzerland", "va"]

#: The 13 features with their meanings from heart-disease.names, and how medml encodes them.
FEATURES: dict[str, tuple[str, str]] = {
    "age": ("numeric", "age in years"),
    "sex": ("numeric", "sex (1 = male; 0 = female)"),
    "cp": ("categorical", "chest pain type (1 typical angina, 2 atypical angina, "
                          "3 non-anginal pain, 4 asymptomatic)"),
    "trestbps": ("numeric", "resting blood pressure on admission (mm Hg)"),
    "chol": ("numeric", "serum cholesterol (mg/dl); 0 in the files means not measured"),
    "fbs": ("numeric", "fasting blood sugar > 120 mg/dl (1 true; 0 false)"),
    "restecg": ("categorical", "resting ECG (0 normal, 1 ST-T wave abnormality, "
                               "2 left ventricular hypertrophy)"),
    "thalach": ("numeric", "maximum heart rate achieved"),
    "exang": ("numeric", "exercise-induced angina (1 yes; 0 no)"),
    "oldpeak": ("numeric", "ST depression induced by exercise relative to rest"),
    "slope": ("categorical", "slope of the peak exercise ST segment (1 up, 2 flat, 3 down)"),
    "ca": ("numeric", "number of major vessels (0-3) coloured by fluoroscopy"),
    "thal": ("categorical", "thallium scan (3 normal, 6 fixed defect, 7 reversible defect)"),
}
COLUMNS = [*FEATURES, "num"]
TARGET = "disease"
#: The multi-class target: the angiographic grade, 0 (< 50 % narrowing) to 4.
SEVERITY = "num"
SEVERITY_GRADES = ("0", "1", "2", "3", "4")
CITATION = (
    "Janosi A, Steinbrunn W, Pfisterer M, Detrano R. Heart Disease. UCI Machine Learning "
    "Repository, 1988. https://doi.org/10.24432/C52P4X"
)


class UciHeartDiseaseData(StrictModel):
    """The bundled UCI Heart Disease data."""

    type: Literal["uci-heart-disease"]
    sites: list[Site] = Field(
        default_factory=lambda: ["cleveland"],
        min_length=1,
        description="Hospitals to include: cleveland, hungarian, switzerland, va.",
    )
    features: list[str] | None = Field(None, description="Subset of the 13 features to use.")
    exclude: list[str] = Field(default_factory=list, description="Features to leave out.")
    missing: MissingPolicy = "impute"

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, sites: list[str]) -> list[str]:
        if len(set(sites)) != len(sites):
            raise ValueError("each site may be listed once")
        return sites

    @field_validator("features", "exclude")
    @classmethod
    def _known_features(cls, names: list[str] | None) -> list[str] | None:
        from medml_cli.registry import did_you_mean

        for name in names or []:
            if name not in FEATURES:
                raise ValueError(
                    f"'{name}' is not a heart-disease feature{did_you_mean(name, FEATURES)} "
                    f"(features: {', '.join(FEATURES)})"
                )
        return names


def bundled_dir() -> Path:
    """The folder of the bundled UCI heart-disease files."""
    return Path(str(resources.files("medml_cli") / "data" / "bundled" / "uci_heart_disease"))


def read_site(site: str) -> pd.DataFrame:
    """One hospital's file as a frame, with medml's missing-value conventions applied."""
    path = bundled_dir() / f"processed.{site}.data"
    frame = pd.read_csv(path, header=None, names=COLUMNS, na_values=["?"])
    frame["chol"] = frame["chol"].replace(0, np.nan)
    frame.insert(0, "patient_id", [f"{site}-{i + 1:03d}" for i in range(len(frame))])
    frame.insert(1, "site", site)
    frame[TARGET] = (frame["num"] > 0).astype(int)
    return frame


def load_frame(sites: list[str]) -> pd.DataFrame:
    """All rows of the chosen sites, with ``patient_id``, ``site``, features, num, disease."""
    return pd.concat([read_site(s) for s in sites], ignore_index=True)


@DATASETS.register(
    "uci-heart-disease",
    config=UciHeartDiseaseData,
    summary="UCI Heart Disease, 4 hospitals, 920 patients (bundled, CC BY 4.0)",
    tags={"tabular", "binary-classification", "multiclass"},
)
def load_uci_heart_disease(cfg: UciHeartDiseaseData, *, problem: str) -> LoadedDataset:
    """Load the bundled UCI heart-disease data: binary (num > 0) or, for a multi-class task,
    the severity grade num 0-4."""
    if problem not in ("binary-classification", "multiclass"):
        raise DataError("the UCI heart-disease data have a class target (disease: num > 0; "
                        "severity: num 0-4).",
                        "use a classification task such as `heart-disease` or "
                        "`heart-disease-severity`.")
    multiclass = problem == "multiclass"
    frame = load_frame(cfg.sites)
    features = [f for f in (cfg.features or list(FEATURES)) if f not in cfg.exclude]
    table_cfg = TableFileData(
        type="csv",
        path=Path("uci-heart-disease"),
        target=SEVERITY if multiclass else TARGET,
        features=features,
        categorical=[f for f in features if FEATURES[f][0] == "categorical"],
        id_column="patient_id",
        positive_class=None if multiclass else 1,
        classes=list(SEVERITY_GRADES) if multiclass else None,
        missing=cfg.missing,
    )
    provenance = Provenance(
        source="UCI Machine Learning Repository, Heart Disease (id 45), processed files, "
        f"sites: {', '.join(cfg.sites)}",
        licence="CC BY 4.0",
        citation=CITATION,
        files={
            f"processed.{s}.data": sha256_file(bundled_dir() / f"processed.{s}.data")
            for s in cfg.sites
        },
    )
    dataset = frame_to_dataset(
        frame,
        table_cfg,
        problem=problem,
        source="uci-heart-disease",
        provenance=provenance,
        descriptions={name: desc for name, (_, desc) in FEATURES.items()},
        meta_columns=("site",),
    )
    if not multiclass:
        dataset.schema.classes = ["no disease", "disease"]
    return dataset
