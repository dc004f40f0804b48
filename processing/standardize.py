"""SageMaker Processing script: standardize features, x' = (x - mean) / std, fitted on the training split only.

Reads train.csv and validation.csv (label first, then features) and test.csv (features only), all with
a header row, from --input-dir. Writes SageMaker XGBoost-ready CSVs (no header, label first) to
<output-dir>/{train,validation,test}/ and the fitted parameters to <output-dir>/params/standardization.json.
Runs the same way on a laptop: python standardize.py --input-dir raw/ --output-dir processed/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

LABEL = "label"
SPLITS = ("train", "validation", "test")


class BadInput(Exception):
    """The input data cannot be standardized; the message says why."""


def read_split(input_dir: Path, split: str, features: list[str] | None) -> pd.DataFrame:
    path = input_dir / f"{split}.csv"
    if not path.is_file():
        raise BadInput(f"missing input file {path}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path} is empty") from None
    expected = ([] if split == "test" else [LABEL]) + (features or [])
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise BadInput(f"{path} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise BadInput(f"{path} has a header but no rows")
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise BadInput(f"{path} has non-numeric values in column(s) {', '.join(non_numeric)}")
    if frame.isna().any().any():
        raise BadInput(f"{path} has empty cells")
    return frame


def standardize(input_dir: Path, output_dir: Path) -> dict:
    train = read_split(input_dir, "train", None)
    features = [column for column in train.columns if column != LABEL]
    if not features:
        raise BadInput(f"{input_dir / 'train.csv'} needs at least one feature column besides '{LABEL}'")
    frames = {"train": train, **{split: read_split(input_dir, split, features) for split in SPLITS[1:]}}

    scaler = StandardScaler().fit(train[features].to_numpy(dtype=float))
    constant = [f for f, variance in zip(features, scaler.var_) if variance == 0]
    if constant:
        raise BadInput(f"feature(s) {', '.join(constant)} have zero variance in the training split")

    for split, frame in frames.items():
        scaled = pd.DataFrame(scaler.transform(frame[features].to_numpy(dtype=float)), columns=features)
        if split != "test":
            scaled.insert(0, LABEL, frame[LABEL].to_numpy())
        target = output_dir / split
        target.mkdir(parents=True, exist_ok=True)
        scaled.to_csv(target / f"{split}.csv", header=False, index=False)

    parameters = {
        "features": features,
        "mean": dict(zip(features, map(float, scaler.mean_))),
        "std": dict(zip(features, map(float, scaler.scale_))),
        "fitted_on": "train",
        "rows": {split: int(len(frame)) for split, frame in frames.items()},
    }
    (output_dir / "params").mkdir(parents=True, exist_ok=True)
    (output_dir / "params" / "standardization.json").write_text(json.dumps(parameters, indent=2) + "\n")
    return parameters


def apply_parameters(parameters: dict, frame: pd.DataFrame) -> np.ndarray:
    """Standardize features with saved parameters, as a consumer of the artifact would."""
    features = parameters["features"]
    mean = np.array([parameters["mean"][f] for f in features])
    std = np.array([parameters["std"][f] for f in features])
    return (frame[features].to_numpy(dtype=float) - mean) / std


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    args = parser.parse_args(argv)
    try:
        parameters = standardize(args.input_dir, args.output_dir)
    except BadInput as error:
        print(f"standardize: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"standardized": parameters["rows"], "features": parameters["features"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
