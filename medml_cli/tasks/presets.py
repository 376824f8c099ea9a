"""The shipped tasks: two tabular presets, their generic forms, and the image tasks."""

from __future__ import annotations

from medml_cli.registry import TASKS
from medml_cli.tasks.base import TaskSpec


def _add(spec: TaskSpec) -> None:
    TASKS.add(spec.name, spec, summary=spec.summary, tags={spec.problem, spec.data_kind})


_add(
    TaskSpec(
        name="heart-disease",
        problem="binary-classification",
        data_kind="tabular",
        summary="UCI Heart Disease (4 hospitals): angiographic disease, num > 0",
        default_data={"type": "uci-heart-disease"},
        default_model={"type": "random-forest"},
        positive_label="disease",
    )
)
_add(
    TaskSpec(
        name="diabetes",
        problem="regression",
        data_kind="tabular",
        summary="Efron et al. 2004 diabetes: disease progression after one year",
        default_data={"type": "diabetes"},
        default_model={"type": "ridge"},
    )
)
_add(
    TaskSpec(
        name="lung-ct",
        problem="binary-classification",
        data_kind="image",
        summary="lung-CT nodule classification, 2D slices or 3D patches (Keras CNN)",
        default_data={"type": "lung-phantom"},
        default_model={"type": "cnn3d"},
        default_split={"method": "holdout", "test_size": 0.25},
        positive_label="nodule",
    )
)
_add(
    TaskSpec(
        name="image-classification",
        problem="binary-classification",
        data_kind="image",
        summary="binary classification of your own images or volumes (Keras CNN)",
        default_model={"type": "cnn2d"},
        default_split={"method": "holdout", "test_size": 0.25},
    )
)
_add(
    TaskSpec(
        name="tabular-classification",
        problem="binary-classification",
        data_kind="tabular",
        summary="binary classification on your own CSV or Parquet file",
        default_model={"type": "random-forest"},
    )
)
_add(
    TaskSpec(
        name="tabular-regression",
        problem="regression",
        data_kind="tabular",
        summary="regression on your own CSV or Parquet file",
        default_model={"type": "ridge"},
    )
)
