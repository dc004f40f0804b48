"""Lambda handler: when an execution ends without success, stop every SageMaker job it started that still runs,
delete the endpoint it created (with DELETES_CREATED_ENDPOINTS) and release the event claim it took (with
CLAIMS_BUCKET), so the same cause can start a run that succeeds.

Step Functions does not stop a `.sync` job when its task times out, is retried, or fails in a way that leaves
the job running, so an EventBridge rule on the execution's end invokes this function. It reads the execution's
history for the jobs its `.sync` tasks scheduled (each attempt named its own) and stops those still in progress.
An endpoint bills every hour: one the execution created and did not hand to the monitor is deleted once it has
settled, if it still runs the config that execution gave it (a later deployment's endpoint is left alone). An
endpoint the execution left serving its shadow test (an instance more, and later deployments refused) goes back
to the production config the test started from, under the same condition.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Iterator

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

from contract.claims import claim_key

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
RUNNING = ("InProgress",)


def scheduled_jobs(events: list[dict], sync_jobs: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(job noun, job name) for each SageMaker `.sync` task attempt in an execution's history, in order."""
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if not details or details.get("resourceType") != "sagemaker" or details.get("resource") not in sync_jobs:
            continue
        noun = sync_jobs[details["resource"]]
        name = json.loads(details.get("parameters") or "{}").get(f"{noun}Name")
        if name:
            yield noun, name


CHANGING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
# A workflow that creates an endpoint enters this state only with an endpoint it accepted (its smoke test
# passed), to hand it to the monitor (statemachines/deploy_approved.asl.json).
ACCEPTED = "MonitorDeployment"
# A shadow test's states (statemachines/deploy_approved.asl.json): one reads production's config, one puts the
# endpoint on the shadow config.
PRODUCTION_READ, SHADOW_STARTED = "DescribeServingConfig", "StartShadow"


def created_endpoints(events: list[dict]) -> Iterator[tuple[str, str]]:
    """(endpoint name, endpoint config name) for each endpoint the execution created, unless it went on to hand
    it to the monitor: a run gets there only with an endpoint it accepted, which stays."""
    created, accepted = [], False
    for event in events:
        accepted |= (event.get("stateEnteredEventDetails") or {}).get("name") == ACCEPTED
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resourceType") not in ("sagemaker", "aws-sdk:sagemaker"):
            continue
        parameters = json.loads(details.get("parameters") or "{}")
        if details.get("resource") == "createEndpoint" and parameters.get("EndpointConfigName"):
            created.append((parameters.get("EndpointName"), parameters["EndpointConfigName"]))
    yield from ((name, config) for name, config in created if name and not accepted)


def shadow_tests(events: list[dict]) -> Iterator[tuple[str, str, str]]:
    """(endpoint name, shadow config, production config) for each shadow test the execution started: the config
    its PRODUCTION_READ state read, and the one its SHADOW_STARTED state put the endpoint on."""
    production, state = None, None
    for event in events:
        state = (event.get("stateEnteredEventDetails") or {}).get("name", state)
        details = event.get("taskScheduledEventDetails") or {}
        parameters = json.loads(details.get("parameters") or "{}") if details else {}
        if state == PRODUCTION_READ and details.get("resource") == "describeEndpointConfig":
            production = parameters.get("EndpointConfigName")
        elif (state == SHADOW_STARTED and details.get("resource") == "updateEndpoint" and production
              and parameters.get("EndpointName") and parameters.get("EndpointConfigName")):
            yield parameters["EndpointName"], parameters["EndpointConfigName"], production


def delete_if_still_ours(sagemaker: Any, name: str, config: str, seconds_left: Callable[[], float] = lambda: 0,
                         sleep: Callable[[float], None] = time.sleep) -> str:
    """Delete the endpoint if it still runs `config`, once it has settled (SageMaker deletes no endpoint while it
    changes); returns NotFound, Deleted, or the config it runs instead. Raises if it is still changing when the
    function's time runs out, so Lambda invokes it again."""
    def delete() -> str:
        sagemaker.delete_endpoint(EndpointName=name)
        return "Deleted"
    return _when_settled(sagemaker, name, config, delete, seconds_left, sleep)


def restore_if_still_shadowing(sagemaker: Any, name: str, shadow: str, production: str,
                               seconds_left: Callable[[], float] = lambda: 0,
                               sleep: Callable[[float], None] = time.sleep) -> str:
    """Put the endpoint back on `production` if it still serves the `shadow` config, once it has settled; returns
    NotFound, Restored, or the config it runs instead."""
    def restore() -> str:
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=production)
        return "Restored"
    return _when_settled(sagemaker, name, shadow, restore, seconds_left, sleep)


