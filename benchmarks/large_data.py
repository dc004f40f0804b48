"""Runs the data job on generated data sets of 256 MiB and 1 GiB, on one instance and on Spark, and trains on the
larger, offline, as BuildAndRegister's jobs do, and prints each step's wall time and peak memory. Printed, never
asserted: the figures depend on the machine and its load.

`python benchmarks/large_data.py [GIB ...]` (default 0.25 and 1) writes each data set (seeded: numeric,
categorical and missing values, a binary label in the middle) as FILES files to a temporary folder, then runs, each
in a fresh process whose own peak resident memory (its largest process's) is read when it ends (wait4):
- BuildAndRegister's one-instance data job (processing/import_dataset.py with --processed-dir, which runs
  processing/features.py in the same process), for every size;
- for the largest size, the Spark data job (processing/spark_data_job.py) in local Spark on this machine's cores,
  as the offline runner starts it (spark-submit, Java from .venv-spark), and whether its outputs are the one-instance
  job's byte for byte;
- for the largest size, the built-in XGBoost's training as the algorithm runs it on a CSV channel (the label
  first; XGBoost's own CSV reader loads the whole split into memory, as the container's file mode does), with
  the kit's binary defaults.
"""
from __future__ import annotations

import filecmp
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from contract.bundle import bundle  # noqa: E402
from offline.runtimes import spark_jobs  # noqa: E402

PROCESSING = ROOT / "processing"
FILES = 8  # the data set's files: Spark spreads the data job by file
ARGUMENTS = ["--label-column", "label", "--task", "binary", "--categorical-columns", "auto", "--drop-columns", "none",
             "--seed", "1", "--source", "s3://bench/datasets/large/"]
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
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:  # no pipe to fill
        process = subprocess.Popen(command, stdout=out_file, stderr=err_file, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
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


def data_job(folder: Path, inputs: Path) -> Path:
    """BuildAndRegister's data job (import, checks, split, preprocessing) on `inputs`; returns its processed output."""
    output, processed = folder / "output", folder / "processed"
    step("data job (import, checks, split, preprocessing)",
         [sys.executable, str(PROCESSING / "import_dataset.py"), "--input-dir", str(inputs), "--output-dir",
          str(output), *ARGUMENTS, "--message-file", str(folder / "message"), "--processed-dir", str(processed)])
    description = json.loads((output / "raw" / "dataset.json").read_text())
    print(f"  splits {description['rows']}; numeric {description['numeric']}; categorical "
          f"{description['categorical']}")
    return processed


def spark_data_job(folder: Path, inputs: Path) -> None:
    """The Spark data job on `inputs` in local Spark, as the offline runner runs it; compared with data_job's."""
    code = folder / "code"
    code.mkdir()
    for name in ("import_dataset", "features"):
        (code / f"{name}.py").write_text(bundle(PROCESSING / f"{name}.py"))
    output, processed = folder / "spark-output", folder / "spark-processed"
    step(f"Spark data job (local Spark on {os.cpu_count()} cores)",
         ["env", *(f"{key}={value}" for key, value in spark_jobs.local_environment().items()),
          *spark_jobs.local_submit({}, folder / "spark-local"), str(PROCESSING / "spark_data_job.py"), "--input-dir",
          str(inputs), "--output-dir", str(output), *ARGUMENTS, "--message-file", str(folder / "spark-message"),
          "--processed-dir", str(processed), "--import-script", str(code / "import_dataset.py"),
          "--features-script", str(code / "features.py")])
    same = all(_same(folder / one, folder / other) for one, other in (("output", "spark-output"),
                                                                     ("processed", "spark-processed")))
    print(f"  its outputs are the one-instance job's byte for byte: {'yes' if same else 'NO'}")


def _same(one: Path, other: Path) -> bool:
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file()) and all(
        filecmp.cmp(one / name, other / name, shallow=False) for name in files)


def main() -> None:
    sizes = [float(size) for size in sys.argv[1:]] or [0.25, 1.0]  # GiB: peak memory should not grow with them
    for number, gib in enumerate(sizes):
        with tempfile.TemporaryDirectory(prefix="import-large-") as folder:
            inputs = Path(folder) / "input"
            inputs.mkdir()
            started = time.monotonic()
            rows = sum(generate(inputs / f"part-{part}.csv", int(gib * 2**30 / FILES), seed=11 + part)
                       for part in range(FILES))
            size = sum(path.stat().st_size for path in inputs.iterdir())
            print(f"generated {size / 2**20:.0f} MiB, {rows} rows in {FILES} files in {time.monotonic() - started:.0f} s")
            os.sync()  # the data set on the disk before the job starts, as SageMaker stages it: no writeback meanwhile
            processed = data_job(Path(folder), inputs)
            if number < len(sizes) - 1:
                continue
            spark_data_job(Path(folder), inputs)
            for path in inputs.iterdir():
                path.unlink()  # room on the disk for the training
            trained = step("training (built-in XGBoost, 20 rounds)",
                           [sys.executable, "-c", TRAIN, str(processed / "train" / "train.csv")]).split()
            print(f"  trained on {trained[0]} rows x {trained[1]} columns (the label and the processed features)")
    print("sizes measured here are stated in docs/build-and-register.md")


if __name__ == "__main__":
    main()
