"""Built-in survival datasets: the copies that ship inside scikit-survival (nothing is
downloaded). Each becomes a table with a patient id, the features as scikit-survival gives
them, a follow-up time in days and a 0/1 event column, read like a user's own survival CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from medml_cli.data.base import LoadedDataset
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.sources.table_file import TableFileData, frame_to_dataset
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance, StrictModel


@dataclass(frozen=True)
class SurvivalDataset:
    """How one scikit-survival dataset becomes a medml table."""

    name: str
    loader: str  # function of sksurv.datasets
    file: str  # its ARFF file inside sksurv/datasets/data
    time: str
    event: str
    summary: str
    citation: str
    descriptions: dict[str, str]


LICENCE = ("distributed inside scikit-survival (GPL-3.0); the data are those of the cited "
           "publications, as published with them")

DATASETS_SHIPPED = {
    "veterans-lung-cancer": SurvivalDataset(
        "veterans-lung-cancer", "load_veterans_lung_cancer", "veteran.arff",
        time="survival_days", event="dead",
        summary="Veterans' Administration lung cancer trial, 137 patients (ships in "
                "scikit-survival)",
        citation="Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data. "
                 "Wiley, 1980 (Veterans' Administration Lung Cancer Trial).",
        descriptions={"Age_in_years": "age in years", "Celltype": "tumour cell type",
                      "Karnofsky_score": "Karnofsky performance score (0-100)",
                      "Months_from_Diagnosis": "months from diagnosis to randomisation",
                      "Prior_therapy": "prior therapy", "Treatment": "standard or test "
                                                                     "chemotherapy"}),
    "gbsg2": SurvivalDataset(
        "gbsg2", "load_gbsg2", "GBSG2.arff", time="recurrence_free_days", event="recurrence",
        summary="German Breast Cancer Study Group 2, 686 node-positive patients: "
                "recurrence-free survival (ships in scikit-survival)",
        citation="Schumacher M, Bastert G, Bojar H, et al. Randomized 2x2 trial evaluating "
                 "hormonal treatment and the duration of chemotherapy in node-positive breast "
                 "cancer patients. J Clin Oncol 1994;12:2086-2093.",
        descriptions={"age": "age in years", "estrec": "oestrogen receptor (fmol)",
                      "horTh": "hormonal therapy", "menostat": "menopausal status",
                      "pnodes": "positive lymph nodes", "progrec": "progesterone receptor "
                                                                  "(fmol)",
                      "tgrade": "tumour grade", "tsize": "tumour size (mm)"}),
    "whas500": SurvivalDataset(
        "whas500", "load_whas500", "whas500.arff", time="follow_up_days", event="died",
        summary="Worcester Heart Attack Study, 500 patients: death after acute myocardial "
                "infarction (ships in scikit-survival)",
        citation="Hosmer DW, Lemeshow S, May S. Applied Survival Analysis: Regression "
                 "Modeling of Time-to-Event Data, 2nd ed. Wiley, 2008 (Worcester Heart Attack "
                 "Study).",
        descriptions={"afb": "atrial fibrillation", "age": "age at admission",
                      "av3": "complete heart block", "bmi": "body mass index",
                      "chf": "congestive heart complications",
                      "cvd": "history of cardiovascular disease",
                      "diasbp": "initial diastolic blood pressure", "gender": "gender",
                      "hr": "initial heart rate", "los": "length of hospital stay (days)",
                      "miord": "MI order (first / recurrent)", "mitype": "MI type (Q-wave)",
                      "sho": "cardiogenic shock", "sysbp": "initial systolic blood pressure"}),
}


class VeteransData(StrictModel):
    """The Veterans' Administration lung cancer trial (137 patients, time in days)."""

    type: Literal["veterans-lung-cancer"]


class GBSG2Data(StrictModel):
    """GBSG2 breast cancer, recurrence-free survival (686 patients, time in days)."""

    type: Literal["gbsg2"]


class WHAS500Data(StrictModel):
    """Worcester Heart Attack Study (500 patients, time in days)."""

    type: Literal["whas500"]


def survival_table(name: str) -> pd.DataFrame:
    """The dataset as one table: patient_id, the features, time (days) and event (0/1)."""
    import sksurv.datasets

    spec = DATASETS_SHIPPED[name]
    X, y = getattr(sksurv.datasets, spec.loader)()
    event_field, time_field = y.dtype.names
    frame = X.reset_index(drop=True).copy()
    for column in frame.columns:  # categories as their text, as a user's CSV would hold them
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object)
    frame.insert(0, "patient_id", [f"{name}-{i + 1:03d}" for i in range(len(frame))])
    frame[spec.time] = y[time_field].astype(float)
    frame[spec.event] = np.asarray(y[event_field], dtype=int)
    return frame


def _load(name: str, problem: str) -> LoadedDataset:
    import sksurv.datasets

    spec = DATASETS_SHIPPED[name]
    if problem != "survival":
        raise DataError(f"the {name} data are time-to-event data (follow-up time and event).",
                        "use a survival task such as `lung-cancer-survival`, "
                        "`breast-cancer-survival` or `heart-attack-survival`.")
    frame = survival_table(name)
    features = [c for c in frame.columns if c not in ("patient_id", spec.time, spec.event)]
    categorical = [c for c in features if frame[c].dtype == object]
    table_cfg = TableFileData(type="csv", path=Path(name), time=spec.time, event=spec.event,
                              event_value=1, time_unit="days", features=features,
                              categorical=categorical, id_column="patient_id")
    arff = Path(sksurv.datasets.__file__).parent / "data" / spec.file
    provenance = Provenance(
        source=f"scikit-survival sksurv.datasets.{spec.loader}(); {spec.summary}",
        licence=LICENCE, citation=spec.citation,
        files={spec.file: sha256_file(arff)} if arff.exists() else {})
    return frame_to_dataset(frame, table_cfg, problem=problem, source=name,
                            provenance=provenance, descriptions=spec.descriptions)


@DATASETS.register("veterans-lung-cancer", config=VeteransData,
                   summary=DATASETS_SHIPPED["veterans-lung-cancer"].summary,
                   tags={"tabular", "survival"})
def load_veterans(cfg: VeteransData, *, problem: str) -> LoadedDataset:
    """Load the Veterans' lung cancer trial."""
    return _load("veterans-lung-cancer", problem)


@DATASETS.register("gbsg2", config=GBSG2Data, summary=DATASETS_SHIPPED["gbsg2"].summary,
                   tags={"tabular", "survival"})
def load_gbsg2(cfg: GBSG2Data, *, problem: str) -> LoadedDataset:
    """Load GBSG2."""
    return _load("gbsg2", problem)


@DATASETS.register("whas500", config=WHAS500Data, summary=DATASETS_SHIPPED["whas500"].summary,
                   tags={"tabular", "survival"})
def load_whas500(cfg: WHAS500Data, *, problem: str) -> LoadedDataset:
    """Load WHAS500."""
    return _load("whas500", problem)
