"""Lambda handler: check a batch of a day's CSV files and split each one's rows into the run's training and
validation sets.

TrainOnDayFiles' Distributed Map runs it once per batch of files. A day's file has a header row, then rows with the label in
the first column and numbers only (contract/data.py's grammar, what XGBoost reads). Its rows go on unchanged, each
value's text as given, without the header (SageMaker XGBoost's CSV) to runs/<run>/input/train/ and validation/,
under a name made from the file's key; a row goes to validation when a hash of the file's key and its line number
says so, one in five (the last row when no other did), so the same files split the same way in every run.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os

import boto3

from contract.data import BadInput, finite_number

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
VALIDATION_SHARE = 5  # one row in five, by hash


def split(text: str, source: str) -> tuple[list[str], list[str], list[str]]:
    """(header, training rows, validation rows) of a file's text; BadInput names the line, column and value."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise BadInput(f"{source}: the file is empty; a day's file has a header row, then rows with the label first")
    train, validation = [], []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue  # a blank line (the last line break) holds no row
        if len(row) != len(header):
            raise BadInput(f"{source} line {line}: {len(row)} values, but the header names {len(header)} columns; "
                           "give every row one value per column")
        for column, value in zip(header, row):
            if finite_number(value) is None:
                raise BadInput(f"{source} line {line} column {column!r}: {value!r} is not a finite number; a day's "
                               "files hold numbers only, the label first: fix the file and start a new run")
        bucket = hashlib.sha256(f"{source}\n{line}".encode()).digest()[0] % VALIDATION_SHARE
        (validation if bucket == 0 else train).append(",".join(row))
    if not train and not validation:
        raise BadInput(f"{source}: the file has a header but no rows; remove it from the day's folder or fill it")
    if not validation:  # no row's hash chose it: the file's last row validates, so every file gives one
        validation.append(train.pop())
    return header, train, validation


def handler(event: dict, context: object, s3_client=None) -> dict:
    """One batch of a Distributed Map's items ({"Items": [listed objects], "BatchInput": {"run_prefix": ...}}): every
    file split, and the header they share; BadInput on the first file that cannot be trained on."""
    bucket, run_prefix = os.environ["DATA_BUCKET"], event["BatchInput"]["run_prefix"]
    s3 = s3_client or boto3.client("s3")
    headers = {}
    for key in (item["Key"] for item in event["Items"]):
        source = f"s3://{bucket}/{key}"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise BadInput(f"{source}: byte {error.start} is not UTF-8 text; save the file as UTF-8 CSV") from None
        header, train, validation = split(text, source)
        headers[",".join(header)] = source
        name = f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.csv"  # one per file, whatever its folder or name
        for folder, rows in (("train", train), ("validation", validation)):
            if rows:  # a one-row file gives validation only
                s3.put_object(Bucket=bucket, Key=f"{run_prefix}input/{folder}/{name}",
                              Body="\n".join(rows).encode() + b"\n", ContentType="text/csv")
        LOGGER.info("split", extra={"file": source, "train": len(train), "validation": len(validation)})
    if len(headers) > 1:
        (first, one), (second, other) = list(headers.items())[:2]
        raise BadInput(f"{other} has the header {second!r}, but {one} has {first!r}; every file of a day needs the "
                       "same columns in the same order")
    return {"header": next(iter(headers)), "files": len(event["Items"])}
