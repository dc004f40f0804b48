"""Measures the import job (processing/import_dataset.py) on a generated ~1 GiB CSV: wall time and peak memory.
Printed, never asserted: the figures depend on the machine and its load.

`python benchmarks/import_large.py [GIB]` writes the data set (seeded: numeric, categorical and missing values, a
binary label in the middle) to a temporary folder, runs the script on it in a fresh process, and prints the time,
the throughput and the script's peak resident memory (ru_maxrss of the child, which streams: it stays flat however
large the data set).
"""
from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "processing" / "import_dataset.py"
COLORS = ["red", "green", "blue", "amber", "violet", "NA", ""]


def generate(path: Path, size: int, seed: int = 11) -> int:
    """Writes about `size` bytes of rows; returns how many rows."""
    rng = random.Random(seed)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("age,income,city,label,score,color,visits\n")
        while handle.tell() < size:
            lines = []
            for _ in range(10_000):  # one write per block keeps generation well below the import's time
                age = rng.randint(18, 90) if rng.random() > 0.05 else ""
                income = f"{rng.lognormvariate(10, 1):.2f}" if rng.random() > 0.1 else "NA"
                city = f"city-{rng.randint(1, 60)}"
                score = f"{rng.gauss(0, 1):.17g}"
                label = "yes" if rng.random() < 0.3 else "no"
                lines.append(f"{age},{income},{city},{label},{score},{rng.choice(COLORS)},{rng.randint(0, 40)}\n")
            handle.write("".join(lines))
            rows += len(lines)
    return rows


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    with tempfile.TemporaryDirectory(prefix="import-large-") as folder:
        inputs, output = Path(folder) / "input", Path(folder) / "output"
        inputs.mkdir()
        started = time.monotonic()
        rows = generate(inputs / "data.csv", int(gib * 2**30))
        size = (inputs / "data.csv").stat().st_size
        print(f"generated {size / 2**20:.0f} MiB, {rows} rows in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(inputs), "--output-dir", str(output),
                               "--label-column", "label", "--task", "binary", "--categorical-columns", "auto",
                               "--drop-columns", "none", "--seed", "1", "--source", "s3://bench/datasets/large/",
                               "--message-file", str(Path(folder) / "message")], capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode:
            sys.exit(f"the import failed: {done.stderr.strip()}")
        # This process holds little when it forks, so the child's high-water mark is the script's own.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        description = json.loads((output / "raw" / "dataset.json").read_text())
        print(f"import: {wall:.0f} s wall ({size / 2**20 / wall:.1f} MiB/s), peak memory {peak:.0f} MiB")
        print(f"splits {description['rows']}; numeric {description['numeric']}; categorical "
              f"{description['categorical']}")


if __name__ == "__main__":
    main()
