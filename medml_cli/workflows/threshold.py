"""The decision threshold of a binary classifier, chosen as the config says (used by tabular and
image training alike)."""

from __future__ import annotations

from typing import Any

import numpy as np


def pick_threshold(cfg: Any, y: np.ndarray, score: np.ndarray) -> float:
    """The decision threshold the config's evaluation section asks for."""
    from medml_cli.evaluation.thresholds import choose_threshold

    ev = cfg.evaluation
    return float(choose_threshold(y, score, method=ev.threshold_method,
                                  value=ev.threshold if ev.threshold_method == "fixed"
                                  else ev.threshold_target))
