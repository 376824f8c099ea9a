"""Peak memory when training streams a dataset from disk three times larger than its budget.

Writes a float32 ``.npy`` of 3 x BUDGET_MB to a temporary folder, opens it memory-mapped and
trains medml's ImageCnnClassifier for one epoch on it in a child process, then measures that
child's peak resident memory (ru_maxrss) against a child that only imports TensorFlow and builds
the same network. The difference is what streaming the data cost; the file size is what
loading it would have cost.

    python benchmarks/streaming_memory.py [BUDGET_MB]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys
import numpy as np
from medml_cli.imaging.estimator import ImageCnnClassifier
from medml_cli.imaging.networks import build_network
path, mode = sys.argv[1], sys.argv[2]
images = np.load(path, mmap_mode="r")
labels = (np.arange(len(images)) % 2).astype(int)
if mode == "train":
    est = ImageCnnClassifier(architecture="cnn3d", filters=(8, 16), dense_units=16, epochs=1,
                             batch_size=32, patience=None, class_weight=None)
    est.fit(images, labels)
else:
    build_network("cnn3d", (*images.shape[1:], 1), filters=(8, 16), dense_units=16)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mb": peak_mb}))
"""


def child_peak(path: Path, mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def main() -> None:
    budget_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 128.0
    shape = (32, 32, 32)
    per_volume = np.prod(shape) * 4
    n = int(3 * budget_mb * 2**20 // per_volume)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "volumes.npy"
        data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, *shape))
        rng = np.random.default_rng(0)
        for start in range(0, n, 256):
            stop = min(n, start + 256)
            data[start:stop] = rng.normal(-700, 200, (stop - start, *shape))
        data.flush()
        del data
        file_mb = path.stat().st_size / 2**20
        base = child_peak(path, "build")
        train = child_peak(path, "train")
    extra = train - base
    print(f"dataset on disk: {file_mb:.0f} MB ({n} volumes of {shape}), budget {budget_mb:.0f} MB")
    print(f"peak RSS, TensorFlow + network only: {base:.0f} MB")
    print(f"peak RSS, one streamed training epoch: {train:.0f} MB")
    print(f"extra memory for the data: {extra:.0f} MB = {extra / file_mb:.2f} x the file size "
          f"({'within' if extra <= budget_mb else 'OVER'} the {budget_mb:.0f} MB budget)")


if __name__ == "__main__":
    main()
