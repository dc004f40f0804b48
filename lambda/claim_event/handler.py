"""Lambda handler: let one run go ahead per event, however often the event is delivered.

EventBridge delivers an event at least once, and SageMaker may send several events for one change of a model
version, so two runs may start for one cause. The first run to claim the event's identity creates the object
claims/<sha256 of the identity> in the stack's bucket with a conditional write (PutObject with If-None-Match:
*), which S3 refuses with 412 Precondition Failed once the object exists; every later run for the same event
finds it taken and ends as a no-op. (S3 User Guide, "Conditional writes"; PutObject's IfNoneMatch in the API
reference: a 409 ConditionalRequestConflict means a concurrent write to the key, to be retried.)
"""
from __future__ import annotations

import logging
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract.claims import claim_key

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
ATTEMPTS = 3  # a 409 means another run is writing the same claim right now; the retry then meets its 412


class InvalidExecutionInput(ValueError):
    """The run's event identity is missing or not text."""


def handler(event: dict, context: Any, s3_client=None) -> dict:
    identity = event.get("event_claim")
    if not isinstance(identity, str) or not identity.strip():
        raise InvalidExecutionInput(f"event_claim must be the text that identifies the event, got {identity!r}")
    s3, key = s3_client or boto3.client("s3"), claim_key(identity)
    for attempt in range(1, ATTEMPTS + 1):  # returns or raises on the last attempt
        try:
            s3.put_object(Bucket=os.environ["DATA_BUCKET"], Key=key, Body=identity.encode(), IfNoneMatch="*",
                          ContentType="text/plain")
            LOGGER.info("claimed the event", extra={"event_claim": identity, "key": key})
            return {"claimed": True, "key": key}
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "PreconditionFailed":
                LOGGER.info("another run claimed the event", extra={"event_claim": identity, "key": key})
                return {"claimed": False, "key": key}
            if code != "ConditionalRequestConflict" or attempt == ATTEMPTS:
                raise
    return {}  # not reached: the last attempt returns or raises
