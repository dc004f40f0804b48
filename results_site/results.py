"""What the results site shows, gathered read-only from one copy of the kit: the registered versions with their
metrics and approval (the model registry and each version's evaluation.json), the version serving now (the latest
deployment record DeployApproved wrote), the monitor's windows (its results table, contract/results.py) and the
copy's alarms. Standard library and boto3 only; app.py shows it with Streamlit.

Two sources answer the same questions in the same shapes: `AwsSource` asks AWS (in the deployed site, as the
task's read-only role), `SnapshotSource` reads what `make run` kept of its offline account: .offline/site.json names
where its buckets are (.offline/s3/<bucket>/<key>) and holds the registry's and the alarms' answers as the APIs gave
them, the names below, and the listings of the three buckets as S3 gave them (LastModified included: the files'
own times are those of make run's copy).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

# The names of the copy the site reads, as environment variables (the deployed task's) or site.json keys.
NAMES = ("BUILD_BUCKET", "DEPLOY_BUCKET", "MONITOR_BUCKET", "MODEL_PACKAGE_GROUP", "ALARM_PREFIX")
DEPLOYMENT_RECORD = "deployment/version.json"  # contract/run_layout.py DEPLOYMENT_RECORD, under runs/<run>/
MONITOR_ROWS = "results/monitor/"  # contract/results.py RESULTS
VERSIONS_SHOWN = 50  # the newest registered versions the page lists
WINDOWS_SHOWN = 24 * 14  # the newest monitor windows the page reads: two weeks of hourly checks


class Source(Protocol):
    def objects(self, bucket: str, prefix: str) -> list[tuple[str, str]]: ...  # (key, last modified, ISO 8601)

    def read(self, bucket: str, key: str) -> bytes: ...

    def model_packages(self, group: str) -> list[dict]: ...  # DescribeModelPackage answers, newest first

    def alarms(self, prefix: str) -> list[dict]: ...  # DescribeAlarms' MetricAlarms


class AwsSource:
    def __init__(self, session: Any = None) -> None:
        import boto3

        session = session or boto3.session.Session()
        self.s3, self.sagemaker, self.cloudwatch = (session.client(name) for name in ("s3", "sagemaker", "cloudwatch"))

    def objects(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [(item["Key"], item["LastModified"].isoformat()) for page in pages for item in page.get("Contents", [])]

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def model_packages(self, group: str) -> list[dict]:
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime",
                                                    SortOrder="Descending", MaxResults=VERSIONS_SHOWN)
        return [self.sagemaker.describe_model_package(ModelPackageName=item["ModelPackageArn"])
                for item in listed["ModelPackageSummaryList"]]

    def alarms(self, prefix: str) -> list[dict]:
        pages = self.cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix,
                                                                          AlarmTypes=["MetricAlarm"])
        return [alarm for page in pages for alarm in page["MetricAlarms"]]


class SnapshotSource:
    def __init__(self, path: Path) -> None:
        self.snapshot = json.loads(path.read_text())
        self.buckets = Path(self.snapshot["s3"])

    def objects(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        return [(key, when) for key, when in self.snapshot["objects"].get(bucket, []) if key.startswith(prefix)]

    def read(self, bucket: str, key: str) -> bytes:
        return (self.buckets / bucket / key).read_bytes()

    def model_packages(self, group: str) -> list[dict]:
        return [p for p in self.snapshot["model_packages"] if p.get("ModelPackageGroupName") == group]

    def alarms(self, prefix: str) -> list[dict]:
        return [a for a in self.snapshot["alarms"] if a["AlarmName"].startswith(prefix)]


def from_environment() -> tuple[Source, dict[str, str]]:
    """RESULTS_SNAPSHOT (the site.json make run kept) selects the offline run's results; else AWS, named by NAMES."""
    snapshot = os.environ.get("RESULTS_SNAPSHOT")
    if snapshot:
        source = SnapshotSource(Path(snapshot))
        return source, source.snapshot["names"]
    missing = [name for name in NAMES if not os.environ.get(name)]
    if missing:
        raise KeyError(f"set {', '.join(missing)} (the stack sets them), or RESULTS_SNAPSHOT to a make run folder")
    return AwsSource(), {name: os.environ[name] for name in NAMES}


def _s3_key(uri: str, bucket: str) -> str | None:
    prefix = f"s3://{bucket}/"
    return uri[len(prefix):] if isinstance(uri, str) and uri.startswith(prefix) else None


