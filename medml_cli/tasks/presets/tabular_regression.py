"""Task preset ``tabular-regression``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="tabular-regression",
        problem="regression",
        data_kind="tabular",
        summary="regression on your own CSV or Parquet file",
        default_model={"type": "ridge"},
    )
)
