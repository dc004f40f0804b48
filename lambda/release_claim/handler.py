"""Lambda handler: when a model version's approval is withdrawn (Rejected, or back to PendingManualApproval),
release its deployment claim, so that approving it again deploys it again.

A deployment claims the version it deploys (lambda/claim_event, contract/claims.py): every later event for that
version while it stays approved (SageMaker may send several per change, and any change of the version's
description sends one) ends as a duplicate. The claim names the version alone, not a timestamp of the event,
because no AWS page shows which fields the Model Package State Change event carries beyond the version's own.
SageMaker sends that event on a change of a version's status (SageMaker developer guide, "Events that Amazon
SageMaker AI sends to Amazon EventBridge", SageMaker model package state change), a withdrawal included.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import boto3

from contract.claims import WITHDRAWN, claim_key

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)


def handler(event: dict, context: Any, s3_client=None) -> dict:
    detail = event.get("detail") or {}
    version, status = detail.get("ModelPackageArn"), detail.get("ModelApprovalStatus")
    if not isinstance(version, str) or status not in WITHDRAWN:
        raise ValueError(f"expected a Model Package State Change event of a withdrawn approval, got {detail!r}")
    key = claim_key(version)
    (s3_client or boto3.client("s3")).delete_object(Bucket=os.environ["DATA_BUCKET"], Key=key)
    LOGGER.info("released the deployment claim", extra={"version": version, "status": status, "key": key})
    return {"released": key, "version": version}
