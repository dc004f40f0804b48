"""Serving module for the scikit-learn container: the pipeline train.py fitted, answering CSV rows of features
(no label) as the kit's model contract says: binary, the probability of the second class; multiclass, one
probability per class in class order; regression, the predicted value; one line per row."""
from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import numpy as np

CSV = "text/csv"


def model_fn(model_dir: str):
    task_file = Path(model_dir) / "task.json"
    task = json.loads(task_file.read_text())["task"] if task_file.is_file() else "binary"
    return task, joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body, content_type: str) -> np.ndarray:
    if content_type != CSV:
        raise ValueError(f"content type {content_type} is not supported; send {CSV}")
    text = body.decode() if isinstance(body, bytes) else body
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def predict_fn(data: np.ndarray, model) -> np.ndarray:
    task, pipeline = model
    if task == "regression":
        return pipeline.predict(data)
    probabilities = pipeline.predict_proba(data)
    return probabilities[:, 1] if task == "binary" else probabilities


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    rows = prediction.reshape(len(prediction), -1)
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows), CSV
