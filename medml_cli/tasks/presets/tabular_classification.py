"""Task preset ``tabular-classification``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="tabular-classification",
        problem="binary-classification",
        data_kind="tabular",
        summary="binary classification on your own CSV or Parquet file",
        default_model={"type": "random-forest"},
    )
)
