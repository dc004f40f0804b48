"""Lambda handler: how much a run's data set weighs, so its data job gets a disk that holds it and what it writes.

SageMaker copies every object under the input's S3 prefix to the job's volume (File mode), and the job writes the
raw splits (about the data set again), the processed splits (numbers as their shortest exact text, one-hot
columns as 0 and 1: a few times the data set) and a spill of the training numbers for the median beside it. The
volume is VOLUME_PER_INPUT_GIB GB per GiB of input on top of MIN_VOLUME_GB, at most SageMaker's 16,384 GB
(ProcessingClusterConfig.VolumeSizeInGB, 1-16384 in the service model). ValidateInput has already checked that
the URI is in this stack's bucket under a data set prefix; this function may only list those prefixes.
"""
from __future__ import annotations

import logging
import math
import os

import boto3

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
MAX_VOLUME_GB = 16_384
GIB = 2**30


def volume_gb(size: int, per_gib: float, minimum: int) -> int:
    """The volume for `size` bytes of input."""
    return min(MAX_VOLUME_GB, minimum + math.ceil(size / GIB * per_gib))


def handler(event: dict, context: object = None) -> dict:
    uri = event["uri"]
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    size = files = 0
    for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            size, files = size + item["Size"], files + 1
    volume = volume_gb(size, float(os.environ["VOLUME_PER_INPUT_GIB"]), int(os.environ["MIN_VOLUME_GB"]))
    LOGGER.info("%s: %d objects, %d bytes: a volume of %d GB", uri, files, size, volume)
    return {"uri": uri, "bytes": size, "files": files, "volume_gb": volume}
