"""medml's leave-site-out AUROCs beside plain scikit-learn's on the four UCI hospitals.

Plain scikit-learn, as a user would write it: ``SimpleImputer(median, add_indicator=True)``
+ ``StandardScaler`` for the numeric features, ``SimpleImputer(most_frequent,
add_indicator=True)`` + ``OneHotEncoder`` for cp, restecg, slope and thal, then
``LogisticRegression(C=0.1)``, trained on three hospitals and scored on the fourth (chol = 0
read as missing, as the UCI notes say). medml: ``configs/heart_disease_internal_external.yaml``.
Prints both, the difference, the issue's reference figures, and medml's meta-analysis.

    python benchmarks/internal_external_reference.py [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_internal_external import SITES, _plain_sklearn_aurocs  # noqa: E402

TARGETS = dict(zip(SITES, [0.884, 0.899, 0.738, 0.736], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    from medml_cli.config.loader import load_experiment_config
    from medml_cli.workflows.train import run_experiment

    plain = _plain_sklearn_aurocs()
    cfg = load_experiment_config(ROOT / "configs" / "heart_disease_internal_external.yaml",
                                 overrides=[f"evaluation.bootstrap={args.bootstrap}"])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = run_experiment(cfg, runs_dir=Path(folder))
        seconds = time.perf_counter() - started
        block = json.loads((result.path / "metrics.json").read_text())["internal_external"]
    print(f"{'held out':<12} {'medml':>7} {'plain':>7} {'diff':>9} {'target':>7}")
    for row in block["groups"]:
        site = row["group"]
        print(f"{site:<12} {row['auroc']:7.3f} {plain[site]:7.3f} "
              f"{row['auroc'] - plain[site]:+9.1e} {TARGETS[site]:7.3f}")
    for name, pooled in block["pooled"].items():
        prediction = (f"{pooled['prediction_low']:.3f}-{pooled['prediction_high']:.3f}"
                      if pooled.get("prediction_low") is not None else "n/a")
        print(f"pooled {name}: {pooled['estimate']:.3f} ({pooled['low']:.3f}-"
              f"{pooled['high']:.3f}), prediction interval {prediction}, I2 {pooled['i2']:.0%}, "
              f"tau2 {pooled['tau2']:.3g} ({pooled['scale']})")
    print(f"medml train: {seconds:.1f} s")


if __name__ == "__main__":
    main()
