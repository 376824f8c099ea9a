"""Task preset ``breast-cancer-survival``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="breast-cancer-survival",
        problem="survival",
        data_kind="tabular",
        summary="GBSG2 node-positive breast cancer: recurrence-free survival "
                "(686 patients, days)",
        default_data={"type": "gbsg2"},
        default_model={"type": "random-survival-forest"},
    )
)
