"""The one place TensorFlow and Keras are imported (lazily, inside functions).

TensorFlow's C++ start-up prints a screenful of notices (oneDNN, missing CUDA drivers) to
stderr that say nothing about the user's run; they are silenced while importing, unless
``MEDML_TF_LOGS=1`` asks for them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ writes there, below Python's sys.stderr)."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some embedded runners): nothing to silence
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, imported once, quietly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"], sys.modules["keras"]
    quiet = os.environ.get("MEDML_TF_LOGS") != "1"
    with _quiet_fd2() if quiet else contextlib.nullcontext():
        import keras
        import tensorflow as tf

        # the first device query prints the "no CUDA" notice; do it while silenced
        tf.config.list_physical_devices()
    return tf, keras
