"""Lambda handler: take the user's CSV data set (an s3:// file or folder of the stack's bucket) into one run.

Every file needs a header; a `label` column of 0 and 1 and at least one numeric feature column, the same in
every file. The rows are shuffled with the run's seed and split 70/15/15 into the run's raw train, validation
and test files (test without labels, which go line-aligned to test-labels/), the layout the processing step reads.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import random
import re
from typing import Any

import boto3

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
LABEL = "label"
PREFIXES = ("datasets/", "incoming/")  # where the function may read (its IAM says the same)
MAX_BYTES = 200 * 1024 * 1024  # what one function invocation reads; larger data sets belong in a processing job


class InvalidDataset(ValueError):
    """The data set cannot be trained on; the message says which file and why."""


def read_rows(name: str, text: str, header: list[str] | None) -> tuple[list[str], list[list[float]]]:
    """(header, rows as numbers) of one CSV file, checked against the header of the files before it."""
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or not lines[0]:
        raise InvalidDataset(f"{name} is empty")
    columns = [c.strip() for c in lines[0]]
    if LABEL not in columns or len(columns) < 2:
        raise InvalidDataset(f"{name} must have a header with a {LABEL!r} column and at least one feature; "
                             f"got {','.join(columns)}")
    if header is not None and columns != header:
        raise InvalidDataset(f"{name} has columns {','.join(columns)}, but the other files have {','.join(header)}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(columns):
            raise InvalidDataset(f"{name} line {number} has {len(line)} values for {len(columns)} columns")
        try:
            values = [float(v) for v in line]
        except ValueError:
            raise InvalidDataset(f"{name} line {number} has a value that is not a number") from None
        if not all(math.isfinite(v) for v in values) or values[columns.index(LABEL)] not in (0.0, 1.0):
            raise InvalidDataset(f"{name} line {number}: values must be finite and {LABEL} 0 or 1")
        rows.append(values)
    return columns, rows


def split(columns: list[str], rows: list[list[float]], seed: int) -> dict[str, str]:
    """Relative key -> CSV text: raw/{train,validation,test}.csv (label first; test without it) and labels."""
    if len(rows) < 20:
        raise InvalidDataset(f"the data set has {len(rows)} rows; at least 20 are needed to train and evaluate")
    order = [columns.index(LABEL)] + [i for i, c in enumerate(columns) if c != LABEL]
    rows = [[row[i] for i in order] for row in rows]
    random.Random(seed).shuffle(rows)
    train_end, validation_end = int(len(rows) * 0.7), int(len(rows) * 0.85)
    parts = {"train": rows[:train_end], "validation": rows[train_end:validation_end], "test": rows[validation_end:]}
    features = [columns[i] for i in order[1:]]
    text = lambda values: ",".join(f"{v:g}" for v in values)  # noqa: E731
    files = {f"raw/{s}.csv": "\n".join([",".join([LABEL, *features]), *map(text, parts[s])]) + "\n"
             for s in ("train", "validation")}
    files["raw/test.csv"] = "\n".join([",".join(features), *(text(r[1:]) for r in parts["test"])]) + "\n"
    files["test-labels/labels.csv"] = "".join(f"{int(r[0])}\n" for r in parts["test"])
    return files


def handler(event: dict, context: Any, s3_client=None) -> dict:
    uri, prefix, seed = event.get("dataset_uri"), event.get("prefix"), event.get("seed") or 0
    match = re.fullmatch(r"s3://([^/]+)/(.+)", uri or "")
    bucket = os.environ["DATA_BUCKET"]
    if not match or match.group(1) != bucket:
        raise InvalidDataset(f"dataset_uri must be an s3:// URI in s3://{bucket}/, got {uri!r}")
    if not match.group(2).startswith(PREFIXES):
        raise InvalidDataset(f"dataset_uri must be under s3://{bucket}/{PREFIXES[0]} or s3://{bucket}/{PREFIXES[1]}, "
                             f"got {uri!r}")
    if not isinstance(prefix, str) or not re.fullmatch(r"runs/[^/]+/input/", prefix):
        raise ValueError(f"prefix must look like runs/<run>/input/, got {prefix!r}")
    s3 = s3_client or boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=match.group(2))
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv"))
    if not keys:
        raise InvalidDataset(f"no .csv file under {uri}")
    header, rows, size = None, [], 0
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        size += len(body)
        if size > MAX_BYTES:
            raise InvalidDataset(f"the files under {uri} hold more than {MAX_BYTES // 2**20} MiB")
        header, file_rows = read_rows(f"s3://{bucket}/{key}", body.decode("utf-8-sig"), header)
        rows += file_rows
    objects = {}
    for relative, text in split(header, rows, seed).items():
        s3.put_object(Bucket=bucket, Key=prefix + relative, Body=text.encode(), ContentType="text/csv")
        objects[relative] = f"s3://{bucket}/{prefix}{relative}"
    LOGGER.info("imported data set", extra={"dataset_uri": uri, "files": len(keys), "rows": len(rows)})
    return {"dataset_uri": uri, "files": keys, "rows": len(rows), "features": [c for c in header if c != LABEL],
            "channels": {"raw": f"s3://{bucket}/{prefix}raw/"}, "test_labels": objects["test-labels/labels.csv"]}
