"""Imports, preprocesses and trains a generated ~1 GiB data set offline, as BuildAndRegister's jobs do, and prints
each step's wall time and peak memory. Printed, never asserted: the figures depend on the machine and its load.

`python benchmarks/large_data.py [GIB]` writes the data set (seeded: numeric, categorical and missing values, a
binary label in the middle) to a temporary folder, then runs, each in a fresh process whose own peak resident
memory is read when it ends (wait4):
- the import job's script (processing/import_dataset.py), which streams;
- the features job's script (processing/features.py), which streams in chunks;
- the built-in XGBoost's training as the algorithm runs it on a CSV channel (the label first; XGBoost's own CSV
  reader loads the whole split into memory, as the container's file mode does), with the kit's binary defaults.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCESSING = ROOT / "processing"
# The built-in algorithm's training on one CSV channel, with the kit's binary defaults
# (stacks/settings/model_contract.py).
TRAIN = """
import sys, xgboost
train = xgboost.DMatrix(sys.argv[1] + "?format=csv&label_column=0")
xgboost.train({"objective": "binary:logistic", "eval_metric": "auc", "nthread": 2}, train, num_boost_round=20)
print(train.num_row(), train.num_col())
"""


def step(name: str, command: list[str]) -> str:
    """Runs one step in a fresh process; prints its wall time and its own peak memory; returns its output."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    out, err = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{name} failed: {err.strip()[-500:]}")
    print(f"{name}: {wall:.0f} s wall, peak memory {usage.ru_maxrss / 1024:.0f} MiB")
    return out
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
                city = f"city-{rng.randint(1, 12)}"
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
        python = sys.executable
        step("import", [python, str(PROCESSING / "import_dataset.py"), "--input-dir", str(inputs), "--output-dir",
                        str(output), "--label-column", "label", "--task", "binary", "--categorical-columns", "auto",
                        "--drop-columns", "none", "--seed", "1", "--source", "s3://bench/datasets/large/",
                        "--message-file", str(Path(folder) / "message")])
        description = json.loads((output / "raw" / "dataset.json").read_text())
        print(f"  splits {description['rows']}; numeric {description['numeric']}; categorical "
              f"{description['categorical']}")
        processed = Path(folder) / "processed"
        step("features", [python, str(PROCESSING / "features.py"), "--input-dir", str(output / "raw"),
                          "--output-dir", str(processed)])
        (inputs / "data.csv").unlink()  # room on the disk for the processed splits and the training
        trained = step("training (built-in XGBoost, 20 rounds)",
                       [python, "-c", TRAIN, str(processed / "train" / "train.csv")]).split()
        print(f"  trained on {trained[0]} rows x {trained[1]} columns (the label and the processed features)")
        print(f"sizes tested: {size / 2**20:.0f} MiB ({rows} rows) here; docs/build-and-register.md states it")

if __name__ == "__main__":
    main()
