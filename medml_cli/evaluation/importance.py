"""Permutation importance on held-out data, as a tidy table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance


def permutation_importance_table(estimator, X: pd.DataFrame, y, *, scoring: str | None,
                                 n_repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Drop in ``scoring`` when each column of held-out ``X`` is shuffled.

    Columns feature, importance_mean, importance_std; most important first. Pass data the
    estimator was NOT fitted on, otherwise importance reflects memorisation.
    """
    # n_jobs=1: the data are small and worker start-up would dominate on 2 cores.
    result = permutation_importance(estimator, X, np.asarray(y), scoring=scoring,
                                    n_repeats=n_repeats, random_state=seed, n_jobs=1)
    table = pd.DataFrame({
        "feature": [str(c) for c in X.columns],
        "importance_mean": result.importances_mean,
        "importance_std": result.importances_std,
    })
    return table.sort_values("importance_mean", ascending=False, kind="stable",
                             ignore_index=True)
