"""Lambda handler: take the user's CSV data set (an s3:// file or folder of the stack's bucket) into one run.

Every file needs a header with a `label` column of 0 and 1 and at least one numeric feature column, the same in
every file. Each value reaches the run as the text the user wrote (no reformatting, so no precision is lost).
Every problem a job would meet later (text, empty cells, labels other than 0/1, one class, a constant column) is
found here, before any job is billed, and named by file, line, column and value. The rows are shuffled with the
run's seed and split 70/15/15 per label (stratified) into the run's raw train and validation files (header, label
first) and its test file (features only, no header: the rows a client sends), with labels line-aligned in
test-labels/.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import random
import re
from dataclasses import dataclass
from typing import Any

import boto3

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
LABEL = "label"
LABELS = ("0", "1")  # as numbers: 0 and 1 in any spelling ("1.0", "1e0") are accepted and kept as written
PREFIXES = ("datasets/", "incoming/")  # where the function may read (its IAM says the same)
MAX_BYTES = 200 * 1024 * 1024  # what one function invocation reads; larger data sets belong in a processing job
MIN_ROWS = 20
SPLITS = (("train", 0.7), ("validation", 0.85), ("test", 1.0))  # each split ends at this share of a label's rows
# A decimal number as pandas, numpy and XGBoost read it: no underscores, no hex, no inf or nan.
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# What pandas reads as a missing value (its default na_values), besides the empty cell.
MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
           "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


class InvalidDataset(ValueError):
    """The data set cannot be trained on; the message says which file, line, column and value, and what to do."""


@dataclass
class Row:
    """One data row: where it came from and its values as written (surrounding spaces removed)."""
    where: str  # "<file> line <n>"
    values: list[str]


def _problem(value: str, column: str) -> str | None:
    """What is wrong with one feature value, and what to do about it; None when it is a finite number."""
    if NUMBER.fullmatch(value):
        return None if math.isfinite(float(value)) else f"{value!r}, which is beyond a 64-bit float; rescale it"
    if value in MISSING:
        what = "an empty cell" if value == "" else f"{value!r}, a missing value"
        return f"{what}; fill or drop missing values (this workflow trains on complete numeric rows)"
    if value.lower().lstrip("+-") in ("inf", "infinity"):
        return f"{value!r}, which is not a finite number; replace or drop it"
    return (f"{value!r}, which is not a number; encode text columns as numbers (one 0/1 column per category, "
            f"for example) or drop {column!r}")


def read_rows(name: str, text: str, header: list[str] | None) -> tuple[list[str], list[Row]]:
    """(header, rows) of one CSV file, every value checked, and the header checked against the files before it."""
    reader = csv.reader(io.StringIO(text))
    columns = [c.strip() for c in next(reader, [])]
    if not any(columns):
        raise InvalidDataset(f"{name} is empty; each file needs a header row naming its columns")
    if LABEL not in columns or len(columns) < 2:
        raise InvalidDataset(f"{name} line 1: the header must name a {LABEL!r} column and at least one feature; "
                             f"got {','.join(columns)}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InvalidDataset(f"{name} line 1 names column {duplicated[0]!r} twice; give each column its own name")
    if header is not None and columns != header:
        raise InvalidDataset(f"{name} line 1 has columns {','.join(columns)}, but the files before it have "
                             f"{','.join(header)}; give every file the same header")
    rows = []
    for line in reader:
        where = f"{name} line {reader.line_num}"
        if not line:
            continue  # a blank line holds no row
        values = [v.strip() for v in line]
        if len(values) != len(columns):
            raise InvalidDataset(f"{where} has {len(values)} values for the {len(columns)} columns of the header")
        for column, value in zip(columns, values):
            problem = column != LABEL and _problem(value, column)
            if problem:
                raise InvalidDataset(f"{where}, column {column!r}: {problem}")
        rows.append(Row(where, values))
    return columns, rows


def _is_binary(value: str) -> bool:
    return value in LABELS or (NUMBER.fullmatch(value) is not None and float(value) in (0.0, 1.0))


def _check_labels(columns: list[str], rows: list[Row]) -> dict[float, list[Row]]:
    """Rows by label; refuses labels other than 0 and 1, a data set too small, or one with a single class."""
    label = columns.index(LABEL)
    others = {}  # label as written -> first row holding it
    for row in rows:
        if not _is_binary(row.values[label]):
            others.setdefault(row.values[label], row)
    missing = next((row for row in rows if row.values[label] in MISSING), None)
    if missing:
        raise InvalidDataset(f"{missing.where}, column {LABEL!r}: {missing.values[label]!r} is a missing label; "
                             "drop the rows without a label, or fill them in")
    if others:
        found = sorted({row.values[label] for row in rows})
        first = min(others.values(), key=rows.index)
        shown = ", ".join(repr(v) for v in found[:10]) + (", ..." if len(found) > 10 else "")
        mapping = ", ".join(f"{v}->{i}" for i, v in enumerate(found[:2]))
        raise InvalidDataset(f"{first.where}, column {LABEL!r}: {first.values[label]!r} is not 0 or 1; the column "
                             f"holds {len(found)} distinct labels ({shown}) and this workflow trains a binary "
                             f"classifier: map your labels to 0 and 1" + (f" (for example {mapping})"
                                                                         if len(found) == 2 else ""))
    if len(rows) < MIN_ROWS:
        raise InvalidDataset(f"the data set has {len(rows)} rows; at least {MIN_ROWS} are needed to train and "
                             "evaluate: add rows")
    by_label: dict[float, list[Row]] = {0.0: [], 1.0: []}
    for row in rows:
        by_label[float(row.values[label])].append(row)
    for value, members in by_label.items():
        if not members:
            raise InvalidDataset(f"column {LABEL!r} is {1 - value:g} in all {len(rows)} rows (from "
                                 f"{rows[0].where}); a classifier needs rows of both labels 0 and 1: add rows "
                                 f"labelled {value:g}")
    return by_label


def split(columns: list[str], rows: list[Row], seed: int) -> dict[str, list[Row]]:
    """The rows of each split: every label's rows shuffled with `seed` and cut 70/15/15, so each split holds both
    labels in the data set's proportions; refuses a label with too few rows for that."""
    parts: dict[str, list[Row]] = {name: [] for name, _ in SPLITS}
    rng = random.Random(seed)
    for value, members in sorted(_check_labels(columns, rows).items()):
        members = list(members)
        rng.shuffle(members)
        start = 0
        for name, share in SPLITS:
            end = int(len(members) * share)
            if end == start:
                raise InvalidDataset(f"label {value:g} has only {len(members)} rows, too few to put one in each of "
                                     "the train, validation and test splits: add rows labelled "
                                     f"{value:g} (at least 7)")
            parts[name] += members[start:end]
            start = end
    for members in parts.values():
        rng.shuffle(members)
    _check_constant(columns, rows, parts["train"])
    return parts


