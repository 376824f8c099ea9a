"""Task preset ``tabular-multiclass``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="tabular-multiclass",
        problem="multiclass",
        data_kind="tabular",
        summary="multi-class classification (3 or more classes) on your own CSV or Parquet file",
        default_model={"type": "logistic-regression"},
    )
)