def _metrics(evaluation: dict) -> dict[str, float]:
    """The task's metrics of an evaluation.json (processing/metrics.py: `<kind>_metrics`, each {"value": ...})."""
    return {name: entry["value"] for key, group in evaluation.items() if key.endswith("_metrics")
            for name, entry in group.items() if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float))}


def versions(source: Source, names: dict[str, str]) -> list[dict]:
    """The registered versions, newest first: number, approval, when, and the metrics registered with each."""
    found = []
    for package in source.model_packages(names["MODEL_PACKAGE_GROUP"]):
        uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri", "")
        key = _s3_key(uri, names["BUILD_BUCKET"])
        evaluation = json.loads(source.read(names["BUILD_BUCKET"], key)) if key else {}
        gate = evaluation.get("gate", {})
        found.append({"version": package.get("ModelPackageVersion"), "arn": package["ModelPackageArn"],
                      "approval": package.get("ModelApprovalStatus"), "created": str(package.get("CreationTime", "")),
                      "task": evaluation.get("task"), "gate_metric": gate.get("metric"), "gate_value": gate.get("value"),
                      "gate_threshold": gate.get("threshold"), "gate_better": gate.get("better"), "metrics": _metrics(evaluation)})
    return sorted(found, key=lambda v: -(v["version"] or 0))


def deployed(source: Source, names: dict[str, str]) -> dict | None:
    """The latest deployment record: the version DeployApproved put in service last (and handed to the monitor)."""
    records = [(when, key) for key, when in source.objects(names["DEPLOY_BUCKET"], "runs/")
               if key.endswith("/" + DEPLOYMENT_RECORD)]
    if not records:
        return None
    when, key = max(records)
    record = json.loads(source.read(names["DEPLOY_BUCKET"], key))
    return {"model_package_arn": record["model_package_arn"], "endpoint": record.get("endpoint"), "since": when}


def monitor_rows(source: Source, names: dict[str, str]) -> list[dict]:
    """The monitor's newest WINDOWS_SHOWN windows (one row each, contract/results.py), oldest first."""
    listed = sorted(((when, key) for key, when in source.objects(names["MONITOR_BUCKET"], MONITOR_ROWS)
                     if key.endswith(".json")), reverse=True)[:WINDOWS_SHOWN]
    rows = [json.loads(source.read(names["MONITOR_BUCKET"], key)) for _, key in listed]
    return sorted(rows, key=lambda row: (row["window_end"], row["window_start"]))


def latest(rows: list[dict], column: str) -> tuple[Any, str | None]:
    """A column's value in the newest window that has one (a quiet hour has no drift share, an hour without ground
    truth no live metric), and that window's end."""
    for row in reversed(rows):
        if row.get(column) is not None:
            return row[column], row["window_end"]
    return None, None


def alarms(source: Source, names: dict[str, str]) -> list[dict]:
    """The monitor's alarms (drift, quality, bias, attributions, the endpoint's errors and latency), those in
    ALARM first."""
    found = [{"alarm": a["AlarmName"], "state": a["StateValue"], "since": str(a.get("StateUpdatedTimestamp", "")),
              "what": a.get("AlarmDescription", "")} for a in source.alarms(names["ALARM_PREFIX"])]
    return sorted(found, key=lambda a: (a["state"] != "ALARM", a["alarm"]))


def gather(source: Source, names: dict[str, str]) -> dict:
    rows = monitor_rows(source, names)
    try:
        shown_alarms = alarms(source, names)
    except Exception as error:  # noqa: BLE001 - a refused or failed DescribeAlarms leaves the rest of the page
        shown_alarms = [{"alarm": "(not available)", "state": "", "since": "", "what": str(error)}]
    found = {"versions": versions(source, names), "monitor": rows, "alarms": shown_alarms}
    # What serves: the version the monitor found behind the endpoint in its newest window (it reads the endpoint's
    # config), else the last one deployed (listing the deployment bucket's runs, so only then), and how it is known.
    checked = next((row for row in reversed(rows) if row.get("model_package_arn")), None)
    if checked:
        arn, since = checked["model_package_arn"], f"the monitor's window ending {checked['window_end']}"
    else:
        found["deployed"] = deployed(source, names)
        arn = (found["deployed"] or {}).get("model_package_arn")
        since = "the last deployment (no window checked yet)" if arn else None
    found["serving_version"] = next((v for v in found["versions"] if v["arn"] == arn), None)
    found["serving_known_from"] = since
    return found
