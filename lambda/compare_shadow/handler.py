"""Lambda handler: DeployApproved's shadow test. Replays the production requests captured while the approved
version served beside production as the shadow variant (up to `rows` rows, oldest first, each request's text as it
was captured, with its InferenceId) to that variant, and decides whether the version replaces production:

- on the rows whose ground truth arrived (ground-truth/ of this stack's bucket, contract/run_layout.py), joined by
  inference id and row, when there are MIN_LABELLED of them: the version must do at least as well as production on
  the gate metric it registered;
- otherwise by agreement: the two must predict the same class (or, for regression, values within
  REGRESSION_AGREEMENT of each other, relative) on at least MIN_AGREEMENT of the rows.

No captured traffic, or a shadow that answers with errors, keeps production. The metric code is
processing/metrics.py, shipped beside this handler; the record formats are contract/capture.py's.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

import metrics
from contract import run_layout
from contract.capture import csv_rows, ground_truth, payload, request_id
from contract.times import utc_time

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
MIN_LABELLED = metrics.MIN_GROUP_ROWS  # a metric counts from this many rows: fewer, and chance decides
MIN_AGREEMENT, REGRESSION_AGREEMENT = 0.95, 0.05
CAPTURE = run_layout.folder_uri_pattern(run_layout.CAPTURE)
EVALUATION = run_layout.uri_pattern(run_layout.EVALUATION)
HOUR = datetime.timedelta(hours=1)


def hours(since: datetime.datetime, until: datetime.datetime) -> list[str]:
    """The yyyy/mm/dd/hh/ folders of every hour from `since` to `until`, both included."""
    start = since.replace(minute=0, second=0, microsecond=0)
    return [f"{start + i * HOUR:%Y/%m/%d/%H}/" for i in range(int((until - start) / HOUR) + 1)]


def _records(s3: Any, bucket: str, prefix: str) -> list[tuple[str, dict]]:
    """(file and line, record) of every JSON line under `prefix`, files in key order."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for key in sorted(item["Key"] for item in page.get("Contents", [])):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            for number, line in enumerate(body.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    found.append((f"s3://{bucket}/{key} line {number}", json.loads(line)))
                except ValueError as error:
                    raise ValueError(f"s3://{bucket}/{key} line {number} is not JSON: {error}") from None
    return found


def production_requests(s3: Any, bucket: str, folder: str, since: datetime.datetime, until: datetime.datetime,
                        rows: int) -> list[dict]:
    """The requests production answered from `since` (their text, id, and answer text), until `rows` rows. A
    capture's inferenceTime is in whole seconds: the second `since` falls in counts whole."""
    requests, count, since = [], 0, since.replace(microsecond=0)
    for hour in hours(since, until):
        for where, record in _records(s3, bucket, f"{folder}{hour}"):
            try:
                data, moment = record["captureData"], utc_time(record["eventMetadata"]["inferenceTime"], where)
                text, answer = payload(data["endpointInput"]), payload(data["endpointOutput"])
            except (KeyError, ValueError) as error:
                raise ValueError(f"{where} is not a data-capture record with input and output: {error}") from None
            rows_in = len(csv_rows(text))
            if moment < since or not rows_in:  # before the shadow, or a request without rows: nothing to compare
                continue
            requests.append({"id": request_id(record), "text": text, "answer": answer, "rows": rows_in})
            count += rows_in
            if count >= rows:
                return requests
    return requests


def labels_by_row(s3: Any, bucket: str, since: datetime.datetime, until: datetime.datetime) -> dict:
    """(inference id, row) -> label text, of the ground truth uploaded for these hours."""
    found = {}
    for hour in hours(since, until):
        for where, record in _records(s3, bucket, f"{run_layout.GROUND_TRUTH}{hour}"):
            try:
                request, values = ground_truth(record)
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"{where} is not a ground-truth record: {error}") from None
            found.update({(request, index): value for index, value in enumerate(values)})
    return found


def agreement(task: str, production: list, shadow: list) -> float:
    """The share of rows on which the two models' answers agree (a non-empty list of each)."""
    if task == "regression":
        same = [abs(a - b) <= REGRESSION_AGREEMENT * max(abs(a), abs(b), 1e-12) for a, b in zip(production, shadow)]
    else:
        same = [a == b for a, b in zip(metrics.predicted_classes(task, production),
                                       metrics.predicted_classes(task, shadow))]
    return sum(same) / len(same)


