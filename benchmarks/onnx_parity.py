"""ONNX parity on every shipped config: train each ``configs/*.yaml`` into a temporary runs
folder, ``medml export`` it, and print the measured max |ONNX Runtime - medml| per config.

Configs whose data are not on this machine (LUNA16, NoduleMNIST3D read external files) are
listed as skipped. Survival configs report the largest difference over the risk score,
the median survival time and S(t | x) on the run's time grid. Tabular configs train with
``evaluation.bootstrap=0`` (the bootstrap does not touch the model). The CNN configs train
as shipped unless ``--quick-cnn`` is given, which shrinks them (``--set model.epochs=3
data.n_patients=24``; the network is as shipped).

    python benchmarks/onnx_parity.py [--quick-cnn] [--only heart_disease_rf ...] [--survival]

``--survival`` keeps the survival configs only (``*_survival_*``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
EXTERNAL_DATA = {"lung_ct_luna16": "LUNA16 .mhd/.raw files (data.root)",
                 "lung_ct_nodulemnist3d": "nodulemnist3d.npz (data.path)"}
QUICK_CNN = ["--set", "model.epochs=3", "--set", "data.n_patients=24"]


def _medml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medml_cli", *args], capture_output=True,
                          text=True, cwd=REPO)


def main() -> None:
    """Train, export and print one parity row per shipped config."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-cnn", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--survival", action="store_true",
                        help="only the survival configs (*_survival_*)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in sorted(CONFIGS.glob("*.yaml")):
            name = config.stem
            if (args.only and name not in args.only) or (args.survival
                                                          and "_survival_" not in name):
                continue
            if name in EXTERNAL_DATA:
                rows.append((name, "skipped", f"needs {EXTERNAL_DATA[name]}", "", ""))
                continue
            extra = ["--set", "evaluation.bootstrap=0"]
            if name.startswith("lung_ct") and args.quick_cnn:
                extra += QUICK_CNN
            start = time.perf_counter()
            trained = _medml("-q", "train", str(config), "--runs-dir", tmp, *extra)
            if trained.returncode != 0:
                rows.append((name, "train failed", trained.stderr.strip()[-200:], "", ""))
                continue
            run = Path(trained.stdout.strip().splitlines()[-1])
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            exported = _medml("export", str(run))
            export_s = time.perf_counter() - start
            if exported.returncode != 0:
                reason = exported.stderr.strip().splitlines()[-1][:160]
                rows.append((name, f"refused (exit {exported.returncode})", reason,
                             f"{train_s:.0f}", f"{export_s:.1f}"))
                continue
            signature = json.loads((run / "exports" / "onnx" / "signature.json").read_text())
            parity = signature["parity"]
            rows.append((name, f"{parity['max_abs_diff']:.2e}",
                         f"{parity['rows']} rows, tolerance {parity['tolerance']:g}, "
                         f"{signature['model']}", f"{train_s:.0f}", f"{export_s:.1f}"))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print("| config | max abs diff | checked on | train s | export s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
