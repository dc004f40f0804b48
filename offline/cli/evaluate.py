"""Model quality on a seeded test set: a run's batch-transform answers against the true labels the seeding step
wrote, measured by the kit's one metrics module."""
from __future__ import annotations

from offline.cloud.account import LocalCloud
from offline.runtimes.s3_objects import split_s3
from processing.metrics import evaluate as measure


def evaluate(cloud: LocalCloud, output: dict) -> dict:
    """Accuracy (threshold 0.5) and ROC AUC of a finished run's batch-transform answers (the seeded sets are
    binary, labels 0 and 1)."""
    bucket, prefix = split_s3(output["predictions"])
    labels = cloud.read(output["test_labels"]).decode()
    answers = "".join(cloud.read(f"s3://{bucket}/{key}").decode() for key in cloud.keys(bucket, prefix)
                      if key.endswith(".out"))
    quality = measure("binary", ["0", "1"], labels, answers)["binary_classification_metrics"]
    return {"test_rows": len(labels.split()), "accuracy": round(quality["accuracy"]["value"], 4),
            "auc": round(quality["auc"]["value"], 4)}
