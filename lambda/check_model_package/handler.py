"""Lambda handler: check that a model version may be deployed by this stack, and return what it registered."""
from __future__ import annotations

import logging
import os
import quopri
import re
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract import run_layout
from contract.serving import SERVING_ENVIRONMENT, built_in_algorithm

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
# Where BuildAndRegister keeps a run's fitted preprocessing and its model: the same run for both.
PREPROCESSOR = run_layout.uri_pattern(run_layout.PREPROCESSOR, "model.tar.gz")
MODEL = run_layout.uri_pattern(run_layout.MODEL)

class ModelPackageNotInGroup(Exception):
    """The version belongs to another model package group (or account, or region) than the one this stack serves."""


class ModelPackageNotFound(Exception):
    """No such version (a mistyped version number, or one deleted since)."""


class ModelNotApproved(Exception):
    """The version's approval status is not Approved."""


class UnsupportedModel(Exception):
    """The version is not one the kit can serve and smoke-test (a BuildAndRegister inference pipeline)."""


def _metadata(description: dict, key: str) -> str | None:
    """A CustomerMetadataProperties value as it was before BuildAndRegister spelled what SageMaker refuses in
    quoted-printable style (lambda/validate_input: "=XX" per byte; a value without "=" is unchanged)."""
    value = _field(description, "CustomerMetadataProperties", key)
    return quopri.decodestring(value.encode("utf-8")).decode("utf-8") if isinstance(value, str) else value


def _field(description: dict, *path: str) -> Any:
    value: Any = description
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _serving_environment(arn: str, role: str, environment: dict) -> dict:
    """A container's environment must tell the serving toolkit its module, in the model archive's code/, and
    nothing else."""
    program = environment.get("SAGEMAKER_PROGRAM", "")
    if ({k: v for k, v in environment.items() if k != "SAGEMAKER_PROGRAM"} != SERVING_ENVIRONMENT
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.py", program)):
        raise UnsupportedModel(f"{arn} must tell its {role} container SAGEMAKER_PROGRAM (a .py module) and "
                               f"{SERVING_ENVIRONMENT}; it has {environment}")
    return environment


def _chain(arn: str, containers: list, images: tuple[str, str], bucket: str) -> dict:
    """The version's two containers, as BuildAndRegister registers them: the fitted preprocessing in the
    scikit-learn image, then the model, both from one run of the build bucket. The model is the built-in XGBoost
    algorithm (the XGBoost image, no environment) or a team's script served by its framework image (either image,
    with the serving module in the archive's code/)."""
    sklearn, xgboost = images
    shown = ", ".join(str(c.get("Image")) for c in containers) or "no container"
    if len(containers) != 2 or containers[0].get("Image") != sklearn or containers[1].get("Image") not in images:
        raise UnsupportedModel(f"{arn} must be the kit's inference pipeline: the fitted preprocessing in {sklearn}, "
                               f"then the model in {xgboost} or {sklearn}; it has {shown}")
    preprocessor, model = (c.get("ModelDataUrl", "") for c in containers)
    found = PREPROCESSOR.fullmatch(preprocessor), MODEL.fullmatch(model)
    if not all(found) or {m["bucket"] for m in found} != {bucket} or found[0]["run"] != found[1]["run"]:
        raise UnsupportedModel(f"{arn} must keep its preprocessing under runs/<run>/processed/preprocessor/ and "
                               f"its model under runs/<run>/model/ of one run in s3://{bucket}; has "
                               f"{preprocessor!r} and {model!r}")
    model_environment = containers[1].get("Environment") or {}
    if not built_in_algorithm(containers[1], xgboost):  # a script
        _serving_environment(arn, "model", model_environment)
    return {"preprocessor_data_url": preprocessor,
            "preprocessor_environment": _serving_environment(arn, "preprocessing", containers[0].get("Environment") or {}),
            "model_image": containers[1]["Image"], "model_data_url": model, "model_environment": model_environment}


def registered(description: dict, *, images: tuple[str, str], bucket: str) -> dict:
    """What the deployment needs of a described version, refusing any it must not deploy."""
    arn, status = description["ModelPackageArn"], description.get("ModelApprovalStatus")
    if status != "Approved":
        raise ModelNotApproved(f"{arn} is {status}, not Approved: approve it first (aws sagemaker "
                               f"update-model-package --model-package-arn {arn} --model-approval-status Approved)")
    chain = _chain(arn, _field(description, "InferenceSpecification", "Containers") or [], images, bucket)
    facts = {
        "evaluation": _field(description, "ModelMetrics", "ModelQuality", "Statistics", "S3Uri"),
        "statistics": _field(description, "DriftCheckBaselines", "ModelDataQuality", "Statistics", "S3Uri"),
        "constraints": _field(description, "DriftCheckBaselines", "ModelDataQuality", "Constraints", "S3Uri"),
        "test_data": _metadata(description, "test_data"),
        "test_labels": _metadata(description, "test_labels"),
    }
    missing = sorted(name for name, value in facts.items() if not value)
    if missing:
        raise UnsupportedModel(f"{arn} was registered without {', '.join(missing)}, which the smoke test and the "
                               "monitor need; register it again with the current BuildAndRegister workflow")
    return {"arn": arn, "version": description.get("ModelPackageVersion"), **chain, **facts}


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
    facts = registered(description, images=(os.environ["SKLEARN_IMAGE"], os.environ["XGBOOST_IMAGE"]),
                       bucket=os.environ["BUILD_DATA_BUCKET"])
    LOGGER.info("model version accepted", extra={"package": facts})
    return facts
