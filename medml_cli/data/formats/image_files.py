"""A folder of images with one sub-folder per class, like Keras ``flow_from_directory``.

::

    root/
        NORMAL/     img001.png, img002.jpeg, ...
        PNEUMONIA/  ...

Classes are the sub-folder names in alphabetical order; images are found recursively inside
each class folder (PNG, JPEG, BMP, GIF, TIFF; other files such as ``.DS_Store`` are ignored).
Pixels come back as float32 in [0, 1]: 8-bit images are divided by 255 and 16-bit ones
(common for medical PNGs) by 65535, so no precision is lost to an 8-bit conversion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medml_cli.data.formats.paths import require_regular_file
from medml_cli.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"})
COLOR_MODES = ("grayscale", "rgb")
_HIGH_DEPTH_MODES = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0}


def _check_args(image_size: tuple[int, int], color_mode: str) -> tuple[int, int]:
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be 'grayscale' or 'rgb', not {color_mode!r}")
    if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
        raise ValueError(f"image_size must be (height, width) of positive ints, got {image_size}")
    return int(image_size[0]), int(image_size[1])


def _to_float(image, size_hw: tuple[int, int], color_mode: str) -> np.ndarray:
    """A Pillow image as float32 (H, W, C) in [0, 1], resized bilinearly."""
    from PIL import Image

    height, width = size_hw
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES or mode in ("I", "F"):
        # Keep 16-bit depth: scale to [0, 1] in float and resize in float ("F") mode.
        arr = np.asarray(image, dtype=np.float32)
        scale = _HIGH_DEPTH_MODES.get(mode, 65535.0 if mode == "I" else 1.0)
        arr = np.clip(arr / scale, 0.0, 1.0)
        resized = Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR)
        gray = np.asarray(resized, dtype=np.float32)[..., None]
        return np.repeat(gray, 3, axis=-1) if color_mode == "rgb" else gray
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Composite transparent pixels on black (the background of medical images).
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    target = "L" if color_mode == "grayscale" else "RGB"
    image = image.convert(target).resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return arr[..., None] if arr.ndim == 2 else arr


_GRAY_MODES = frozenset({"1", "L", "LA", "I", "F", *_HIGH_DEPTH_MODES})
#: Largest channel difference (of 255) still counted as grey: JPEG chroma noise.
_GREY_TOLERANCE = 2


def colour_note(image, color_mode: str) -> str:
    """'' or how the image differs from the model's colour mode (and is converted).

    Decision: convert, with a note, rather than refuse: medical images are often saved as
    RGB files holding grey pixels (R = G = B), which convert without loss and get no note; a
    truly colour image given to a grayscale model loses its colour, and is flagged.
    """
    mode = image.mode
    if color_mode == "grayscale" and mode not in _GRAY_MODES:
        arr = np.asarray(image.convert("RGB"), dtype=np.int16)
        spread = int((arr.max(axis=-1) - arr.min(axis=-1)).max()) if arr.size else 0
        if spread > _GREY_TOLERANCE:
            return (f"colour image ({mode}) converted to grayscale: the model was trained on "
                    "grayscale images")
    if color_mode == "rgb" and mode in _GRAY_MODES:
        return (f"grayscale image ({mode}) repeated into 3 channels: the model was trained on "
                "colour images")
    return ""


def _open(path: Path, size_hw: tuple[int, int], color_mode: str, source: str) -> np.ndarray:
    return _open_with_note(path, size_hw, color_mode, source)[0]


def _open_with_note(path: Path, size_hw: tuple[int, int], color_mode: str,
                    source: str) -> tuple[np.ndarray, str]:
    from PIL import Image, UnidentifiedImageError

    # a FIFO named .png would block Image.open forever: refuse it before opening
    require_regular_file(path, f"the image {path.name}",
                         fix="replace it with a real image file, or delete it.")
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and is named
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # multi-page TIFF / animated GIF: first frame
            return _to_float(image, size_hw, color_mode), colour_note(image, color_mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError) as exc:
        raise DataError(
            f"the image '{path}' could not be read ({type(exc).__name__}: {exc}).",
            "the file is corrupt or not an image: replace or delete it.",
            source=source,
        ) from exc


def load_single_image(
    path: Path | str, image_size: tuple[int, int] = (256, 256), color_mode: str = "grayscale"
) -> np.ndarray:
    """One image as float32 (H, W, C) in [0, 1]; C is 1 for grayscale, 3 for rgb."""
    size_hw = _check_args(image_size, color_mode)
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"the image {path} does not exist.", "check the path.", source=str(path))
    return _open(path, size_hw, color_mode, str(path))


def load_image_with_note(
    path: Path | str, image_size: tuple[int, int] = (256, 256), color_mode: str = "grayscale"
) -> tuple[np.ndarray, str]:
    """Like :func:`load_single_image`, with '' or a note on a colour-mode conversion."""
    size_hw = _check_args(image_size, color_mode)
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"the image {path} does not exist.", "check the path.", source=str(path))
    return _open_with_note(path, size_hw, color_mode, str(path))


def _list_dir(folder: Path, source: str) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(
            f"the folder {folder} cannot be listed ({exc.strerror or exc}).",
            "check its permissions.",
            source=source,
        ) from exc


def _images_in(folder: Path, source: str) -> list[Path]:
    found = []
    for entry in _list_dir(folder, source):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.extend(_images_in(entry, source))
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            found.append(entry)
    return found


def load_image_folder(
    root: Path | str,
    image_size: tuple[int, int] = (256, 256),
    color_mode: str = "grayscale",
    positive_class: str | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read every image under ``root/<class>/``.

    Returns ``(images, labels, class_names, paths)``: images float32 (N, H, W, C) in [0, 1],
    labels int64 (N,) of class codes, ``class_names`` such that ``class_names[label]`` names
    a label, and the image paths (as str) in the same order. With exactly two class folders
    the alphabetically second is positive (label 1, as in Keras): class_names = [negative,
    positive]. With more, every folder is a class: class_names = the folder names sorted,
    labels 0..k-1 in that order. ``positive_class`` binarises instead: that folder is 1 and
    every other folder 0 (class_names [the other / "not <positive>", positive]). Images of
    the other colour mode are converted (see :func:`colour_note`); ``notes`` receives one
    line saying how many were, and which.
    """
    size_hw = _check_args(image_size, color_mode)
    root = Path(root)
    source = str(root)
    if not root.is_dir():
        raise DataError(
            f"the image folder {root} does not exist or is not a folder.",
            "point to the folder that holds one sub-folder per class.",
            source=source,
        )
    class_dirs = [e for e in _list_dir(root, source) if e.is_dir() and not e.name.startswith(".")]
    names = sorted(d.name for d in class_dirs)
    if len(names) < 2:
        loose = [e.name for e in _list_dir(root, source) if e.suffix.lower() in IMAGE_SUFFIXES]
        hint = f" ({len(loose)} images lie directly in it)" if loose else ""
        found = f"only '{names[0]}'" if names else "none"
        raise DataError(
            f"the image folder needs one sub-folder per class, at least two; it has {found}{hint}.",
            "arrange the images as root/<class name>/<image files>, e.g. NORMAL/ and PNEUMONIA/.",
            source=source,
        )
    if positive_class is not None:
        if positive_class not in names:
            raise DataError(
                f"positive_class '{positive_class}' is not one of the class folders "
                f"({', '.join(names)}).",
                "set it to one of the folder names listed (case matters).",
                source=source,
            )
        others = [n for n in names if n != positive_class]
        class_names = [others[0] if len(others) == 1 else f"not {positive_class}", positive_class]
    elif len(names) == 2:
        class_names = list(names)
        positive_class = names[1]
    else:
        class_names = list(names)  # k classes, coded in sorted-name order
    code = ({name: int(name == positive_class) for name in names} if positive_class is not None
            else {name: i for i, name in enumerate(names)})

    paths: list[Path] = []
    labels: list[int] = []
    for name in names:
        files = _images_in(root / name, source)
        if not files:
            raise DataError(
                f"the class folder '{name}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).",
                "add its images, or remove the empty folder.",
                source=source,
            )
        paths.extend(files)
        labels.extend([code[name]] * len(files))

    channels = 1 if color_mode == "grayscale" else 3
    images = np.empty((len(paths), *size_hw, channels), dtype=np.float32)
    converted: list[str] = []
    for i, path in enumerate(paths):
        images[i], note = _open_with_note(path, size_hw, color_mode, source)
        if note:
            converted.append(path.name)
    if converted and notes is not None:
        other = "colour" if color_mode == "grayscale" else "grayscale"
        notes.append(f"{len(converted)} of {len(paths)} image(s) were {other} and were "
                     f"converted to {color_mode} (color_mode), e.g. "
                     f"{', '.join(converted[:5])}")
    return images, np.asarray(labels, dtype=np.int64), class_names, [str(p) for p in paths]
