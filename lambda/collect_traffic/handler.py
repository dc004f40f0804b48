"""Lambda handler: gather what the monitor checks in one window into this run's traffic/ folder.

The window is the `hours` whole hours ending at `window_end` (the schedule's time, rounded down to the hour; now
when absent), so consecutive scheduled runs check each captured hour once. The endpoint's current config names
the capture folder of the deployment serving now, and that deployment's record (runs/<run>/deployment/version.json
of the DeployApproved bucket) names the version and its baseline. Copies into runs/<run>/traffic/:
capture/ the window's data-capture files; ground-truth/ the ground truth uploaded under
ground-truth/yyyy/mm/dd/hh/ of the DeployApproved bucket (contract/run_layout.py) for the last LOOKBACK_HOURS hours (hh: the hour the predictions
were made, UTC); labelled/ the capture files of those hours, to join by inference id; window.json. The deployed
version's registered containers name its two archives (the preprocessing, the model) and whether the model is the
built-in XGBoost algorithm, whose feature attributions the monitor explains (processing/attribution.py).
"""
from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract import run_layout
from contract.serving import built_in_algorithm
from contract.times import utc_time

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
RECORD = run_layout.DEPLOYMENT_RECORD  # what DeployApproved's MonitorDeployment writes in the deployment's run folder
GROUND_TRUTH = run_layout.GROUND_TRUTH
LOOKBACK_HOURS = 24  # ground truth of predictions older than this is not joined any more
CAPTURE = run_layout.folder_uri_pattern(run_layout.CAPTURE)
HOUR = datetime.timedelta(hours=1)
PREPROCESSOR = run_layout.uri_pattern(run_layout.PREPROCESSOR)
MODEL = run_layout.uri_pattern(run_layout.MODEL)
BASELINE = run_layout.uri_pattern(run_layout.BASELINE)


