"""Seeding function: pure data generation, S3 writes against moto, and event validation."""
from __future__ import annotations

import json

import os
import random

import boto3
import pytest
from moto import mock_aws

from tests.conftest import load_lambda_module

dataset = load_lambda_module("seed_dataset", "dataset")
handler = load_lambda_module("seed_dataset", "handler")
PREFIX = "runs/exec-1/input/"


def rows_of(text: str) -> list[list[int]]:
    return [[int(v) for v in line.split(",")] for line in text.splitlines() if line and line[0].isdigit()]


def test_label_rule_matches_the_line():
    assert dataset.label(0, 5) == 1 and dataset.label(0, 4) == 0
    assert dataset.label(10, 35) == 1 and dataset.label(10, 34) == 0
    assert dataset.label(40, 100) == 0


def test_points_are_integers_in_range_and_correctly_labelled():
    points = dataset.generate_points(2000, random.Random(3))
    assert len(points) == 2000
    for lab, x, y in points:
        assert 0 <= x <= 100 and 0 <= y <= 100 and lab == int(y >= 3 * x + 5)
    assert 0.05 < sum(p[0] for p in points) / len(points) < 0.3  # both classes present


def test_linear_files_are_xgboost_ready():
    files = dataset.build_files(dataset.PROFILES["linear"], 500, seed=7)
    assert sorted(files) == ["test-labels/labels.csv", "test/test.csv", "train/train.csv", "validation/validation.csv"]
    train = rows_of(files["train/train.csv"])
    assert len(train) == 500 and all(len(r) == 3 and r[0] == int(r[2] >= 3 * r[1] + 5) for r in train)
    assert not files["train/train.csv"].startswith("label")  # XGBoost CSV: no header, label first
    test = rows_of(files["test/test.csv"])
    labels = [int(v) for v in files["test-labels/labels.csv"].split()]
    assert len(test) == len(labels) == 100 and all(len(r) == 2 for r in test)
    assert labels == [int(y >= 3 * x + 5) for x, y in test]


def test_scaled_files_are_raw_with_headers_and_stretched_y():
    files = dataset.build_files(dataset.PROFILES["scaled"], 500, seed=7)
    assert sorted(files) == ["raw/dataset.json", "raw/test.csv", "raw/train.csv", "raw/validation.csv",
                             "test-labels/labels.csv"]
    # Described as the import describes a data set, so the features job reads seeded raw data as it reads yours.
    assert json.loads(files["raw/dataset.json"])["features"] == ["x", "y"]
    assert files["raw/train.csv"].splitlines()[0] == "label,x,y"
    assert len(rows_of(files["raw/test.csv"])) == 100  # the rows a client sends: no header, no label
    train = rows_of(files["raw/train.csv"])
    assert all(r[0] == int(r[2] / 1000 >= 3 * r[1] + 5) and r[2] % 1000 == 0 for r in train)
    assert max(r[2] for r in train) > 50_000


def test_same_seed_same_bytes_other_seed_other_bytes():
    profile = dataset.PROFILES["linear"]
    assert dataset.build_files(profile, 300, 11) == dataset.build_files(profile, 300, 11)
    assert dataset.build_files(profile, 300, 11) != dataset.build_files(profile, 300, 12)


@pytest.fixture(scope="module")
def mocked_s3():
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def s3(mocked_s3, monkeypatch):
    """A new empty bucket per test, named in DATA_BUCKET as the stack does; moto starts once per module."""
    bucket = f"data-{len(mocked_s3.list_buckets()['Buckets'])}"
    mocked_s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("DATA_BUCKET", bucket)
    return mocked_s3


def test_handler_writes_under_the_run_prefix_and_returns_uris(s3):
    result = handler.handler({"dataset": "linear", "prefix": PREFIX, "rows": 200, "seed": 5}, None, s3)
    bucket = os.environ["DATA_BUCKET"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [PREFIX + k for k in
                    ("test-labels/labels.csv", "test/test.csv", "train/train.csv", "validation/validation.csv")]
    assert result["channels"] == {folder: f"s3://{bucket}/{PREFIX}{folder}/"
                                  for folder in ("test", "test-labels", "train", "validation")}
    assert result["objects"]["train/train.csv"] == f"s3://{bucket}/{PREFIX}train/train.csv"
    assert result["test_labels"] == f"s3://{bucket}/{PREFIX}test-labels/labels.csv"
    assert result["rows"] == {"train": 200, "validation": 40, "test": 40} and result["seed"] == 5
    body = s3.get_object(Bucket=bucket, Key=PREFIX + "train/train.csv")["Body"].read().decode()
    assert body == dataset.build_files(dataset.PROFILES["linear"], 200, 5)["train/train.csv"]


def test_handler_without_seed_reports_the_seed_it_used(s3):
    result = handler.handler({"dataset": "scaled", "prefix": PREFIX, "rows": 50}, None, s3)
    again = dataset.build_files(dataset.PROFILES["scaled"], 50, result["seed"])
    body = s3.get_object(Bucket=os.environ["DATA_BUCKET"], Key=PREFIX + "raw/train.csv")["Body"].read().decode()
    assert body == again["raw/train.csv"]


@pytest.mark.parametrize(("event", "message"), [
    ([], "event must be an object"),
    ({"dataset": "linear", "prefix": PREFIX, "rows": 10, "bucket": "other"}, "unknown event keys ['bucket']"),
    ({"dataset": "images", "prefix": PREFIX, "rows": 10}, "dataset must be one of"),
    ({"dataset": "linear", "prefix": "other/x/", "rows": 10}, "prefix must look like runs/<run>/input/"),
    ({"dataset": "linear", "prefix": "runs/../input/", "rows": 10}, "prefix must look like"),
    ({"dataset": "linear", "prefix": "runs/a/b/input/", "rows": 10}, "prefix must look like"),
    ({"dataset": "linear", "prefix": PREFIX}, "rows is required"),
    ({"dataset": "linear", "prefix": PREFIX, "rows": 0}, "rows must be a whole number from 1 to 1000000"),
    ({"dataset": "linear", "prefix": PREFIX, "rows": "100"}, "rows must be a whole number"),
    ({"dataset": "linear", "prefix": PREFIX, "rows": True}, "rows must be a whole number"),
    ({"dataset": "linear", "prefix": PREFIX, "rows": 10, "seed": -1}, "seed must be a whole number"),
])
def test_bad_events_are_rejected_before_writing(s3, event, message):
    with pytest.raises(handler.InvalidSeedEvent, match=message.replace("[", r"\[").replace("]", r"\]")):
        handler.handler(event, None, s3)
    assert "Contents" not in s3.list_objects_v2(Bucket=os.environ["DATA_BUCKET"])
