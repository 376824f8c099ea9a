"""Task preset ``heart-disease``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
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
