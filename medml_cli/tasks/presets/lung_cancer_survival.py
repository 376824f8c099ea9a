"""Task preset ``lung-cancer-survival``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="lung-cancer-survival",
        problem="survival",
        data_kind="tabular",
        summary="Veterans' Administration lung cancer trial: time to death "
                "(137 patients, days)",
        default_data={"type": "veterans-lung-cancer"},
        default_model={"type": "cox"},
    )
)
