"""Lambda handler: check a batch of a day's CSV files and split each one's rows into the run's training and
validation sets.

TrainOnDayFiles' Distributed Map runs it once per batch of files. A day's file has a header row, then rows with the label in
the first column and numbers only (contract/data.py's grammar, what XGBoost reads). Its rows go on unchanged, each
value's text as given, without the header (SageMaker XGBoost's CSV) to runs/<run>/input/train/ and validation/,
under a name made from the file's key; a row goes to validation when a hash of the file's key and its line number
says so, one in five, so the same files split the same way in every run (the run checks that the day gave both).
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


def split(text: str, source: str, labels: frozenset[str] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(header, training rows, validation rows) of a file's text; BadInput names the line, column and value.
    `labels`: the label values the objective takes (0 and 1 for binary:logistic), or None for any number."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise BadInput(f"{source}: the file is empty; a day's file has a header row, then rows with the label first")
    if all(finite_number(cell) is not None for cell in header):
        raise BadInput(f"{source} line 1: {','.join(header)!r} looks like a row of data, not a header; a day's file "
                       "starts with a header row naming its columns, the label first")
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
        if labels is not None and row[0] not in labels and finite_number(row[0]) not in {float(v) for v in labels}:
            raise BadInput(f"{source} line {line} column {header[0]!r}: label {row[0]!r} is not one of "
                           f"{', '.join(sorted(labels))}, which the objective takes; fix the label or the objective")
        bucket = hashlib.sha256(f"{source}\n{line}".encode()).digest()[0] % VALIDATION_SHARE
        (validation if bucket == 0 else train).append(",".join(row))
    if not train and not validation:
        raise BadInput(f"{source}: the file has a header but no rows; remove it from the day's folder or fill it")
    return header, train, validation


# What the built-in XGBoost's classification objectives take as labels (its binary objectives: 0 and 1).
BINARY_LABELS = frozenset({"0", "1"})


def handler(event: dict, context: object, s3_client=None) -> dict:
    """One batch of a Distributed Map's items ({"Items": [listed objects], "BatchInput": {"run_prefix": ...,
    "objective": ...}}): every file split, the header they share and whether they gave training and validation
    rows; BadInput on the first file that cannot be trained on. A folder marker (a key ending in /) holds no file."""
    bucket, batch = os.environ["DATA_BUCKET"], event["BatchInput"]
    run_prefix, labels = batch["run_prefix"], BINARY_LABELS if batch["objective"].startswith("binary:") else None
    s3 = s3_client or boto3.client("s3")
    headers, given = {}, {"train": False, "validation": False}
    for key in (item["Key"] for item in event["Items"] if not item["Key"].endswith("/")):
        source = f"s3://{bucket}/{key}"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise BadInput(f"{source}: byte {error.start} is not UTF-8 text; save the file as UTF-8 CSV") from None
        header, train, validation = split(text, source, labels)
        headers[",".join(header)] = source
        name = f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.csv"  # one per file, whatever its folder or name
        for folder, rows in (("train", train), ("validation", validation)):
            given[folder] |= bool(rows)
            if rows:
                s3.put_object(Bucket=bucket, Key=f"{run_prefix}input/{folder}/{name}",
                              Body="\n".join(rows).encode() + b"\n", ContentType="text/csv")
        LOGGER.info("split", extra={"file": source, "train": len(train), "validation": len(validation)})
    if len(headers) > 1:
        (first, one), (second, other) = list(headers.items())[:2]
        raise BadInput(f"{other} has the header {second!r}, but {one} has {first!r}; every file of a day needs the "
                       "same columns in the same order")
    if not headers:
        raise BadInput("a batch of the day's files held folder markers only; put the files themselves in the folder")
    return {"header": next(iter(headers)), "has_train": given["train"], "has_validation": given["validation"]}
