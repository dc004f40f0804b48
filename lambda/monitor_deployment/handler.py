"""Lambda handler: hand an accepted deployment to the monitor, and say whether the monitor is in place.

Writes runs/<run>/deployment/version.json (the version, its drift-check baseline and where its traffic is
captured) into this stack's bucket; the monitoring workflow finds it from the endpoint config's capture folder,
so what it checks always matches what serves (after a rollback too). Then reads the monitor's schedule: a
deployment is "monitored" only when that schedule exists and is enabled; otherwise MonitoringNotInPlace.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract import run_layout

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
RECORD = run_layout.DEPLOYMENT_RECORD  # under the run's folder; the monitor reads it (stacks/workflows/monitor_endpoint.py)
BASELINES = ("statistics", "constraints", "evaluation")


class MonitoringNotInPlace(Exception):
    """The monitor's schedule is missing or disabled: the endpoint serves, unmonitored."""


def record(event: dict) -> dict:
    """The deployment record, refusing an event without what the monitor needs."""
    run, package = event.get("run_prefix"), event.get("package") or {}
    if not isinstance(run, str) or not run_layout.run_prefix_pattern().fullmatch(run):
        raise ValueError(f"run_prefix must be runs/<execution name>/, got {run!r}")
    missing = [name for name in ("arn", *BASELINES) if not isinstance(package.get(name), str)]
    if missing:
        raise ValueError(f"package lacks {', '.join(missing)}, which the monitor needs")
    return {"model_package_arn": package["arn"], "endpoint": os.environ["ENDPOINT_NAME"],
            "baseline": {name: package[name] for name in BASELINES},
            "capture": f"s3://{os.environ['DATA_BUCKET']}/{run}{run_layout.CAPTURE}", "execution": event.get("execution")}


def handler(event: dict, context: Any, s3_client=None, scheduler_client=None) -> dict:
    deployment = record(event)
    key = f"{event['run_prefix']}{RECORD}"
    (s3_client or boto3.client("s3")).put_object(Bucket=os.environ["DATA_BUCKET"], Key=key,
                                                 Body=json.dumps(deployment, indent=1).encode(),
                                                 ContentType="application/json")
    name = os.environ["MONITOR_SCHEDULE"]
    try:
        schedule = (scheduler_client or boto3.client("scheduler")).get_schedule(Name=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise MonitoringNotInPlace(f"schedule {name} does not exist: deploy the MonitorEndpoint stack of this "
                                       "copy to monitor the endpoint") from None
        raise
    if schedule.get("State") != "ENABLED":
        raise MonitoringNotInPlace(f"schedule {name} is {schedule.get('State')}: enable it to monitor the endpoint")
    LOGGER.info("deployment handed to the monitor", extra={"record": key, "schedule": name})
    return {"schedule": name, "expression": schedule["ScheduleExpression"],
            "record": f"s3://{os.environ['DATA_BUCKET']}/{key}"}
