"""The loop's end, offline: after a deployment, raw traffic like training's, then a drifted batch; MonitorEndpoint
checks each hour as its schedule would; CloudWatch evaluates the alarms; the drift alarm notifies and, with
retrain_on_drift, starts BuildAndRegister.

Requests carry the hour they arrive in (the local endpoint's clock), two hours back, so each batch has an hour of
its own, as it would on AWS an hour apart.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import random
from pathlib import Path
from typing import Callable

import boto3

from offline.cloud.account import LocalCloud
from contract.data import finite_number  # a numeric column is one the monitor reads as numbers

MONITOR, BUILD = "MonitorEndpoint", "BuildAndRegister"
HOUR = datetime.timedelta(hours=1)
BATCH = 25  # rows per request
# Rows of traffic per demonstrated hour: a seeded sample of the test set, in its order, so a large data set's run
# lasts as long as its jobs, not as long as sending every test row through the local endpoint twice.
HOURLY_ROWS = 2000


def sample(rows: list[list[str]], size: int = HOURLY_ROWS) -> list[list[str]]:
    if len(rows) <= size:
        return rows
    return [rows[i] for i in sorted(random.Random(0).sample(range(len(rows)), size))]


def send(cloud: LocalCloud, endpoint: str, rows: list[list[str]], hour: datetime.datetime, tag: str) -> int:
    """Raw CSV rows to the endpoint as a client sends them (each value's text), each request with an InferenceId."""
    cloud.sagemaker.hosting.clock = lambda: hour + datetime.timedelta(minutes=10)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    for start in range(0, len(rows), BATCH):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows[start:start + BATCH])
        body = out.getvalue().rstrip("\n")
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body, InferenceId=f"{tag}-{start}")
    return len(rows)


def drifted(rows: list[list[str]]) -> list[list[str]]:
    """The same rows with the first numeric feature moved past the range training saw and the last one shrunk;
    text (categorical) and missing values stay as they were."""
    numeric = [c for c in range(len(rows[0])) if any(finite_number(r[c]) is not None for r in rows)
               and all(finite_number(r[c]) is not None or r[c] in ("", "NA") for r in rows)]
    if not numeric:
        return rows
    first, last = numeric[0], numeric[-1]
    values = [finite_number(r[first]) for r in rows if finite_number(r[first]) is not None]
    shift = 0.6 * (max(values) - min(values)) + 1
    changed = []
    for row in rows:
        row = list(row)
        if finite_number(row[first]) is not None:
            row[first] = repr(finite_number(row[first]) + shift)
        if last != first and finite_number(row[last]) is not None:
            row[last] = repr(finite_number(row[last]) * 0.3)
        changed.append(row)
    return changed


def close_the_loop(cloud: LocalCloud, build_output: dict, deployed: dict, wait: Callable[[list[str]], dict],
                   report_folder: Path) -> dict:
    """Send traffic, check it, evaluate the alarms; returns what happened, by step."""
    bucket, prefix = cloud.workflows[BUILD].data_bucket, build_output["run_prefix"]
    raw = cloud.read(f"s3://{bucket}/{prefix}input/raw/test.csv").decode()
    everything = list(csv.reader(io.StringIO(raw)))  # the rows a client sends: no header, each value as written
    rows = sample(everything)
    if len(rows) < len(everything):
        print(f"traffic: a sample of {len(rows)} of the {len(everything)} test rows per hour", flush=True)
    now = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    steps, endpoint = {}, deployed["endpoint"]
    # The labelled data the retraining would learn from is already waiting under incoming/.
    cloud.s3.put_object(Bucket=bucket, Key="incoming/recent.csv",
                        Body=cloud.read(f"s3://{bucket}/{prefix}input/raw/train.csv"))
    for name, hour, batch in (("traffic", now - 2 * HOUR, rows), ("drifted", now - HOUR, drifted(rows))):
        print(f"sending {send(cloud, endpoint, batch, hour, name)} raw rows ({name}) to {endpoint}, hour {hour:%H}:00",
              flush=True)
        end = hour + HOUR
        arn = cloud.start(MONITOR, {"window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}, f"monitor-{name}-{end:%Y%m%d%H}")
        described = wait([arn])[arn]
        output = json.loads(described.get("output") or "{}")
        changes = cloud.alarms.evaluate(end)
        steps[name] = {"execution": arn, "status": described["status"], "output": output,
                       "alarms": [{k: c[k] for k in ("alarm", "state", "value")} for c in changes],
                       "started": [d["result"] for c in changes for d in c["delivered"]]}
        if output.get("page"):
            report_folder.mkdir(parents=True, exist_ok=True)
            page = report_folder / f"monitor-{name}.html"
            page.write_bytes(cloud.read(output["page"]))
            (report_folder / f"monitor-{name}.json").write_bytes(cloud.read(output["report"]))
            steps[name]["page"] = str(page)
        fired = ", ".join(f"{c['alarm']} {c['state']}" for c in changes) or "unchanged"
        print(f"monitor ({name}): {output.get('outcome', described['status'])}, drift share "
              f"{output.get('drift_share')}, drifted {output.get('drifted')}; alarms: {fired}", flush=True)
    retraining = steps["drifted"]["started"]
    if retraining:
        print(f"retraining started by the drift alarm: {retraining[0]}", flush=True)
        steps["retraining"] = {arn: wait([arn])[arn]["status"] for arn in retraining}
    else:
        print("retrain_on_drift is off: the drift alarm only notified (make run RUN_ARGS='--context "
              "retrain_on_drift=true' closes the loop)", flush=True)
    return steps