def _check_constant(columns: list[str], rows: list[Row], train: list[Row]) -> None:
    """A feature with one value in every training row cannot be standardized (its deviation is 0)."""
    for index, column in enumerate(columns):
        if column == LABEL:
            continue
        first = float(train[0].values[index])
        if all(float(row.values[index]) == first for row in train):
            everywhere = all(float(row.values[index]) == first for row in rows)
            where = f"all {len(rows)} rows" if everywhere else f"all {len(train)} rows of the training split"
            raise InvalidDataset(f"column {column!r} holds the same value {train[0].values[index]!r} in {where} "
                                 f"(for example {train[0].where}); a constant column carries no signal and cannot "
                                 f"be standardized: drop {column!r}" + ("" if everywhere else " or add varied rows"))


def files(columns: list[str], parts: dict[str, list[Row]]) -> dict[str, str]:
    """Relative key -> CSV text of the run's raw data, each value as the user wrote it."""
    label = columns.index(LABEL)
    features = [i for i, c in enumerate(columns) if c != LABEL]
    line = lambda row, indexes: ",".join(row.values[i] for i in indexes)  # noqa: E731
    out = {f"raw/{name}.csv": "\n".join([",".join(columns[i] for i in [label, *features]),
                                         *(line(row, [label, *features]) for row in parts[name])]) + "\n"
           for name in ("train", "validation")}
    out["raw/test.csv"] = "".join(line(row, features) + "\n" for row in parts["test"])
    out["test-labels/labels.csv"] = "".join(row.values[label] + "\n" for row in parts["test"])
    return out


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
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidDataset(f"s3://{bucket}/{key} is not UTF-8 text (byte {error.start}); save it as UTF-8 "
                                 "CSV") from None
        header, file_rows = read_rows(f"s3://{bucket}/{key}", text, header)
        rows += file_rows
    objects = {}
    for relative, text in files(header, split(header, rows, seed)).items():
        s3.put_object(Bucket=bucket, Key=prefix + relative, Body=text.encode(), ContentType="text/csv")
        objects[relative] = f"s3://{bucket}/{prefix}{relative}"
    LOGGER.info("imported data set", extra={"dataset_uri": uri, "files": len(keys), "rows": len(rows)})
    return {"dataset_uri": uri, "files": keys, "rows": len(rows), "features": [c for c in header if c != LABEL],
            "channels": {"raw": f"s3://{bucket}/{prefix}raw/"}, "test_labels": objects["test-labels/labels.csv"]}