def window(end: Any, hours: Any, now: datetime.datetime | None = None) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of the whole hours checked; refuses what is not a time or a number of hours."""
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24:
        raise ValueError(f"hours must be a whole number from 1 to 24, got {hours!r}")
    moment = (now or datetime.datetime.now(datetime.UTC)) if end is None else utc_time(end, "window_end")
    stop = moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    return stop - hours * HOUR, stop


def _hours(start: datetime.datetime, stop: datetime.datetime) -> list[str]:
    count = int((stop - start) / HOUR)
    return [f"{start + i * HOUR:%Y/%m/%d/%H}/" for i in range(count)]


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _copy(s3: Any, bucket: str, keys: list[str], strip: str, target: str) -> int:
    for key in keys:
        s3.copy_object(Bucket=os.environ["DATA_BUCKET"], Key=f"{target}{key[len(strip):]}",
                       CopySource={"Bucket": bucket, "Key": key})
    return len(keys)


def deployment(sagemaker: Any, s3: Any, endpoint: str) -> dict | None:
    """What serves now: the deployment record and where its traffic is captured; None without an endpoint."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:  # SageMaker answers a missing endpoint with a ValidationException
        if error.response["Error"]["Code"] == "ValidationException":
            return None
        raise
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    destination = (config.get("DataCaptureConfig") or {}).get("DestinationS3Uri", "")
    match = CAPTURE.fullmatch(destination)
    if not match or match["bucket"] != os.environ["DEPLOY_BUCKET"]:
        raise ValueError(f"endpoint {endpoint} runs config {described['EndpointConfigName']}, which does not "
                         f"capture into a run of s3://{os.environ['DEPLOY_BUCKET']}/ (got {destination!r}); "
                         "deploy the version with DeployApproved")
    try:
        body = s3.get_object(Bucket=match["bucket"], Key=f"{match['run']}{RECORD}")["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return {"record": None, "run": match["run"]}
        raise
    return {"record": json.loads(body), "run": match["run"],
            "variant": config["ProductionVariants"][0]["VariantName"], "status": described["EndpointStatus"]}


def served_model(sagemaker: Any, arn: str, statistics: str) -> dict:
    """The deployed version's archives as it registered them, where its baseline sample lies (the folder of its
    statistics), and whether its model is the built-in XGBoost algorithm (contract/serving.py).
    DeployApproved deploys only the kit's chain of two containers from one run of the build bucket
    (lambda/check_model_package); anything else is refused here too, as the monitor's job could not read it."""
    containers = sagemaker.describe_model_package(ModelPackageName=arn).get("InferenceSpecification", {}).get(
        "Containers", [])
    bucket = os.environ["BUILD_DATA_BUCKET"]
    urls = [c.get("ModelDataUrl", "") for c in containers]
    found = (PREPROCESSOR.fullmatch(urls[0]), MODEL.fullmatch(urls[1])) if len(urls) == 2 else (None, None)
    baseline = BASELINE.fullmatch(statistics)
    if not all(found) or not baseline or {m["bucket"] for m in (*found, baseline)} != {bucket}:
        raise ValueError(f"{arn} is not the kit's chain of a preprocessing and a model under runs/<run>/ of "
                         f"s3://{bucket}/ with its baseline there (containers {urls}, statistics {statistics!r}); "
                         "deploy a version BuildAndRegister registered")
    return {"preprocessor": urls[0], "model": urls[1], "sample": f"s3://{bucket}/{baseline['run']}{run_layout.BASELINE}/",
            "built_in_xgboost": built_in_algorithm(containers[1], os.environ["XGBOOST_IMAGE"])}


def handler(event: dict, context: Any, s3_client=None, sagemaker_client=None) -> dict:
    run = event.get("run_prefix")
    if not isinstance(run, str) or not run_layout.run_prefix_pattern().fullmatch(run):
        raise ValueError(f"run_prefix must be runs/<execution name>/, got {run!r}")
    start, stop = window(event.get("window_end"), event.get("hours"))
    span = {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{stop:%Y-%m-%dT%H:%M:%SZ}"}
    endpoint = os.environ["ENDPOINT_NAME"]
    s3, sagemaker = s3_client or boto3.client("s3"), sagemaker_client or boto3.client("sagemaker")
    serving = deployment(sagemaker, s3, endpoint)
    if serving is None:
        return {"outcome": "NoEndpoint", "window": span, "detail": f"endpoint {endpoint} does not exist"}
    if serving["record"] is None:
        return {"outcome": "NotHandedOver", "window": span,
                "detail": f"the deployment in {serving['run']} has not been handed to the monitor yet"}
    record, bucket = serving["record"], os.environ["DEPLOY_BUCKET"]
    captured = f"{serving['run']}{run_layout.CAPTURE}/{endpoint}/{serving['variant']}/"
    traffic = f"{run}{run_layout.TRAFFIC}/"
    files = sum(_copy(s3, bucket, _keys(s3, bucket, f"{captured}{hour}"), captured, f"{traffic}capture/")
                for hour in _hours(start, stop))
    labelled_hours = []
    for hour in _hours(stop - LOOKBACK_HOURS * HOUR, stop):
        truth = _keys(s3, bucket, f"{GROUND_TRUTH}{hour}")
        if truth:
            _copy(s3, bucket, truth, GROUND_TRUTH, f"{traffic}ground-truth/")
            _copy(s3, bucket, _keys(s3, bucket, f"{captured}{hour}"), captured, f"{traffic}labelled/")
            labelled_hours.append(hour.rstrip("/"))
    # Only a window the monitor's job analyzes needs the version's archives: a quiet one never describes it.
    outcome = "Traffic" if files else "LabelsOnly" if labelled_hours else "NoTraffic"
    model = (served_model(sagemaker, record["model_package_arn"], record["baseline"]["statistics"])
             if outcome != "NoTraffic" else None)
    summary = {**span, "endpoint": endpoint, "model_package_arn": record["model_package_arn"],
               "capture_files": files, "labelled_hours": labelled_hours,
               "model": model and {"built_in_xgboost": model["built_in_xgboost"]}}
    s3.put_object(Bucket=os.environ["DATA_BUCKET"], Key=f"{traffic}window.json", Body=json.dumps(summary).encode())
    LOGGER.info("traffic collected", extra={"window": summary})
    # A quiet window is still checked when ground truth arrived: model quality is scored on it.
    return {"outcome": outcome, "window": span, "capture_files": files,
            "labelled_hours": labelled_hours, "model_package_arn": record["model_package_arn"],
            "baseline": record["baseline"], "model": model, "traffic": f"s3://{os.environ['DATA_BUCKET']}/{traffic}"}
