"""Seeded train/test splits: stratified, and grouped by patient when a group column exists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from medml_cli.errors import DataError

Fold = tuple[np.ndarray, np.ndarray]


def _check_enough(y: np.ndarray, groups: np.ndarray | None, n_splits: int, classify: bool,
                  stratify: bool) -> None:
    n_units = len(np.unique(groups)) if groups is not None else len(y)
    unit = "patients" if groups is not None else "rows"
    if n_units < n_splits:
        raise DataError(
            f"only {n_units} {unit} for {n_splits} folds.",
            "lower `split.n_splits` or add data.",
        )
    if classify and stratify:
        counts = np.bincount(y.astype(int), minlength=2)
        if counts.min() < n_splits:
            raise DataError(
                f"the smaller class has {counts.min()} rows, fewer than the {n_splits} folds, "
                "so some folds would hold none.",
                "lower `split.n_splits`, use `split.method: holdout`, or add data.",
            )


def kfold_splits(
    y: np.ndarray,
    *,
    n_splits: int,
    seed: int,
    classify: bool,
    stratify: bool = True,
    groups: np.ndarray | None = None,
) -> list[Fold]:
    """k folds whose test parts cover every row exactly once."""
    _check_enough(y, groups, n_splits, classify, stratify)
    X_dummy = np.zeros((len(y), 1))
    if groups is not None:
        if classify and stratify:
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        else:
            splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(X_dummy, y, groups))
    if classify and stratify:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(X_dummy, y))


def holdout_split(
    y: np.ndarray,
    *,
    test_size: float,
    seed: int,
    classify: bool,
    stratify: bool = True,
    groups: np.ndarray | None = None,
    setting: str = "split.test_size",
) -> Fold:
    """One train/test split with ``test_size`` of the rows (or patients) held out.

    ``setting`` names the config key behind ``test_size``, for the error message.
    """
    X_dummy = np.zeros((len(y), 1))
    n_units = len(np.unique(groups)) if groups is not None else len(y)
    if n_units * test_size < 1 or n_units * (1 - test_size) < 2:
        raise DataError(
            f"{n_units} {'patients' if groups is not None else 'rows'} are too few for a "
            f"held-out share of {test_size} (`{setting}`).",
            f"adjust `{setting}` or add data.",
        )
    if groups is not None:
        if classify and stratify:
            # StratifiedGroupKFold with k = 1/test_size, first fold as test: grouped and
            # stratified, which GroupShuffleSplit is not.
            k = max(2, round(1 / test_size))
            _check_enough(y, groups, k, classify, stratify)
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            return next(iter(splitter.split(X_dummy, y, groups)))
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        return next(iter(splitter.split(X_dummy, y, groups)))
    if classify and stratify:
        counts = np.bincount(y.astype(int), minlength=2)
        if counts.min() < 2:
            raise DataError(
                f"the smaller class has {counts.min()} row(s); a stratified holdout needs "
                "at least 2.", "add data or set `split.stratify: false`.")
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        return next(iter(splitter.split(X_dummy, y)))
    splitter = ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(iter(splitter.split(X_dummy, y)))


def make_folds(
    y: np.ndarray,
    *,
    method: str,
    n_splits: int,
    test_size: float,
    seed: int,
    classify: bool,
    stratify: bool,
    groups: np.ndarray | None,
) -> list[Fold]:
    """The train/test folds for ``method``: one holdout split or k folds."""
    if method == "holdout":
        return [holdout_split(y, test_size=test_size, seed=seed, classify=classify,
                              stratify=stratify, groups=groups)]
    return kfold_splits(y, n_splits=n_splits, seed=seed, classify=classify, stratify=stratify,
                        groups=groups)




def leave_group_out_splits(by: np.ndarray, *, y: np.ndarray | None = None,
                           classify: bool = False, column: str = "split.by"
                           ) -> tuple[list[Fold], list[Any]]:
    """One fold per group of ``by`` (e.g. each hospital): that group's rows are the test
    part, every other group's rows the training part. Returns the folds and their groups,
    in natural order (:func:`~medml_cli.evaluation.subgroups.natural_key`).

    Raises DataError for a missing group value, fewer than two groups, or (``classify``) a
    training part lacking one of the classes, which no model could be fitted on.
    """
    from medml_cli.evaluation.subgroups import natural_key

    values = pd.Series(by).reset_index(drop=True)
    if values.isna().any():
        raise DataError(
            f"the `{column}` column is empty in {int(values.isna().sum())} row(s) (first at "
            f"data row {int(values.isna().to_numpy().argmax()) + 1}).",
            "fill in every row's group, or remove those rows.")
    groups = sorted(values.unique(), key=natural_key)
    if len(groups) < 2:
        raise DataError(
            f"leave-group-out needs at least two groups in `{column}`, but every row is "
            f"{groups[0]!r}.",
            "add data from other groups (e.g. more `data.sites`), or use `split.method: "
            "kfold`.")
    folds = []
    for group in groups:
        test = np.flatnonzero((values == group).to_numpy())
        train = np.flatnonzero((values != group).to_numpy())
        if classify and y is not None and len(np.unique(y[train])) < len(np.unique(y)):
            raise DataError(
                f"without group {group!r} the training rows hold only one class, so no model "
                "can be developed to test on it.",
                "add groups with both outcomes, or use `split.method: kfold`.")
        folds.append((train, test))
    return folds, list(groups)
