"""Task preset ``heart-attack-survival``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="heart-attack-survival",
        problem="survival",
        data_kind="tabular",
        summary="Worcester Heart Attack Study: death after myocardial infarction "
                "(500 patients, days)",
        default_data={"type": "whas500"},
        default_model={"type": "cox"},
    )
)
