"""Model quality on the seeded test set: predictions against the true labels the seeding step wrote."""
from __future__ import annotations

from sklearn.metrics import roc_auc_score

from offline.cloud import LocalCloud
from offline.s3_objects import split_s3


def evaluate(cloud: LocalCloud, output: dict) -> dict:
    """Accuracy (threshold 0.5) and ROC AUC of a finished run's batch-transform predictions."""
    bucket, prefix = split_s3(output["predictions"])
    labels = [int(v) for v in cloud.read(output["test_labels"]).split()]  # as the seeding step wrote them
    scores = [float(v) for key in cloud.keys(bucket, prefix) if key.endswith(".out")
              for v in cloud.read(f"s3://{bucket}/{key}").split()]
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} predictions for {len(labels)} test rows")
    accuracy = sum((score >= 0.5) == bool(label) for score, label in zip(scores, labels)) / len(labels)
    return {"test_rows": len(labels), "accuracy": round(accuracy, 4), "auc": round(roc_auc_score(labels, scores), 4)}
