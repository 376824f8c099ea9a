"""Task preset ``tabular-survival``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="tabular-survival",
        problem="survival",
        data_kind="tabular",
        summary="time to an event with censoring on your own CSV or Parquet file "
                "(data.time, data.event, data.event_value)",
        default_model={"type": "cox"},
    )
)
