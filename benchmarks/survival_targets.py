"""medml's shipped survival configs against plain scikit-survival on the same folds.

For each shipped config (Veterans / Cox, GBSG2 / random survival forest, WHAS500 / Cox),
``medml train`` in-process (``evaluation.bootstrap=0``, no plots: only the C-index is
compared) and :func:`survival_reference.plain_c_index` (plain scikit-survival, the same
``StratifiedKFold`` folds on the event) print Harrell's C pooled over the out-of-fold risk
scores and the mean of the per-fold C, for seed 42 and repeated over seeds 42..46, beside
the issue's targets for plain scikit-survival (0.708, 0.692, 0.769; must reach within 0.01).

    python benchmarks/survival_targets.py [--seeds 42 43 44 45 46]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from survival_reference import TARGETS, plain_c_index  # noqa: E402

CONFIGS = {("veterans", "cox"): "lung_cancer_survival_cox.yaml",
           ("gbsg2", "random-survival-forest"): "breast_cancer_survival_rsf.yaml",
           ("whas500", "cox"): "heart_attack_survival_cox.yaml"}


def medml_c_index(config: str, seed: int, runs_dir: Path) -> dict[str, float]:
    """Pooled and per-fold-mean Harrell's C of ``medml train`` on a shipped config."""
    from medml_cli.config.loader import load_experiment_config
    from medml_cli.workflows.train import run_experiment

    root = Path(__file__).resolve().parent.parent / "configs"
    cfg = load_experiment_config(root / config, [f"seed={seed}", "evaluation.bootstrap=0",
                                      "evaluation.plots=false"])
    result = run_experiment(cfg, runs_dir=runs_dir)
    folds = [row["c_index"] for row in result.metrics["per_fold"]]
    return {"pooled": result.metrics["metrics"]["c_index"], "mean": float(np.mean(folds)),
            "seconds": result.metrics["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    args = parser.parse_args()
    print(f"{'config':<34} {'target':>6} {'medml pooled':>12} {'plain pooled':>12} "
          f"{'medml fold mean':>15} {'plain fold mean':>15} {'|medml - target|':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for key, config in CONFIGS.items():
            start = time.perf_counter()
            ours = [medml_c_index(config, s, Path(tmp)) for s in args.seeds]
            plain = [plain_c_index(*key, seed=s) for s in args.seeds]
            for label, pick in (("seed 42", slice(0, 1)), (f"{len(args.seeds)} seeds",
                                                            slice(None))):
                o, p = ours[pick], plain[pick]
                pooled = np.mean([r["pooled"] for r in o])
                print(f"{config + ' (' + label + ')':<34} {TARGETS[key]:6.3f} {pooled:12.3f} "
                      f"{np.mean([r['pooled'] for r in p]):12.3f} "
                      f"{np.mean([r['mean'] for r in o]):15.3f} "
                      f"{np.mean([r['mean'] for r in p]):15.3f} "
                      f"{abs(pooled - TARGETS[key]):16.3f}")
            print(f"  ({time.perf_counter() - start:.0f} s; medml train "
                  f"{np.mean([r['seconds'] for r in ours]):.1f} s per run)")


if __name__ == "__main__":
    main()
