"""Regenerate dcurves_reference.csv: net benefit computed by the `dcurves` package
(Vickers' decision curve analysis) on scores tied with the k/100 grid.

Run by hand (`pip install dcurves`; it pins pandas < 3 through lifelines, so use a scratch
environment): python tests/data/make_dcurves_reference.py. The tests read the CSV, so the
suite runs on today's pandas without dcurves installed.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def main() -> None:
    import dcurves

    rng = np.random.default_rng(3)
    n = 400
    score = rng.integers(0, 101, n) / 100  # every score on k/100, many tied with a threshold
    y = rng.binomial(1, np.clip(score, 0.05, 0.95))
    grid = np.arange(1, 100) / 100
    ref = dcurves.dca(data=pd.DataFrame({"y": y, "model": score}), outcome="y",
                      modelnames=["model"], thresholds=grid)
    wide = {name: ref[ref["model"] == name]["net_benefit"].to_numpy()
            for name in ("model", "all", "none")}
    pd.DataFrame({"y": y, "score": score}).to_csv(HERE / "dcurves_input.csv", index=False)
    pd.DataFrame({"threshold": grid, **wide}).to_csv(HERE / "dcurves_reference.csv",
                                                     index=False, float_format="%.17g")
    print(f"dcurves {dcurves.__version__ if hasattr(dcurves, '__version__') else ''}: wrote "
          "dcurves_input.csv and dcurves_reference.csv")


if __name__ == "__main__":
    main()
