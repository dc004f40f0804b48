"""Lambda handler: write a synthetic data set under one run's input prefix and return where it went."""
from __future__ import annotations

import logging
import os
import random

import boto3

from contract import run_layout
from dataset import PROFILES, build_files, split_sizes

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
MAX_ROWS = 1_000_000
MAX_SEED = 2**31 - 1
# runs/<execution name>/input/ : one segment for the run, no traversal, as the IAM policy expects.
PREFIX = run_layout.folder_prefix_pattern(run_layout.INPUT)
EVENT_KEYS = {"dataset", "prefix", "rows", "seed"}


class InvalidSeedEvent(ValueError):
    """The event asks for something this function does not do."""


def _whole(event: dict, key: str, low: int, high: int) -> int:
    value = event[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSeedEvent(f"{key} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_event(event: object) -> tuple[str, str, int, int | None]:
    if not isinstance(event, dict):
        raise InvalidSeedEvent(f"event must be an object, got {type(event).__name__}")
    unknown = sorted(set(event) - EVENT_KEYS)
    if unknown:
        raise InvalidSeedEvent(f"unknown event keys {unknown}; allowed: {sorted(EVENT_KEYS)}")
    dataset, prefix = event.get("dataset"), event.get("prefix")
    if dataset not in PROFILES:
        raise InvalidSeedEvent(f"dataset must be one of {sorted(PROFILES)}, got {dataset!r}")
    if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix) or prefix.split("/")[1] in (".", ".."):
        raise InvalidSeedEvent(f"prefix must look like runs/<run>/input/, got {prefix!r}")
    if "rows" not in event:
        raise InvalidSeedEvent("rows is required")
    rows = _whole(event, "rows", 1, MAX_ROWS)
    seed = None if event.get("seed") is None else _whole(event, "seed", 0, MAX_SEED)
    return dataset, prefix, rows, seed


def handler(event: dict, context: object, s3_client=None) -> dict:
    dataset, prefix, rows, seed = parse_event(event)
    bucket = os.environ["DATA_BUCKET"]
    if seed is None:
        seed = random.SystemRandom().randint(0, MAX_SEED)  # reported, so the run can be reproduced
    s3 = s3_client or boto3.client("s3")
    objects = {}
    for relative_key, body in build_files(PROFILES[dataset], rows, seed).items():
        s3.put_object(Bucket=bucket, Key=prefix + relative_key, Body=body.encode(),
                      ContentType="application/json" if relative_key.endswith(".json") else "text/csv")
        objects[relative_key] = f"s3://{bucket}/{prefix}{relative_key}"
    folders = {key.rsplit("/", 1)[0] for key in objects}
    result = {
        "dataset": dataset,
        "seed": seed,
        "rows": {"all": rows} if "all" in PROFILES[dataset].folders else split_sizes(rows),
        "channels": {folder: f"s3://{bucket}/{prefix}{folder}/" for folder in sorted(folders)},
        "objects": objects,
        # The true labels, line-aligned with the test set (a data set split later has none yet).
        "test_labels": objects.get("test-labels/labels.csv"),
    }
    LOGGER.info("seeded data set", extra={"dataset": dataset, "prefix": prefix, "rows": rows, "seed": seed})
    return result