def _when_settled(sagemaker: Any, name: str, config: str, act: Callable[[], str], seconds_left: Callable[[], float],
                  sleep: Callable[[float], None]) -> str:
    """`act` on the endpoint once it has settled, if it still runs `config`. Raises if it is still changing when
    the function's time runs out, so Lambda invokes it again."""
    wait = 1.0
    while True:
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":  # SageMaker's answer for a missing one
                return "NotFound"
            raise
        if endpoint["EndpointStatus"] == "Deleting":
            return "Deleted"
        # While it changes, DescribeEndpoint names the config it is leaving: compare once it has settled.
        if endpoint["EndpointStatus"] not in CHANGING:
            return act() if endpoint["EndpointConfigName"] == config else endpoint["EndpointConfigName"]
        if seconds_left() < wait + 30:
            raise RuntimeError(f"endpoint {name} is still {endpoint['EndpointStatus']}; retrying later")
        sleep(wait)
        wait = min(wait * 2, 15)


def stop_if_running(sagemaker: Any, noun: str, name: str) -> str:
    """Stop one job if it is still running; returns its status as found."""
    try:
        job = getattr(sagemaker, f"describe_{xform_name(noun)}")(**{f"{noun}Name": name})
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return "NotCreated"  # the create call itself failed
        raise
    status = job[f"{noun}Status"]
    if status in RUNNING:
        getattr(sagemaker, f"stop_{xform_name(noun)}")(**{f"{noun}Name": name})
    return status


class EndpointLeftRunning(RuntimeError):
    """An endpoint the execution created could not be deleted: it bills until someone does. Lambda retries the
    invocation; the record of the last failure, with this message, goes to the cleanup's watched queue."""


def _deleted(sagemaker: Any, name: str, config: str, seconds_left: Callable[[], float], execution: str) -> str:
    try:
        return delete_if_still_ours(sagemaker, name, config, seconds_left)
    except Exception as error:
        raise EndpointLeftRunning(f"endpoint {name} (config {config}), created by {execution}, may still be running "
                                  f"and billing: {error}") from error


def _restored(sagemaker: Any, name: str, shadow: str, production: str, seconds_left: Callable[[], float],
              execution: str) -> str:
    try:
        return restore_if_still_shadowing(sagemaker, name, shadow, production, seconds_left)
    except Exception as error:
        raise EndpointLeftRunning(f"endpoint {name} may still serve the shadow test {execution} started (config "
                                  f"{shadow}), billing its shadow instance and refusing deployments: return it to "
                                  f"{production}: aws sagemaker update-endpoint --endpoint-name {name} "
                                  f"--endpoint-config-name {production} ({error})") from error


def released_claim(events: list[dict], bucket: str, s3: Any) -> str | None:
    """Release the event claim of a run that did not succeed (lambda/claim_event), so the same cause may start a
    run that does: a version approved again after a failed deployment deploys. The claim is in the run's input."""
    started = next((e.get("executionStartedEventDetails") for e in events if e.get("type") == "ExecutionStarted"), None)
    try:
        identity = json.loads((started or {}).get("input") or "{}").get("event_claim")
    except (ValueError, AttributeError):
        return None
    if not isinstance(identity, str) or not identity.strip():
        return None
    key = claim_key(identity)
    s3.delete_object(Bucket=bucket, Key=key)
    return key


def handler(event: dict, context: Any) -> dict:
    detail = event.get("detail") or {}
    execution = detail.get("executionArn")
    if not isinstance(execution, str):
        raise ValueError("expected a Step Functions Execution Status Change event with detail.executionArn")
    # Integration resource -> job noun, e.g. {"createTrainingJob.sync": "TrainingJob"}; derived from the stack.
    sync_jobs: dict[str, str] = json.loads(os.environ["SYNC_JOBS"])
    pages = boto3.client("stepfunctions").get_paginator("get_execution_history").paginate(
        executionArn=execution, includeExecutionData=True)
    events = [item for page in pages for item in page["events"]]
    sagemaker = boto3.client("sagemaker")
    found = {name: stop_if_running(sagemaker, noun, name) for noun, name in scheduled_jobs(events, sync_jobs)}
    stopped = sorted(name for name, status in found.items() if status in RUNNING)
    seconds_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else (lambda: 120)
    endpoints: dict[str, str] = {}
    if os.environ.get("DELETES_CREATED_ENDPOINTS") == "true":
        endpoints.update({name: _deleted(sagemaker, name, config, seconds_left, execution)
                          for name, config in created_endpoints(events)})
        endpoints.update({name: _restored(sagemaker, name, shadow, production, seconds_left, execution)
                          for name, shadow, production in shadow_tests(events)})
    claims = os.environ.get("CLAIMS_BUCKET")
    released = released_claim(events, claims, boto3.client("s3")) if claims else None
    LOGGER.info(json.dumps({"execution": execution, "status": detail.get("status"), "jobs": found, "claim": released,
                            "stopped": stopped, "endpoints": endpoints}))
    return {"execution": execution, "stopped": stopped, "jobs": found, "endpoints": endpoints, "claim": released}
