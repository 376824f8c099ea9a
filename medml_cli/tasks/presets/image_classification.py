"""Task preset ``image-classification``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="image-classification",
        problem="binary-classification",
        data_kind="image",
        summary="classification of your own images or volumes (Keras CNN); more than "
                "two classes make it multi-class (softmax head)",
        default_model={"type": "cnn2d"},
        default_split={"method": "holdout", "test_size": 0.25},
    )
)
