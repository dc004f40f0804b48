"""SageMaker Processing script (runs in the XGBoost container): score a trained model on the held-out test set.

Reads model.tar.gz from /opt/ml/processing/model, the test features (CSV, no header) from
/opt/ml/processing/test and the line-aligned true labels from /opt/ml/processing/labels; writes
evaluation.json in SageMaker Model Registry's model-quality format (binary classification: accuracy, AUC,
precision, recall, F1, confusion matrix) to /opt/ml/processing/evaluation, with the distribution of the
model's test-set scores (`predictions`: percentiles 0-100 and a histogram), the baseline the monitor compares
the endpoint's answers with. Runs on a laptop with the same folders given as --root (numpy and xgboost only, as
in the container).
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

THRESHOLD = 0.5


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the probability that a positive outscores a negative (ties count half)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if not len(positives) or not len(negatives):
        raise ValueError("the test set needs both labels to compute an AUC")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


def metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    predicted = (scores >= THRESHOLD).astype(int)
    tp, tn = int(((predicted == 1) & (labels == 1)).sum()), int(((predicted == 0) & (labels == 0)).sum())
    fp, fn = int(((predicted == 1) & (labels == 0)).sum()), int(((predicted == 0) & (labels == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    value = lambda v: {"value": round(float(v), 6), "standard_deviation": "NaN"}  # noqa: E731
    return {"binary_classification_metrics": {
        "accuracy": value((tp + tn) / len(labels)), "auc": value(auc(labels, scores)),
        "precision": value(precision), "recall": value(recall), "f1": value(f1),
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}}}}


def score_distribution(scores: np.ndarray) -> dict:
    """The test-set scores as the monitor reads a numeric baseline (processing/baseline.py's shape): scores
    are probabilities, so the histogram has ten bins over [0, 1]."""
    counts, edges = np.histogram(scores, bins=10, range=(0.0, 1.0))
    # Exact percentiles: rounded ones would move the distribution function (at many equal scores, a score a
    # hair below its rounded percentile falls outside it, and the KS test sees drift that is not there).
    return {"count": int(len(scores)), "percentiles": [float(v) for v in np.percentile(scores, np.arange(101))],
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}}


def read_csv(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"no files in {folder}")
    return np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/opt/ml/processing", help="folder holding model/, test/, labels/")
    root = Path(parser.parse_args(argv).root)
    import xgboost  # the container's

    try:
        with tarfile.open(next((root / "model").rglob("model.tar.gz"))) as archive:
            booster = xgboost.Booster()
            booster.load_model(bytearray(archive.extractfile("xgboost-model").read()))
        features, labels = read_csv(root / "test"), read_csv(root / "labels")[:, 0]
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} test rows but {len(labels)} labels")
        scores = booster.predict(xgboost.DMatrix(features))
        report = {**metrics(labels.astype(int), scores), "predictions": score_distribution(scores)}
    except (StopIteration, KeyError, ValueError) as error:
        print(f"evaluate_model: {error or 'no model.tar.gz under model/'}", file=sys.stderr)
        return 1
    (root / "evaluation").mkdir(parents=True, exist_ok=True)
    (root / "evaluation" / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["binary_classification_metrics"]["auc"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
