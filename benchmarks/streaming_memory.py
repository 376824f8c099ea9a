"""Peak memory when training streams a dataset from disk three times larger than its budget.

Writes a float32 ``.npy`` of 3 x BUDGET_MB to a temporary folder, opens it memory-mapped and
trains medml's ImageCnnClassifier for one epoch on it in a child process, sampling the child's
private (anonymous) resident memory every 20 ms. A second child trains the same network on
only the first 64 volumes: the difference between the two peaks is what streaming the whole
file cost; the file size is what loading it into memory would have cost. Pages of the
memory-mapped file itself are page cache, which the kernel reclaims under pressure, so they
are reported separately (peak total RSS) and not counted against the budget.

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
import json, resource, sys, threading, time
import numpy as np
from medml_cli.models.keras.estimator import ImageCnnClassifier

peak = {"anon": 0}
def sample():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak["anon"] = max(peak["anon"], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
path, mode = sys.argv[1], sys.argv[2]
images = np.load(path, mmap_mode="r")
if mode == "small":
    images = images[:64]
labels = (np.arange(len(images)) % 2).astype(int)
est = ImageCnnClassifier(architecture="cnn3d", filters=(8, 16), dense_units=16, epochs=1,
                         batch_size=32, patience=None, class_weight=None)
est.fit(images, labels)
time.sleep(0.1)
print(json.dumps({"anon_mb": peak["anon"] / 1024,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child_peak(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        base = child_peak(path, "small")
        full = child_peak(path, "full")
    extra = full["anon_mb"] - base["anon_mb"]
    print(f"dataset on disk: {file_mb:.0f} MB ({n} volumes of {shape}), budget {budget_mb:.0f} MB")
    print(f"peak private memory, 64 volumes:    {base['anon_mb']:.0f} MB "
          f"(total RSS {base['rss_mb']:.0f} MB)")
    print(f"peak private memory, whole file:    {full['anon_mb']:.0f} MB "
          f"(total RSS {full['rss_mb']:.0f} MB, includes reclaimable mapped file pages)")
    print(f"extra private memory for streaming the file: {extra:.0f} MB = "
          f"{extra / file_mb:.2f} x the file size "
          f"({'within' if extra <= budget_mb else 'OVER'} the {budget_mb:.0f} MB budget)")


if __name__ == "__main__":
    main()
