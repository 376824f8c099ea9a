"""A synthetic k-class image set whose classes differ by shape, not by where pixels are bright.

Four classes of 28x28 grayscale images: 0 a filled blob (disc), 1 a ring, 2 a bar (a line at
a random angle), 3 a cross (a plus sign at a random angle). Each shape is drawn at a random
position, size, thickness and contrast on a random background with Gaussian noise, and its
brightness is scaled so that its summed intensity does not tell the classes apart. A CNN
learns the shapes; a logistic regression on the pixels sees only weak position-averaged
differences. Used by ``tests/test_image_multiclass.py`` and ``benchmarks/multiclass_cnn.py``
(one definition, here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE_CLASSES = ("blob", "ring", "bar", "cross")
SIZE = 28
#: How far (pixels) a shape's centre may wander from the image centre.
JITTER = 2.5


def _shape_mask(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """Soft mask in [0, 1] of one shape at a random place, scale and angle."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    radius = rng.uniform(0.16, 0.3) * size
    # the centre wanders up to JITTER pixels (and never so far that the shape is cut)
    room = max(0.0, min(JITTER, (size - 1) / 2 - radius - 1.0))
    cy, cx = (size - 1) / 2 + rng.uniform(-room, room, 2)
    dy, dx = yy - cy, xx - cx
    dist = np.hypot(dy, dx)
    width = rng.uniform(1.2, 2.2)  # stroke half-width in pixels
    angle = rng.uniform(0.0, np.pi)
    # distance along / across the stroke direction
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)

    def soft(d: np.ndarray) -> np.ndarray:  # 1 inside, 0 outside, a one-pixel ramp
        return np.clip(1.0 - d, 0.0, 1.0)

    if kind == 0:  # blob: filled disc
        return soft(dist - radius * 0.75)
    if kind == 1:  # ring: annulus
        return soft(np.abs(dist - radius) - width * 0.6)
    bar = soft(np.maximum(np.abs(across) - width * 0.6, np.abs(along) - radius))
    if kind == 2:  # bar
        return bar
    other = soft(np.maximum(np.abs(along) - width * 0.6, np.abs(across) - radius))
    return np.maximum(bar, other)  # cross


def make_shapes(
    n_per_class: int, *, seed: int = 0, size: int = SIZE, n_classes: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 (n, size, size) and int64 (n,), classes interleaved."""
    if not 2 <= n_classes <= len(SHAPE_CLASSES):
        raise ValueError(f"n_classes must lie in 2..{len(SHAPE_CLASSES)}, got {n_classes}")
    rng = np.random.default_rng(seed)
    n = int(n_per_class) * n_classes
    labels = np.arange(n) % n_classes
    images = np.empty((n, size, size), dtype=np.uint8)
    for i, kind in enumerate(labels):
        mask = _shape_mask(int(kind), rng, size)
        # the same expected "ink" for every class: a shape's summed brightness is no cue
        ink = rng.uniform(1500.0, 4500.0)
        contrast = min(ink / max(float(mask.sum()), 1.0), 160.0)
        background = rng.uniform(30.0, 90.0)
        noise = rng.normal(0.0, rng.uniform(8.0, 20.0), (size, size))
        image = background + contrast * mask + noise
        images[i] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def make_shapes_npz(
    path: str | Path,
    n_per_class: int = 200,
    *,
    seed: int = 0,
    n_classes: int = 4,
    val_fraction: float = 0.2,
    test_fraction: float = 0.3,
) -> Path:
    """Write a MedMNIST-layout ``.npz`` (train/val/test images uint8 (N, 28, 28), labels
    (N, 1)) of the shapes set to ``path``; returns the path. Nothing is downloaded."""
    path = Path(path)
    n_val = max(1, round(n_per_class * val_fraction))
    n_test = max(1, round(n_per_class * test_fraction))
    n_train = max(1, int(n_per_class) - n_val - n_test)
    arrays = {}
    for offset, (split, per_class) in enumerate(
        (("train", n_train), ("val", n_val), ("test", n_test))
    ):
        images, labels = make_shapes(per_class, seed=seed * 1000 + offset, n_classes=n_classes)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
