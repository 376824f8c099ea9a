"""Task preset ``heart-disease-severity``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="heart-disease-severity",
        problem="multiclass",
        data_kind="tabular",
        summary="UCI Heart Disease: angiographic severity, num 0 (none) to 4 (5 classes)",
        default_data={"type": "uci-heart-disease"},
        default_model={"type": "logistic-regression"},
    )
)
