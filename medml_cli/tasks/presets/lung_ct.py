"""Task preset ``lung-ct``."""

from medml_cli.tasks.base import TaskSpec, register_task

register_task(
    TaskSpec(
        name="lung-ct",
        problem="binary-classification",
        data_kind="image",
        summary="lung-CT nodule classification, 2D slices or 3D patches (Keras CNN)",
        default_data={"type": "lung-phantom"},
        default_model={"type": "cnn3d"},
        default_split={"method": "holdout", "test_size": 0.25},
        positive_label="nodule",
    )
)
