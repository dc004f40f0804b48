"""Lambda handler: score a model version's registered raw test rows on the endpoint and compare its gate metric
with the value registered for it. The metric code is processing/metrics.py, shipped beside this handler."""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3

import metrics
from contract import run_layout

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
# A request holds up to this many rows and bytes: under InvokeEndpoint's 6 MB payload limit with room to spare.
BATCH_ROWS, BATCH_BYTES = 200, 5_000_000
S3_URI = run_layout.uri_pattern()  # any object of a run


def _location(name: str, uri: Any, bucket: str) -> tuple[str, str]:
    match = S3_URI.fullmatch(uri) if isinstance(uri, str) else None
    if not match or match["bucket"] != bucket:
        raise ValueError(f"{name} must be under runs/ of s3://{bucket}, got {uri!r}")
    return match["bucket"], match["key"]


def compare(evaluation: dict, labels: list, answers: list, tolerance: float) -> dict:
    """Whether the gate metric on these answers is within `tolerance` of the registered value."""
    task, classes, verdict = evaluation["task"], evaluation["classes"], evaluation["gate"]
    metric, registered = verdict["metric"], float(verdict["value"])
    rows = f"Smoke test {{}} on {len(labels)} registered test rows"
    try:
        measured = metrics.measure(task, classes, labels, answers, [metric])[metric]
    except metrics.BadInput as error:  # e.g. too few rows to hold every class: this check cannot pass
        return {"passed": False, "rows": len(labels), "metric": metric, "measured": None, "registered": registered,
                "tolerance": tolerance, "summary": f"{rows.format('FAILED')}: {metric} cannot be measured ({error})."}
    passed = abs(measured - registered) <= tolerance
    return {"passed": passed, "rows": len(labels), "metric": metric, "measured": measured, "registered": registered,
            "tolerance": tolerance,
            "summary": f"{rows.format('passed' if passed else 'FAILED')}: {metric} {measured:.6g} (registered "
                       f"{registered:.6g}); tolerance {tolerance:g}."}


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


def _batches(rows: list[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    size = 0
    for row in rows:
        if not batches or len(batches[-1]) == BATCH_ROWS or size + len(row.encode()) + 1 > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += len(row.encode()) + 1
    return batches


def _answers(runtime: Any, endpoint: str, rows: list[str], task: str, classes: list | None) -> list:
    answers: list = []
    for batch in _batches(rows):
        body = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv",
                                       Body="\n".join(batch).encode())["Body"].read().decode()
        source = f"{endpoint}'s answer to rows {len(answers) + 1}-{len(answers) + len(batch)}"
        answered = metrics.parse_answers(task, classes, body, source)
        if len(answered) != len(batch):
            raise ValueError(f"{source} has {len(answered)} lines; the model contract is one line per row")
        answers += answered
    return answers


def handler(event: dict, context: Any, s3_client=None, runtime_client=None) -> dict:
    bucket, endpoint = os.environ["BUILD_DATA_BUCKET"], os.environ["ENDPOINT_NAME"]
    rows, tolerance = int(event["rows"]), float(event["tolerance"])
    s3 = s3_client or boto3.client("s3")
    evaluation = json.loads(s3.get_object(Bucket=bucket, Key=_location("evaluation", event.get("evaluation"), bucket)[1])
                            ["Body"].read())
    task, classes = evaluation["task"], evaluation["classes"]
    features = _lines(s3, bucket, _location("test_data", event.get("test_data"), bucket)[1], rows)
    labels_at = event.get("test_labels")
    labels = metrics.parse_labels(task, classes, "\n".join(_lines(s3, bucket, _location("test_labels", labels_at,
                                                                                     bucket)[1], rows)), labels_at)
    if not features or len(features) != len(labels):
        raise ValueError(f"the registered test set has {len(features)} rows and {len(labels)} labels")
    result = compare(evaluation, labels, _answers(runtime_client or boto3.client("sagemaker-runtime"), endpoint,
                                                  features, task, classes), tolerance)
    LOGGER.info("smoke test", extra={"result": result})
    return result