def verdict(evaluation: dict, production: list, shadow: list, truth: list, labelled: list[int]) -> dict:
    """Whether the shadow replaces production, and why, from both models' answers on the same rows."""
    task, classes, gate = evaluation["task"], evaluation["classes"], evaluation["gate"]
    agreed = agreement(task, production, shadow)
    rows = f"{len(production)} production rows ({len(labelled)} with ground truth); the two agree on {agreed:.1%}"
    metric, higher = gate["metric"], metrics.task_of(task).metrics[gate["metric"]] == metrics.HIGHER
    measured = f"fewer than {MIN_LABELLED} rows have ground truth"
    try:
        on = [metrics.measure(task, classes, truth, [answers[i] for i in labelled], [metric])[metric]
              for answers in (production, shadow)] if len(labelled) >= MIN_LABELLED else None
    except (ValueError, ZeroDivisionError) as error:  # a metric these labels cannot give (an AUC of one class)
        on, measured = None, f"the ground truth cannot give {metric} ({error})"
    if on is not None:
        promote = on[1] >= on[0] if higher else on[1] <= on[0]
        why = (f"on ground truth its {metric} is {on[1]:.6g} against production's {on[0]:.6g}"
               f" ({'at least as good' if promote else 'worse'})")
        return {"promote": promote, "rows": len(production), "labelled": len(labelled), "agreement": agreed,
                "metric": metric, "production": on[0], "shadow": on[1],
                "summary": f"{'promoted' if promote else 'production kept'}: {why}; {rows}."}
    promote = agreed >= MIN_AGREEMENT
    return {"promote": promote, "rows": len(production), "labelled": len(labelled), "agreement": agreed,
            "summary": f"{'promoted' if promote else 'production kept'}: {measured}, and the versions agree on "
                       f"{agreed:.1%} of {len(production)} production rows (at "
                       f"least {MIN_AGREEMENT:.0%} promotes); {len(labelled)} rows had ground truth."}


def handler(event: dict, context: Any, s3_client=None, runtime_client=None, now: datetime.datetime | None = None) -> dict:
    bucket, endpoint = os.environ["DATA_BUCKET"], os.environ["ENDPOINT_NAME"]
    capture = CAPTURE.fullmatch(str(event.get("capture")))
    if not capture or capture["bucket"] != bucket:
        raise ValueError(f"capture must be a run's capture folder in s3://{bucket}/, got {event.get('capture')!r}")
    found = EVALUATION.fullmatch(str(event.get("evaluation")))
    if not found or found["bucket"] != os.environ["BUILD_DATA_BUCKET"]:
        raise ValueError(f"evaluation must be a run's evaluation in s3://{os.environ['BUILD_DATA_BUCKET']}/, got "
                         f"{event.get('evaluation')!r}")
    since, until = utc_time(event.get("since"), "since"), now or datetime.datetime.now(datetime.UTC)
    s3, runtime = s3_client or boto3.client("s3"), runtime_client or boto3.client("sagemaker-runtime")
    evaluation = json.loads(s3.get_object(Bucket=found["bucket"], Key=found["key"])["Body"].read())
    task, classes = evaluation["task"], evaluation["classes"]
    folder = f"{capture['run']}{run_layout.CAPTURE}/{endpoint}/{os.environ['PRODUCTION_VARIANT']}/"
    requests = production_requests(s3, bucket, folder, since, until, int(event["rows"]))
    if not requests:
        return {"promote": False, "rows": 0, "summary": "production kept: no production traffic was captured while "
                                                        "the version served as the shadow."}
    labels, production, shadow, truth, labelled = labels_by_row(s3, bucket, since, until), [], [], [], []
    for request in requests:
        try:
            answered = runtime.invoke_endpoint(
                EndpointName=endpoint, TargetVariant=os.environ["SHADOW_VARIANT"], ContentType="text/csv",
                Accept="text/csv", InferenceId=request["id"], Body=request["text"].encode())["Body"].read().decode()
        except ClientError as error:
            return {"promote": False, "rows": len(production), "summary": f"production kept: the shadow answered "
                    f"request {request['id']} with an error ({error.response['Error'].get('Message')})."}
        source = f"{endpoint}'s answer to request {request['id']}"
        ours = metrics.parse_answers(task, classes, request["answer"], f"production's {source}")
        theirs = metrics.parse_answers(task, classes, answered, f"the shadow's {source}")
        if not len(ours) == len(theirs) == request["rows"]:
            raise ValueError(f"{source}: {request['rows']} rows answered with {len(ours)} lines by production and "
                             f"{len(theirs)} by the shadow; the model contract is one line per row")
        for index in range(request["rows"]):
            if (request["id"], index) in labels:
                labelled.append(len(production) + index)
                truth.append(labels[(request["id"], index)])
        production += ours
        shadow += theirs
    result = verdict(evaluation, production, shadow, metrics.parse_labels(task, classes, "\n".join(truth),
                                                                        "the ground truth") if truth else [], labelled)
    LOGGER.info("shadow test", extra={"result": result})
    return result
