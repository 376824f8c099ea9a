"""Site-shift diagnostics of external evaluations: SMDs, missingness shift, membership
model and the plain-language reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.data.base import make_schema
from medml_cli.evaluation.site_shift import _smd, feature_shift, site_shift
from tests.conftest import CONFIGS, run_cli


def _membership(schema):
    from sklearn.linear_model import LogisticRegression

    from medml_cli.models.preprocessing import tabular_pipeline

    return tabular_pipeline(schema.model_copy(update={"missing": "indicator"}),
                            LogisticRegression(max_iter=2000))


def _frames(shift: float, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    dev = pd.DataFrame({"x": rng.normal(0, 1, n), "grade": rng.choice(["a", "b"], n),
                        "lab": rng.normal(5, 2, n)})
    new = pd.DataFrame({"x": rng.normal(shift, 1, n), "grade": rng.choice(["a", "b"], n),
                        "lab": rng.normal(5, 2, n)})
    new.loc[: n // 2, "lab"] = np.nan  # half the new site never measured the lab
    schema = make_schema(dev, ["grade"], target="y", id_column=None, group_column=None,
                         classes=[])
    return dev, new, schema


def test_smd_by_hand():
    dev = pd.Series([1.0, 2.0, 3.0, 4.0])
    new = pd.Series([2.0, 3.0, 4.0, 5.0])
    sd = np.sqrt((dev.var() + new.var()) / 2)
    assert _smd(dev, new) == pytest.approx(1.0 / sd)


def test_same_distribution_is_hard_to_tell_apart():
    dev, new, schema = _frames(0.0)
    new["lab"] = np.random.default_rng(5).normal(5, 2, len(new))  # no missingness shift
    block = site_shift(dev, new, schema, seed=0, membership_model=_membership(schema),
                       dev_rate=0.4, new_rate=0.42)
    assert block["membership_auroc"] < 0.6
    assert "hardly" in block["reading"] and "similar" in block["reading"]


def test_shifted_site_is_flagged():
    dev, new, schema = _frames(1.0)
    table = feature_shift(dev, new, schema)
    row = table.set_index("feature").loc["x"]
    assert row["smd"] == pytest.approx(1.0, abs=0.2)
    lab = table.set_index("feature").loc["lab"]
    assert lab["missing_development"] == 0 and lab["missing_new_site"] == pytest.approx(
        0.5, abs=0.01)
    block = site_shift(dev, new, schema, seed=0, membership_model=_membership(schema),
                       dev_rate=0.3, new_rate=0.7)
    assert block["membership_auroc"] > 0.8
    for text in ("easily", "x (SMD +", "lab (0% → 50%)", "70% against 30%"):
        assert text in block["reading"]


def test_external_evaluation_reports_site_shift(tmp_path):
    train = run_cli("train", str(CONFIGS / "heart_disease_external.yaml"), "--runs-dir",
                    str(tmp_path / "runs"), "--set", "evaluation.bootstrap=100")
    assert train.exit_code == 0, train.stderr
    result = run_cli("evaluate", train.last_line, "--data",
                     str(CONFIGS / "data" / "heart_disease_other_sites.yaml"))
    assert result.exit_code == 0, result.stderr
    out = Path(result.last_line)
    shift = json.loads((out / "metrics.json").read_text())["site_shift"]
    assert shift["development_rows"] == 303 and shift["new_site_rows"] == 617
    assert 0.5 < shift["membership_auroc"] <= 1.0
    features = pd.read_csv(out / "site_shift.csv")
    chol = features.set_index("feature").loc["chol"]
    assert chol["missing_development"] == 0 and chol["missing_new_site"] > 0.3
    assert "Site shift" in (out / "report.md").read_text()
    # each hospital against Cleveland as well: Switzerland never measured cholesterol, so a
    # membership model tells its patients apart almost perfectly
    per_site = {r["site"]: r for r in shift["per_site"]}
    assert set(per_site) == {"hungarian", "switzerland", "va"}
    assert sum(r["new_site_rows"] for r in per_site.values()) == 617
    assert per_site["switzerland"]["membership_auroc"] > 0.95
    assert per_site["switzerland"]["outcome_rate_new_site"] > 0.9
    assert per_site["hungarian"]["outcome_rate_new_site"] < 0.4
    assert "| switzerland | 123 |" in (out / "report.md").read_text()
