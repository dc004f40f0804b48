"""Lambda handler: check that a model version may be deployed by this stack, and return what it registered."""
from __future__ import annotations

import logging
import os
import re
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
MODEL_FOLDER = re.compile(r"^s3://(?P<bucket>[^/]+)/runs/[^/]+/model/.+$")


class ModelPackageNotInGroup(Exception):
    """The version belongs to another model package group (or account, or region) than the one this stack serves."""


class ModelPackageNotFound(Exception):
    """No such version (a mistyped version number, or one deleted since)."""


class ModelNotApproved(Exception):
    """The version's approval status is not Approved."""


class UnsupportedModel(Exception):
    """The version is not one the kit can serve and smoke-test (a BuildAndRegister XGBoost model)."""


def _field(description: dict, *path: str) -> Any:
    value: Any = description
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def registered(description: dict, *, image: str, bucket: str) -> dict:
    """What the deployment needs of a described version, refusing any it must not deploy."""
    arn, status = description["ModelPackageArn"], description.get("ModelApprovalStatus")
    if status != "Approved":
        raise ModelNotApproved(f"{arn} is {status}, not Approved: approve it first (aws sagemaker "
                               f"update-model-package --model-package-arn {arn} --model-approval-status Approved)")
    containers = _field(description, "InferenceSpecification", "Containers") or []
    if len(containers) != 1 or containers[0].get("Image") != image:
        raise UnsupportedModel(f"{arn} must have one container with the kit's XGBoost image {image}, has "
                               f"{[c.get('Image') for c in containers]}")
    data = containers[0].get("ModelDataUrl", "")
    match = MODEL_FOLDER.match(data)
    if not match or match["bucket"] != bucket:
        raise UnsupportedModel(f"{arn} must keep its model under runs/<run>/model/ of s3://{bucket}, has {data!r}")
    facts = {
        "evaluation": _field(description, "ModelMetrics", "ModelQuality", "Statistics", "S3Uri"),
        "statistics": _field(description, "DriftCheckBaselines", "ModelDataQuality", "Statistics", "S3Uri"),
        "constraints": _field(description, "DriftCheckBaselines", "ModelDataQuality", "Constraints", "S3Uri"),
        "test_data": _field(description, "CustomerMetadataProperties", "test_data"),
        "test_labels": _field(description, "CustomerMetadataProperties", "test_labels"),
    }
    missing = sorted(name for name, value in facts.items() if not value)
    if missing:
        raise UnsupportedModel(f"{arn} was registered without {', '.join(missing)}, which the smoke test and the "
                               "monitor need; register it again with the current BuildAndRegister workflow")
    return {"arn": arn, "version": description.get("ModelPackageVersion"), "image": image, "model_data_url": data,
            **facts}


def handler(event: dict, context: Any, sagemaker_client=None) -> dict:
    arn, versions = event.get("model_package_arn"), os.environ["MODEL_PACKAGES"]
    if not isinstance(arn, str) or not re.fullmatch(re.escape(versions) + r"[0-9]{1,9}", arn):
        raise ModelPackageNotInGroup(f"{arn!r} is not a version of {versions.rstrip('/')}; this stack deploys "
                                     "only the versions its BuildAndRegister stack registers")
    sagemaker = sagemaker_client or boto3.client("sagemaker")
    try:
        description = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as error:  # SageMaker answers a missing version with a ValidationException
        if error.response["Error"]["Code"] == "ValidationException":
            raise ModelPackageNotFound(f"{arn} does not exist: {error.response['Error']['Message']}") from None
        raise
    facts = registered(description, image=os.environ["XGBOOST_IMAGE"], bucket=os.environ["BUILD_DATA_BUCKET"])
    LOGGER.info("model version accepted", extra={"package": facts})
    return facts
