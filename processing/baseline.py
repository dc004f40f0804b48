"""SageMaker Processing script (runs in the scikit-learn container): the drift-check baseline of the raw training data.

Reads train.csv (header row, the label column and the raw features, as the endpoint receives them without the
label) from --input-dir; writes to --output-dir:
- statistics.json: per feature, its type (numeric or categorical), count and missing rate; for numbers min, max,
  mean, std, the 101 percentiles (0, 1, ..., 100) and a 10-bin histogram; for categories their frequencies;
- constraints.json: what the monitor checks traffic against: each feature's type, allowed range or categories
  and the largest missing rate seen in training;
- sample.csv: SAMPLE_ROWS training rows drawn at random (seeded), without the label or a header, each value as
  written: the rows the monitor explains to compare the model's feature attributions with (processing/attribution.py).
The monitor (processing/monitor.py) compares captured traffic with these two files. Runs on a laptop too:
python baseline.py --input-dir raw/ --output-dir baseline/
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from contract.data import BadInput

FORMAT_VERSION = 1
BINS = 10
SAMPLE_ROWS, SAMPLE_SEED = 2000, 0


IGNORED = "ignored"  # a column the model drops: in the baseline by name only, never checked


def numeric_summary(values: np.ndarray) -> dict:
    """Percentiles and a histogram of the values present (at least one): the shape the monitor compares with."""
    low, high = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=BINS, range=(low, high) if high > low else (low - 0.5, high + 0.5))
    return {"min": low, "max": high, "mean": float(values.mean()), "std": float(values.std()),
            "percentiles": [float(v) for v in np.percentile(values, np.arange(101))],
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}}


def feature_statistics(column: pd.Series) -> dict:
    present = column.dropna()
    if present.empty:
        raise BadInput(f"feature {column.name!r} has no values in the training data")
    numbers = pd.to_numeric(present, errors="coerce")
    summary = {"name": str(column.name), "count": int(len(column)), "missing": int(column.isna().sum()),
               "missing_rate": float(column.isna().mean())}
    if numbers.notna().all():
        return {**summary, "type": "numeric", **numeric_summary(numbers.to_numpy(dtype=float))}
    frequencies = present.astype(str).value_counts(normalize=True).sort_index()
    return {**summary, "type": "categorical", "frequencies": {k: float(v) for k, v in frequencies.items()}}


def constraint(feature: dict) -> dict:
    """The checks the monitor applies to traffic: values in the trained range or categories, missing rate."""
    if feature["type"] == IGNORED:
        return {"name": feature["name"], "type": IGNORED}
    limits = ({"min": feature["min"], "max": feature["max"]} if feature["type"] == "numeric"
              else {"categories": sorted(feature["frequencies"])})
    return {"name": feature["name"], "type": feature["type"], "max_missing_rate": feature["missing_rate"], **limits}


def baseline(frame: pd.DataFrame, label: str, ignored: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Every column but the label, in order (the monitor reads traffic by position); the `ignored` ones (the
    model's dropped columns: ids, free text) only by name, since the model never sees them."""
    if label not in frame.columns:
        raise BadInput(f"the training data has no {label!r} column (columns: {', '.join(frame.columns)})")
    features = [{"name": str(c), "type": IGNORED} if c in ignored else feature_statistics(frame[c])
                for c in frame.columns if c != label]
    if not features:
        raise BadInput("the training data has no feature columns besides the label")
    statistics = {"version": FORMAT_VERSION, "rows": int(len(frame)), "label": label, "features": features}
    return statistics, {"version": FORMAT_VERSION, "features": [constraint(f) for f in features]}


def sample(path: Path, label: str, rows: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> list[list[str]]:
    """`rows` rows of a CSV file with a header, drawn uniformly at random in one pass (reservoir sampling, seeded),
    in file order, without the label; every row when there are fewer."""
    rng, chosen = random.Random(seed), []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        position = next(reader).index(label)
        for seen, values in enumerate(reader):
            row = (seen, values[:position] + values[position + 1:])
            if seen < rows:
                chosen.append(row)
            else:
                slot = rng.randrange(seen + 1)
                if slot < rows:
                    chosen[slot] = row
    return [values for _, values in sorted(chosen)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, required=True, help="folder holding train.csv (with a header)")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--label", default="label", help="the label column, left out of the baseline")
    parser.add_argument("--ignore", default="none", help="columns the model drops, comma-separated (or none)")
    args = parser.parse_args(argv)
    ignored = () if args.ignore == "none" else tuple(args.ignore.split(","))
    path = args.input_dir / "train.csv"
    try:
        if not path.is_file():
            raise BadInput(f"missing input file {path}")
        statistics, constraints = baseline(pd.read_csv(path), args.label, ignored)
    except (BadInput, pd.errors.EmptyDataError) as error:
        print(f"baseline: {error}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "statistics.json").write_text(json.dumps(statistics, indent=1))
    (args.output_dir / "constraints.json").write_text(json.dumps(constraints, indent=1))
    with open(args.output_dir / "sample.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(sample(path, args.label))
    print(f"baseline of {statistics['rows']} rows, {len(statistics['features'])} features")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
