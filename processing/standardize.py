"""Standardize features, x' = (x - mean) / std, fitted on the training split only, and serve that same step.

As a SageMaker Processing script: reads train.csv and validation.csv (header row, label first, then features) and
test.csv (features only, no header: the rows a client sends) from --input-dir. Writes SageMaker XGBoost-ready CSVs
(no header, label first) to <output-dir>/{train,validation,test}/, the fitted parameters to
<output-dir>/params/standardization.json, and the fitted step as a model the scikit-learn serving container runs
(<output-dir>/preprocessor/model.tar.gz: the parameters and this file as code/standardize.py). Runs the same way on
a laptop: python standardize.py --input-dir raw/ --output-dir processed/

As the serving module of that model (the scikit-learn container's contract: model_fn, input_fn, predict_fn,
output_fn), it answers raw CSV rows with the standardized rows, written exactly as the processing step wrote the
training data, so the next container of the inference pipeline (XGBoost) scores what evaluation scored.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "label"
SPLITS = ("train", "validation", "test")
PARAMETERS = "standardization.json"
SERVING_MODULE = "standardize.py"  # the name SAGEMAKER_PROGRAM gives this file in the served model
CSV = "text/csv"


class BadInput(Exception):
    """The input data cannot be standardized; the message says why."""


def read_split(input_dir: Path, split: str, features: list[str] | None) -> pd.DataFrame:
    path = input_dir / f"{split}.csv"
    if not path.is_file():
        raise BadInput(f"missing input file {path}")
    try:  # the test split is the serving form: no header, the training split's features in order
        frame = (pd.read_csv(path, header=None, names=features, index_col=False) if split == "test"
                 else pd.read_csv(path))
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path} is empty") from None
    expected = ([] if split == "test" else [LABEL]) + (features or [])
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise BadInput(f"{path} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise BadInput(f"{path} has no rows")
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise BadInput(f"{path} has non-numeric values in column(s) {', '.join(non_numeric)}")
    if frame.isna().any().any():
        raise BadInput(f"{path} has empty cells")
    return frame


def fit(train: pd.DataFrame, features: list[str]) -> dict:
    """Mean and standard deviation (population, as scikit-learn's StandardScaler) of each training feature."""
    values = train[features].to_numpy(dtype=float)
    std = values.std(axis=0)
    constant = [f for f, deviation in zip(features, std) if deviation == 0]
    if constant:
        raise BadInput(f"feature(s) {', '.join(constant)} have zero variance in the training split")
    return {"features": features, "mean": dict(zip(features, map(float, values.mean(axis=0)))),
            "std": dict(zip(features, map(float, std))), "fitted_on": "train"}


def apply_parameters(parameters: dict, values: np.ndarray) -> np.ndarray:
    """Standardize rows of feature values (in the parameters' feature order) with saved parameters."""
    features = parameters["features"]
    mean = np.array([parameters["mean"][f] for f in features])
    std = np.array([parameters["std"][f] for f in features])
    return (values - mean) / std


def csv_text(frame: pd.DataFrame) -> str:
    """Rows as CSV without header or index, each float in its shortest exact form: one format for the training
    data and for what the served model passes on."""
    return frame.to_csv(header=False, index=False, lineterminator="\n")


def package(parameters: dict, target: Path) -> None:
    """The fitted step as a model archive: the parameters, and this file as the serving code (byte-stable)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    files = {PARAMETERS: (json.dumps(parameters, indent=2) + "\n").encode(),
             f"code/{SERVING_MODULE}": Path(__file__).read_bytes()}
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, body in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            archive.addfile(info, io.BytesIO(body))


def standardize(input_dir: Path, output_dir: Path) -> dict:
    train = read_split(input_dir, "train", None)
    features = [column for column in train.columns if column != LABEL]
    if not features:
        raise BadInput(f"{input_dir / 'train.csv'} needs at least one feature column besides '{LABEL}'")
    frames = {"train": train, **{split: read_split(input_dir, split, features) for split in SPLITS[1:]}}
    parameters = fit(train, features)
    for split, frame in frames.items():
        scaled = pd.DataFrame(apply_parameters(parameters, frame[features].to_numpy(dtype=float)), columns=features)
        if split != "test":
            scaled.insert(0, LABEL, frame[LABEL].to_numpy())
        target = output_dir / split
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{split}.csv").write_text(csv_text(scaled))
    parameters["rows"] = {split: int(len(frame)) for split, frame in frames.items()}
    (output_dir / "params").mkdir(parents=True, exist_ok=True)
    (output_dir / "params" / PARAMETERS).write_text(json.dumps(parameters, indent=2) + "\n")
    package(parameters, output_dir / "preprocessor" / "model.tar.gz")
    return parameters


# -- serving: the scikit-learn container's inference contract ---------------------------------------------
def model_fn(model_dir: str) -> dict:
    return json.loads((Path(model_dir) / PARAMETERS).read_text())


def input_fn(body: str | bytes, content_type: str) -> np.ndarray:
    """Raw CSV rows (no header, no label) as numbers; a row of the wrong width or a non-number is refused."""
    if content_type != CSV:
        raise ValueError(f"content type {content_type} is not supported; send {CSV} rows")
    text = body.decode() if isinstance(body, bytes) else body
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    try:
        values = np.array([[float(value) for value in row] for row in rows], dtype=float, ndmin=2)
    except ValueError as error:  # also rows of unequal width
        raise ValueError(f"rows must be numbers only, comma-separated: {error}") from None
    if not np.isfinite(values).all():
        raise ValueError("rows must hold finite numbers (no empty, nan or inf values)")
    return values


def predict_fn(data: np.ndarray, parameters: dict) -> np.ndarray:
    if data.shape[1] != len(parameters["features"]):
        raise ValueError(f"each row needs {len(parameters['features'])} values "
                         f"({','.join(parameters['features'])}), got {data.shape[1]}")
    return apply_parameters(parameters, data)


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    """CSV whatever the Accept: the next container of the pipeline reads CSV."""
    return csv_text(pd.DataFrame(prediction)), CSV


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
