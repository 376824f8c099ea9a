"""The container every image data source returns, and config pieces they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field

from medml_cli.data.formats.paths import sha256_file
from medml_cli.errors import DataError
from medml_cli.schemas import DEFAULT_HU_WINDOW, Provenance

#: Intensity handling passed to the input pipeline: (mode, low, high).
Intensity = tuple[str, float, float]


@dataclass
class ImageDataset:
    """Images (or volumes) with class labels, patient groups and, optionally, fixed splits.

    ``labels`` are int codes 0..k-1 and ``class_names[code]`` names code ``code``; k =
    ``len(class_names)`` is 2 for a binary set (0 negative, 1 positive) and more for a
    multi-class one.

    ``images`` is (N, *spatial) or (N, *spatial, C); it may be a read-only ``np.memmap`` so
    that training streams from disk. ``splits`` maps 'train'/'val'/'test' to row indices when
    the source defines its own split (MedMNIST).
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    provenance: Provenance
    intensity: Intensity
    spatial_dims: int
    groups: np.ndarray | None = None
    splits: dict[str, np.ndarray] | None = None
    class_names: tuple[str, ...] = ("negative", "positive")
    #: What the reader did that a reader of the run should know (non-CT modalities allowed,
    #: images converted to the colour mode ...): for the run's log and metrics.
    notes: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Number of images."""
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        """Number of classes, k = ``len(class_names)`` (2 for a binary set)."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, with a trailing channel axis added when it has none."""
        shape = tuple(int(s) for s in self.images.shape[1:])
        return shape if len(shape) > self.spatial_dims else (*shape, 1)

    def check(self, source: str) -> ImageDataset:
        """Checks every source's output gets: sizes agree, at least two classes, labels are
        codes 0..k-1 of the k ``class_names``, finite values."""
        if self.n_samples == 0:
            raise DataError("no images were found.", "check the data path and filters.",
                            source=source)
        if len(self.images) != self.n_samples or len(self.ids) != self.n_samples:
            raise DataError(f"{len(self.images)} images but {self.n_samples} labels.",
                            "give one label per image.", source=source)
        classes = np.unique(self.labels)
        k = len(self.class_names)
        if len(classes) < 2:
            needs = "both classes" if k == 2 else "at least two classes"
            raise DataError(
                f"all {self.n_samples} images have label {classes[0]}; a classifier needs "
                f"{needs}.", "check the labels file or the class folders.", source=source)
        if k == 2 and not set(classes.tolist()) <= {0, 1}:
            raise DataError(f"labels must be 0/1, got {sorted(classes.tolist())[:10]}.",
                            "binarise the labels (e.g. `positive_classes`).", source=source)
        if not set(classes.tolist()) <= set(range(k)):
            raise DataError(f"labels must be class codes 0..{k - 1} (one per class name), "
                            f"got {sorted(classes.tolist())[:10]}.",
                            "code the classes 0, 1, ..., k-1 in class-name order.",
                            source=source)
        if self.images.dtype.kind == "f" and not isinstance(self.images, np.memmap):
            if not np.isfinite(self.images).all():
                raise DataError("the images contain NaN or infinite values.",
                                "fix or drop the affected images.", source=source)
        return self


HU_WINDOW_FIELD = Field(
    default_factory=lambda: list(DEFAULT_HU_WINDOW),
    min_length=2,
    max_length=2,
    description="HU range [low, high] clipped and scaled to [0, 1] (lung window default).",
)


def hu_intensity(window: list[float]) -> Intensity:
    """A checked `hu_window` [low, high] as the intensity ('hu', low, high)."""
    low, high = float(window[0]), float(window[1])
    if not low < high:
        raise DataError(f"hu_window [{low}, {high}] is empty.", "give [low, high] with low < high.")
    return ("hu", low, high)


ALLOW_MODALITIES_FIELD = Field(
    default_factory=list,
    description="DICOM modalities read besides CT (e.g. [MR]); by default a non-CT image is "
                "refused, since its pixel values are not Hounsfield units. Its use is logged.",
)


def modality_codes(values: list[str]) -> list[str]:
    """Upper-case DICOM modality codes (CT, MR ...), checked for shape."""
    out = []
    for value in values:
        code = str(value).strip().upper()
        if not code or len(code) > 16 or not all(c.isalnum() or c == "_" for c in code):
            raise ValueError(f"{value!r} is not a DICOM modality code such as MR or PT")
        out.append(code)
    return sorted(set(out))


def modality_note(found: dict[str, int], allowed: list[str]) -> str:
    """The note a run records when images of an allowed non-CT modality were read."""
    listed = ", ".join(f"{m} ({n} series)" for m, n in sorted(found.items()))
    return (f"read non-CT images, {listed}, because data.allow_modalities is "
            f"{allowed}: their pixel values are not Hounsfield units")


IMAGE_TAGS = {"image", "binary-classification"}
#: Tags of the image sources that also load k > 2 classes.
MULTICLASS_IMAGE_TAGS = IMAGE_TAGS | {"multiclass"}


def _size_list(value: list[int], n: int) -> list[int]:
    if len(value) != n or any(v < 4 or v > 1024 for v in value):
        raise ValueError(f"expected {n} sizes, each between 4 and 1024")
    return value


def _hash_files(paths: list[Path], limit: int = 2000) -> dict[str, str]:
    """sha256 of the input files (capped, so a huge archive does not stall every run)."""
    return {p.name: sha256_file(p) for p in sorted(paths)[:limit]}


def resize_stack(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resize of each image (N, *spatial) to ``shape``."""
    from scipy.ndimage import zoom

    if tuple(images.shape[1:]) == tuple(shape):
        return images.astype(np.float32, copy=False)
    factors = [1.0, *(t / s for t, s in zip(shape, images.shape[1:], strict=True))]
    out = zoom(images.astype(np.float32), factors, order=1)
    return out[(slice(None), *(slice(0, t) for t in shape))]
