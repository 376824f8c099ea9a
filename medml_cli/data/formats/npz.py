"""MedMNIST ``.npz`` files (e.g. ``nodulemnist3d.npz``, ``pneumoniamnist.npz``).

Layout: ``train_images``, ``train_labels``, ``val_images``, ``val_labels``, ``test_images``,
``test_labels``. Images are uint8, (N, H, W) or (N, H, W, 3) for 2-D sets and (N, D, H, W)
for 3-D sets (28 or 64 per side); labels are (N, 1) integers. An optional ``class_names``
array of strings (one per class number, in class-number order) names the classes.

Files are opened with ``allow_pickle=False``: an ``.npz`` can carry pickled Python objects,
and unpickling runs arbitrary code, so an archive holding object arrays is refused.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medml_cli.data.formats.paths import require_regular_file
from medml_cli.errors import DataError

#: Array files predict and the numpy-arrays source read.
ARRAY_SUFFIXES = frozenset({".npz", ".npy"})
SPLITS = ("train", "val", "test")
REQUIRED_KEYS = tuple(f"{split}_{part}" for split in SPLITS for part in ("images", "labels"))
#: Optional key: names of the classes, indexed by class number.
CLASS_NAMES_KEY = "class_names"


def _is_3d(images: np.ndarray) -> bool:
    # (N, H, W, 3) is a colour 2-D image; (N, D, H, W) with D > 4 is a volume.
    return images.ndim == 4 and images.shape[-1] not in (1, 3, 4)


def load_medmnist_npz(
    path: Path | str, positive_classes: Iterable[int] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST archive into ``{"train"|"val"|"test": (images, labels)}``.

    Images keep their stored dtype (uint8) and shape; labels become int64 class codes of
    shape (N,): 0/1 for a two-class set; for a multi-class set (e.g. OrganMNIST) 0..k-1 in
    the order of the class numbers found (see :func:`load_medmnist_npz_with_names` for
    their names), unless ``positive_classes`` binarises it: those classes become 1 and all
    others 0.
    """
    return load_medmnist_npz_with_names(path, positive_classes)[0]


