"""Task preset ``diabetes``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="diabetes",
        problem="regression",
        data_kind="tabular",
        summary="Efron et al. 2004 diabetes: disease progression after one year",
        default_data={"type": "diabetes"},
        default_model={"type": "ridge"},
    )
)
