"""How a new site's patients differ from the development data (site-shift diagnostics).

Four views, each a standard one: a membership model (can a classifier tell development rows
from new-site rows? AUROC 0.5 = indistinguishable), standardised mean differences per
feature (|SMD| > 0.1 is the usual flag for imbalance, > 0.25 large), the shift in the share
of missing values per feature, and the case-mix difference (prevalence of the outcome). A
short plain-language reading says what they mean for the model's transportability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: |SMD| above this is a notable difference, above LARGE_SMD a large one (Austin 2009).
NOTABLE_SMD = 0.1
LARGE_SMD = 0.25
#: A change in the missing share above this is reported.
NOTABLE_MISSING_SHIFT = 0.2


def _smd(dev: pd.Series, new: pd.Series) -> float:
    """Standardised mean difference (new − development) / pooled SD; NaN without values."""
    a, b = dev.dropna().astype(float), new.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if pooled == 0:
        return 0.0 if a.mean() == b.mean() else float("inf")
    return float((b.mean() - a.mean()) / pooled)


def _categorical_smd(dev: pd.Series, new: pd.Series) -> float:
    """The largest |SMD| over the categories' indicator variables (present values only)."""
    a, b = dev.dropna().astype(str), new.dropna().astype(str)
    if a.empty or b.empty:
        return float("nan")
    values = []
    for level in sorted(set(a) | set(b)):
        p, q = float((a == level).mean()), float((b == level).mean())
        spread = np.sqrt((p * (1 - p) + q * (1 - q)) / 2)
        values.append(abs(q - p) / spread if spread > 0 else 0.0)
    return float(max(values))


def feature_shift(dev_X: pd.DataFrame, new_X: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """Per feature: kind, SMD (signed for numeric, largest |SMD| over levels for
    categorical), missing share in each data set and its change."""
    categorical = set(schema.names_of("categorical"))
    rows = []
    for name in schema.feature_names:
        kind = "categorical" if name in categorical else "numeric"
        dev, new = dev_X[name], new_X[name]
        smd = _categorical_smd(dev, new) if kind == "categorical" else _smd(dev, new)
        rows.append({"feature": name, "kind": kind, "smd": smd,
                     "missing_development": float(dev.isna().mean()),
                     "missing_new_site": float(new.isna().mean())})
    table = pd.DataFrame(rows)
    table["missing_shift"] = table["missing_new_site"] - table["missing_development"]
    return table


def membership_auroc(dev_X: pd.DataFrame, new_X: pd.DataFrame, schema: Any,
                     seed: int, model: Any) -> float:
    """Cross-validated AUROC of ``model`` (an unfitted classifier pipeline; medml passes a
    logistic regression after imputation plus missing indicators, so missingness counts as
    a difference) telling new-site rows from development rows."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X = pd.concat([dev_X[schema.feature_names], new_X[schema.feature_names]],
                  ignore_index=True)
    member = np.r_[np.zeros(len(dev_X)), np.ones(len(new_X))].astype(int)
    if min(len(dev_X), len(new_X)) < 5:
        return float("nan")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    score = cross_val_predict(model, X, member, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(member, score))


def site_shift(dev_X: pd.DataFrame, new_X: pd.DataFrame, schema: Any, *, seed: int,
               membership_model: Any, dev_rate: float | None = None,
               new_rate: float | None = None) -> dict[str, Any]:
    """metrics.json's ``site_shift`` block: membership AUROC (of ``membership_model``),
    per-feature table, case mix (``*_rate``: the outcome's prevalence or event rate, when it
    has one) and a reading."""
    table = feature_shift(dev_X, new_X, schema)
    block: dict[str, Any] = {
        "development_rows": len(dev_X), "new_site_rows": len(new_X),
        "membership_auroc": membership_auroc(dev_X, new_X, schema, seed, membership_model),
        "features": table.to_dict(orient="records"),
        "outcome_rate_development": dev_rate, "outcome_rate_new_site": new_rate,
    }
    block["reading"] = shift_reading(block)
    return block


def shift_reading(block: dict[str, Any]) -> str:
    """One plain-language paragraph on what the shift diagnostics show."""
    table = pd.DataFrame(block["features"])
    auroc = block["membership_auroc"]
    parts = []
    if np.isfinite(auroc):
        level = ("hardly" if auroc < 0.6 else "moderately" if auroc < 0.75 else "easily")
        parts.append(f"A classifier can {level} tell the new site's patients from the "
                     f"development patients (membership AUROC {auroc:.2f}; 0.5 = no "
                     "difference).")
    large = table[np.abs(table["smd"]) > LARGE_SMD].sort_values(
        "smd", key=np.abs, ascending=False)
    if len(large):
        parts.append("Large differences in " + ", ".join(
            f"{r.feature} (SMD {r.smd:+.2f})" for r in large.head(5).itertuples()) + ".")
    else:
        parts.append("No feature differs by more than a quarter of a standard deviation.")
    moved = table[np.abs(table["missing_shift"]) > NOTABLE_MISSING_SHIFT]
    if len(moved):
        parts.append("Missingness shifts for " + ", ".join(
            f"{r.feature} ({r.missing_development:.0%} → {r.missing_new_site:.0%})"
            for r in moved.head(6).itertuples())
            + ": the model sees imputed (or missing) values there that it rarely saw in "
              "training.")
    dev, new = block.get("outcome_rate_development"), block.get("outcome_rate_new_site")
    if dev is not None and new is not None:
        parts.append(f"The outcome rate is {new:.0%} against {dev:.0%} in development, so "
                     "calibration-in-the-large and any fixed threshold will likely be off; "
                     "discrimination (AUROC) is less affected by case mix."
                     if abs(new - dev) > 0.1 else
                     f"The outcome rate is similar ({new:.0%} against {dev:.0%}).")
    if np.isfinite(auroc) and auroc >= 0.75:
        parts.append("Expect the model's performance here to differ from its development "
                     "estimate; consider updating it with local data.")
    return " ".join(parts)
