"""Lambda handler: publish a monitor report's numbers as CloudWatch metrics (the alarms and the dashboard read them),
and the same numbers as the window's row of the results table under results/monitor/ (contract/results.py), which a
BI tool reads through Athena (docs/quicksight.md).

Namespace NAMESPACE (this copy's own: the function may write no other), dimension EndpointName. Model-quality
metrics appear only for windows whose ground truth has arrived.
"""
from __future__ import annotations

import json
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract import results, run_layout

REPORT = run_layout.uri_pattern(run_layout.REPORT, "report.json")


def metrics(report: dict) -> dict[str, tuple[float, str]]:
    """Metric name -> (value, unit) of one report."""
    values = {"Rows": (report["rows"], "Count")}
    if report["outcome"] != "NoTraffic":  # a quiet window has no drift or data quality to speak of
        values.update(DriftShare=(report["drift"]["share"], "None"),
                      DriftedFeatures=(len(report["drift"]["drifted"]), "Count"),
                      DataQualityIssues=(report["data_quality"]["violations"], "Count"))
    if report.get("predictions"):
        values["PredictionPSI"] = (report["predictions"]["psi"], "None")
    quality = report.get("model_quality")
    if quality:  # the task's metrics as Live<Metric>; one the labelled rows cannot give (None) is not published
        values["LabelledRows"] = (quality["rows"], "Count")
        values.update({f"Live{name[0].upper()}{name[1:]}": (value, "None")
                       for name, value in quality["metrics"].items() if value is not None})
        if quality["gate"]["live"] is not None:
            values.update(LiveGateMetric=(quality["gate"]["live"], "None"),
                          GateMetricWorsening=(quality["gate"]["worsening"], "None"))
    widenings = [column["widening"] for column in (report.get("bias") or {}).values()
                 if column["widening"] is not None]
    if widenings:  # the widest opening of a gap between groups, over the bias columns
        values["BiasGapWidening"] = (max(widenings), "None")
    explained = report.get("attribution") or {}
    if explained.get("ndcg") is not None:  # only a built-in XGBoost model with enough rows is explained
        values["AttributionNDCG"] = (explained["ndcg"], "None")
    return values


def handler(event: dict, context: Any, s3_client=None, cloudwatch_client=None) -> dict:
    uri, bucket = event.get("report_uri", ""), os.environ["DATA_BUCKET"]
    match = REPORT.fullmatch(uri if isinstance(uri, str) else "")
    if not match or match["bucket"] != bucket:
        raise ValueError(f"report_uri must be a run's report/report.json in s3://{bucket}/, got {uri!r}")
    s3 = s3_client or boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=bucket, Key=match["key"])["Body"].read())
    values = metrics(report)
    dimensions = [{"Name": "EndpointName", "Value": os.environ["ENDPOINT_NAME"]}]
    (cloudwatch_client or boto3.client("cloudwatch")).put_metric_data(
        Namespace=os.environ["NAMESPACE"],
        MetricData=[{"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit,
                     "Timestamp": report["window"]["end"]} for name, (value, unit) in values.items()])
    # The window's row, one per run (create-only: a run's row is never rewritten). The key is the run's own, so one
    # already there was written by an earlier attempt of this run, from the same report: a retry goes on.
    execution = match["key"].split("/")[1]
    row = results.row(report, {name: value for name, (value, _) in values.items()})
    try:
        s3.put_object(Bucket=bucket, Key=f"{results.RESULTS}{execution}.json", IfNoneMatch="*",
                      Body=(json.dumps(row, separators=(",", ":")) + "\n").encode(), ContentType="application/json")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
    drift = report.get("drift", {"share": 0, "drifted": []})
    return {"outcome": report["outcome"], "published": sorted(values), "drift_share": drift["share"],
            "drifted": drift["drifted"], "data_quality_issues": report.get("data_quality", {}).get("violations", 0),
            "model_quality": report.get("model_quality")}
