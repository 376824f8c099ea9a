"""Task preset ``tabular-classification``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="tabular-classification",
        problem="binary-classification",
        data_kind="tabular",
        summary="classification on your own CSV or Parquet file (binary; more than two "
                "classes without data.positive_class make it multi-class)",
        default_model={"type": "random-forest"},
    )
)
