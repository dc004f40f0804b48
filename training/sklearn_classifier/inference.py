"""Serving module for the scikit-learn container: the pipeline train.py fitted, answering CSV rows of features
(no label) with the probability of label 1, one per line."""
from __future__ import annotations

import io
from pathlib import Path

import joblib
import numpy as np

CSV = "text/csv"


def model_fn(model_dir: str):
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body, content_type: str) -> np.ndarray:
    if content_type != CSV:
        raise ValueError(f"content type {content_type} is not supported; send {CSV}")
    text = body.decode() if isinstance(body, bytes) else body
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def predict_fn(data: np.ndarray, model) -> np.ndarray:
    return model.predict_proba(data)[:, 1]


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    return "".join(f"{float(p)!r}\n" for p in prediction), CSV
