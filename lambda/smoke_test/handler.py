"""Lambda handler: score a model version's registered test rows on the endpoint and compare accuracy and AUC with
the metrics registered for it."""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

import boto3

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
BATCH_ROWS = 200  # well under InvokeEndpoint's 6 MB request limit for the kit's numeric CSV rows
THRESHOLD = 0.5  # as at registration (processing/evaluate_model.py)
LABELS = {"accuracy": "accuracy", "auc": "AUC"}
S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>runs/[^/]+/.+)$")


def _location(name: str, uri: Any, bucket: str) -> tuple[str, str]:
    match = S3_URI.match(uri) if isinstance(uri, str) else None
    if not match or match["bucket"] != bucket:
        raise ValueError(f"{name} must be under runs/ of s3://{bucket}, got {uri!r}")
    return match["bucket"], match["key"]


def auc(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC from ranks (ties share their average rank); None when one class is missing."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for index in order[start:end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    positive_ranks = sum(rank for rank, label in zip(ranks, labels) if label == 1)
    return (positive_ranks - positives * (positives + 1) / 2) / (positives * negatives)


def compare(labels: list[int], scores: list[float], registered: dict, tolerance: float) -> dict:
    """Whether the endpoint's accuracy and AUC on these rows are within `tolerance` of the registered ones."""
    accuracy = sum((score >= THRESHOLD) == bool(label) for label, score in zip(labels, scores)) / len(labels)
    measured = {"accuracy": accuracy, "auc": auc(labels, scores)}
    gaps = {name: abs(value - registered[name]) for name, value in measured.items() if value is not None}
    passed = all(gap <= tolerance for gap in gaps.values())
    shown = ", ".join(f"{LABELS[name]} {measured[name]:.4f} (registered {registered[name]:.4f})" for name in gaps)
    summary = (f"Smoke test {'passed' if passed else 'FAILED'} on {len(labels)} registered test rows: {shown}; "
               f"tolerance {tolerance:g}.")
    return {"passed": passed, "rows": len(labels), "measured": measured, "registered": registered,
            "summary": summary}


def _lines(s3: Any, bucket: str, key: str, limit: int) -> list[str]:
    """The first `limit` non-empty lines of the object at `key`, or of the objects under it (a folder)."""
    keys = [key] if not key.endswith("/") else sorted(
        item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    lines: list[str] = []
    for object_key in keys:
        body = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read().decode()
        lines += [line for line in body.splitlines() if line.strip()]
        if len(lines) >= limit:
            break
    return lines[:limit]


def _scores(runtime: Any, endpoint: str, rows: list[str]) -> list[float]:
    scores: list[float] = []
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start:start + BATCH_ROWS]
        body = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv",
                                       Body="\n".join(batch).encode())["Body"].read().decode()
        answered = [float(value) for value in re.split(r"[,\s]+", body.strip()) if value]
        if len(answered) != len(batch):
            raise ValueError(f"{endpoint} answered {len(answered)} scores for {len(batch)} rows")
        scores += answered
    return scores


def handler(event: dict, context: Any, s3_client=None, runtime_client=None) -> dict:
    bucket, endpoint = os.environ["BUILD_DATA_BUCKET"], os.environ["ENDPOINT_NAME"]
    rows, tolerance = int(event["rows"]), float(event["tolerance"])
    s3 = s3_client or boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=bucket, Key=_location("evaluation", event.get("evaluation"), bucket)[1])
                        ["Body"].read())["binary_classification_metrics"]
    registered = {name: float(report[name]["value"]) for name in ("accuracy", "auc")}
    features = _lines(s3, bucket, _location("test_data", event.get("test_data"), bucket)[1], rows)
    labels = [int(float(line.split(",")[0])) for line in
              _lines(s3, bucket, _location("test_labels", event.get("test_labels"), bucket)[1], rows)]
    if not features or len(features) != len(labels):
        raise ValueError(f"the registered test set has {len(features)} rows and {len(labels)} labels")
    result = compare(labels, _scores(runtime_client or boto3.client("sagemaker-runtime"), endpoint, features),
                     registered, tolerance)
    LOGGER.info("smoke test", extra={"result": result})
    return result
