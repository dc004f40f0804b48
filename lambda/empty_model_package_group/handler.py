"""Lambda handler, a CloudFormation custom resource: when the stack is deleted, delete the versions of its model
package group first, since SageMaker refuses to delete a group that still holds versions; CloudFormation then
deletes the group. Creating and updating the resource do nothing. Every request is answered on its pre-signed
ResponseURL (the CloudFormation User Guide's custom resource response objects): an unanswered request would
hold the stack for an hour.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Callable

import boto3

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)


def empty_group(group: str, sagemaker) -> list[str]:
    """Delete every version of the group; returns their ARNs."""
    pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
    versions = [p["ModelPackageArn"] for page in pages for p in page["ModelPackageSummaryList"]]
    for version in versions:
        sagemaker.delete_model_package(ModelPackageName=version)
    return versions


def put_response(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})  # the pre-signed URL is signed without one
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (CloudFormation's https URL)
        answer.read()


def handler(event: dict, context: Any, sagemaker_client=None, respond: Callable[[str, dict], None] = put_response
            ) -> dict:
    group = event.get("ResourceProperties", {}).get("ModelPackageGroupName")
    body = {"Status": "SUCCESS", "PhysicalResourceId": event.get("PhysicalResourceId") or f"{group}-versions",
            "StackId": event.get("StackId"), "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"), "Data": {}}
    try:
        if event["RequestType"] == "Delete":
            deleted = empty_group(group, sagemaker_client or boto3.client("sagemaker"))
            LOGGER.info("deleted the group's versions", extra={"group": group, "versions": deleted})
            body["Data"] = {"Deleted": len(deleted)}
    except Exception as error:  # answered, so CloudFormation reports it instead of waiting an hour
        LOGGER.exception("could not delete the group's versions")
        body.update(Status="FAILED", Reason=f"deleting the versions of {group}: {type(error).__name__}: {error}"[:1000])
    respond(event["ResponseURL"], body)
    return body
