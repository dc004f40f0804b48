"""Lambda handler: read a run's evaluation (processing/metrics.py's evaluation.json, shipped beside this handler)
for the gate and the notification: the task, the gate's verdict and the task's scalar metrics."""
from __future__ import annotations

import json
import os
from typing import Any

import boto3

from contract import run_layout
from metrics import BY_TASK

EVALUATION = run_layout.uri_pattern(run_layout.EVALUATION, "evaluation.json")


def handler(event: dict, context: Any, s3_client=None) -> dict:
    uri = event.get("evaluation_uri", "")
    match = EVALUATION.fullmatch(uri)
    if not match or match["bucket"] != os.environ["DATA_BUCKET"]:
        raise ValueError(f"evaluation_uri must be a run's evaluation/evaluation.json in this stack's bucket, got {uri!r}")
    s3 = s3_client or boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=match["bucket"], Key=match["key"])["Body"].read())
    task = BY_TASK[report["task"]]
    return {"task": report["task"], "gate": report["gate"],
            "metrics": {name: report[task.registry_key][name]["value"] for name in task.metrics}}