def load_medmnist_npz_with_names(
    path: Path | str, positive_classes: Iterable[int] | None = None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[str, ...] | None]:
    """:func:`load_medmnist_npz` plus the class names of a multi-class set.

    The names are ``None`` for a binary set (two classes 0/1, or binarised with
    ``positive_classes``); for k > 2 classes they are the file's ``class_names`` when it
    has them, else the class numbers as strings ("0", "1", ...), in code order.
    """
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(
            f"the MedMNIST file {path} does not exist.",
            "download it (e.g. `python -m medmnist save --flag=nodulemnist3d`, or from the "
            "MedMNIST Zenodo record) and give its path.",
            source=source,
        )
    require_regular_file(path, "`data.path`")  # /dev/zero or a FIFO: never opened
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path.name} is not an .npz archive (not a zip file); it is probably truncated "
            "or an HTML error page saved under that name.",
            "download the file again and check its size / checksum.",
            source=source,
        )
    wanted = None if positive_classes is None else sorted({int(c) for c in positive_classes})
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seen: set[int] = set()
    stored_names: np.ndarray | None = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = sorted(archive.files)
            missing = [k for k in REQUIRED_KEYS if k not in present]
            if missing:
                raise DataError(
                    f"{path.name} lacks the array(s) {', '.join(missing)}; it holds "
                    f"{', '.join(present) or 'nothing'}.",
                    "use a MedMNIST .npz (with train/val/test images and labels) or rename "
                    "the arrays to match.",
                    source=source,
                )
            for split in SPLITS:
                images = archive[f"{split}_images"]
                labels = archive[f"{split}_labels"]
                binary, classes = _binary_labels(labels, images, split, wanted, source)
                out[split] = (images, binary)
                seen.update(classes)
            if CLASS_NAMES_KEY in present:
                stored_names = archive[CLASS_NAMES_KEY]
    except DataError:
        raise
    except ValueError as exc:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False".
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{path.name} holds pickled Python objects, which medml does not load "
                "because unpickling can run arbitrary code.",
                "save the arrays as plain numeric arrays (np.savez with uint8 images and "
                "integer labels).",
                source=source,
            ) from exc
        raise DataError(
            f"{path.name} could not be read ({exc}).", "download the file again.", source=source
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataError(
            f"{path.name} is corrupt ({type(exc).__name__}: {exc}).",
            "download the file again and check its size / checksum.",
            source=source,
        ) from exc
    if wanted is not None:
        unknown = [c for c in wanted if c not in seen]
        if unknown or set(seen) <= set(wanted):
            problem = (
                f"positive_classes {', '.join(map(str, unknown))} do not occur"
                if unknown
                else "positive_classes cover every class, so nothing would be negative"
            )
            raise DataError(
                f"{problem} in {path.name} (classes: {', '.join(map(str, sorted(seen)))}).",
                "choose positive_classes among the classes listed, leaving at least one out.",
                source=source,
            )
        return out, None
    classes = sorted(seen)
    if set(classes) <= {0, 1}:
        return out, None  # binary as it is (a single class is refused by the dataset check)
    if len(classes) == 2:
        raise DataError(
            f"{path.name} has two classes coded {classes[0]} and {classes[1]}, not 0/1.",
            f"pass positive_classes=[{classes[1]}] (or the other) to say which is positive.",
            source=source,
        )
    names = _class_names(stored_names, classes, path.name, source)
    codes = np.asarray(classes, dtype=np.int64)
    for split, (images, labels) in out.items():
        # class number -> code 0..k-1 (the identity for the usual 0..k-1 numbering)
        out[split] = (images, np.searchsorted(codes, labels).astype(np.int64))
    return out, names


def _class_names(
    stored: np.ndarray | None, classes: list[int], name: str, source: str
) -> tuple[str, ...]:
    """Names of ``classes``: from the file's ``class_names`` array, else the numbers."""
    if stored is None:
        return tuple(str(c) for c in classes)
    values = np.asarray(stored).reshape(-1)
    if values.dtype.kind not in "US" or len(values) <= max(classes) or min(classes) < 0:
        raise DataError(
            f"{name}'s {CLASS_NAMES_KEY} array ({values.dtype}, {len(values)} entries) does "
            f"not name the classes {', '.join(map(str, classes))}.",
            f"store {CLASS_NAMES_KEY} as an array of strings with one name per class "
            "number, or drop it.",
            source=source,
        )
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    chosen = tuple(names[c].strip() for c in classes)
    if len(set(chosen)) != len(chosen) or not all(chosen):
        raise DataError(
            f"{name}'s {CLASS_NAMES_KEY} are empty or repeated: {', '.join(chosen)}.",
            "give each class a distinct name.",
            source=source,
        )
    return chosen


def _binary_labels(
    labels: np.ndarray,
    images: np.ndarray,
    split: str,
    positive_classes: list[int] | None,
    source: str,
) -> tuple[np.ndarray, list[int]]:
    """Labels as int64 0/1 of shape (N,), and the original classes seen."""
    if images.ndim not in (3, 4):
        raise DataError(
            f"{split}_images has shape {images.shape}; expected (N, H, W), (N, H, W, 3) or "
            "(N, D, H, W).",
            "use a MedMNIST archive, or reshape the images to one of those layouts.",
            source=source,
        )
    if images.ndim == 4 and not _is_3d(images) and images.shape[-1] not in (1, 3):
        raise DataError(
            f"{split}_images has {images.shape[-1]} channels; expected 1 or 3.",
            "convert the images to grayscale or RGB.",
            source=source,
        )
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(
            f"{split}_images has dtype {images.dtype}, not numbers.",
            "store the images as uint8 or float arrays.",
            source=source,
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"{split}_labels has shape {labels.shape}; expected (N,) or (N, 1). Multi-label "
            "sets (e.g. ChestMNIST, 14 columns) are not binary classification tasks.",
            "pick one label column and save it as (N, 1).",
            source=source,
        )
    if len(labels) != len(images):
        raise DataError(
            f"{split} has {len(images)} images but {len(labels)} labels.",
            "the two arrays must have one row per sample; the file is probably mixed up.",
            source=source,
        )
    if not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype(np.int64)
        if not np.issubdtype(labels.dtype, np.number) or not np.array_equal(as_int, labels):
            raise DataError(
                f"{split}_labels must hold integer classes (dtype {labels.dtype}).",
                "store class numbers as integers.",
                source=source,
            )
        labels = as_int
    labels = labels.astype(np.int64)
    classes = sorted(int(c) for c in np.unique(labels))
    if positive_classes is not None:
        # Binarise multi-class labels; classes absent from a split are fine (small val sets).
        return np.isin(labels, positive_classes).astype(np.int64), classes
    if classes and classes[0] < 0:
        raise DataError(
            f"{split}_labels has negative class numbers ({', '.join(map(str, classes[:5]))}).",
            "number the classes 0, 1, 2, ...",
            source=source,
        )
    # multi-class sets are coded 0..k-1 once every split's classes are known
    return labels, classes
