"""Monitoring without SageMaker Model Monitor: the baseline and monitor scripts, and the loop offline (deploy, traffic,
drift, no traffic, ground truth, alarms, retraining on drift)."""
from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from offline.cli import site
from offline.cloud.account import LocalCloud
from stacks.workflows.workflow_stack import WORKFLOWS
from stacks.workflows.monitor_endpoint import ENDPOINT_METRICS, EXECUTION_METRICS, MONITOR_METRICS
from tests.cfn import arn, get_att, of_type
from tests.conftest import ROOT, load_lambda_module, load_processing_module
from tests.test_iam import statements, trust

sys.path.insert(0, str(ROOT / "processing"))
import baseline  # noqa: E402
import monitor  # noqa: E402

metrics = load_processing_module("metrics")

BR, DA, MON = "BuildAndRegister", "DeployApproved", "MonitorEndpoint"
ENDPOINT = "mlkit-da-endpoint"
HOUR = datetime.timedelta(hours=1)


# -- the scripts ----------------------------------------------------------------------------------
def frame(rows: int, seed: int, shift: float = 0.0, colours=("red", "green", "blue")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"label": rng.integers(0, 2, rows), "size": rng.normal(50 + shift, 10, rows),
                         "colour": rng.choice(colours, rows)})
    data.loc[data.index[::20], "size"] = np.nan  # 5% missing
    return data


def test_baseline_describes_numbers_categories_and_missing_values():
    statistics, constraints = baseline.baseline(frame(2000, 1), "label")
    size, colour = statistics["features"]
    assert (size["name"], size["type"], colour["name"], colour["type"]) == ("size", "numeric", "colour", "categorical")
    assert size["missing_rate"] == pytest.approx(0.05) and size["count"] == 2000
    present = frame(2000, 1)["size"].dropna()
    assert size["percentiles"][0] == present.min() and size["percentiles"][100] == present.max()
    assert size["percentiles"][25] == pytest.approx(np.percentile(present, 25))
    assert sum(size["histogram"]["counts"]) == len(present) and len(size["histogram"]["edges"]) == 11
    assert set(colour["frequencies"]) == {"red", "green", "blue"} and sum(colour["frequencies"].values()) == 1
    assert constraints["features"][1] == {"name": "colour", "type": "categorical", "max_missing_rate": 0.0,
                                          "categories": ["blue", "green", "red"]}
    with pytest.raises(baseline.BadInput, match="no 'target' column"):
        baseline.baseline(frame(10, 1), "target")


def folders(tmp_path, train: pd.DataFrame, traffic: pd.DataFrame, labels: list[int] | None = None,
            evaluation: dict | None = None, answers: list[str] | None = None):
    """The monitor job's inputs as the workflow stages them: baseline files, captured requests (answered with
    `answers`, default a binary score from size), ground truth."""
    statistics, constraints = baseline.baseline(train, "label")
    evaluation = evaluation or {
        "task": "binary", "classes": ["0", "1"],
        "binary_classification_metrics": {"auc": {"value": 0.9}, "accuracy": {"value": 0.8}},
        "gate": {"metric": "auc", "value": 0.9, "better": "higher", "threshold": 0.8, "passed": True},
        "predictions": {**baseline.numeric_summary(np.linspace(0, 1, 500)), "type": "numeric"}}
    for name, document in (("baseline/statistics.json", statistics), ("constraints/constraints.json", constraints),
                           ("evaluation/evaluation.json", evaluation),
                           ("traffic/window.json", {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z"})):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(document))
    features = traffic.drop(columns="label")
    scores = np.clip(features["size"].fillna(50).to_numpy() / 100, 0, 1)
    answers = answers or [str(s) for s in scores]
    lines = []
    for start in range(0, len(features), 10):  # requests of ten rows, as a client would batch them
        part = features.iloc[start:start + 10]
        lines.append(json.dumps({"captureData": {
            "endpointInput": {"data": part.to_csv(header=False, index=False), "encoding": "CSV", "mode": "INPUT"},
            "endpointOutput": {"data": "".join(f"{a}\n" for a in answers[start:start + 10]), "encoding": "CSV"}},
            "eventMetadata": {"eventId": f"e{start}", "inferenceId": f"r{start}"}, "eventVersion": "0"}))
    for folder in ("capture", "labelled"):
        (tmp_path / "traffic" / folder / "2026/01/01/10").mkdir(parents=True)
        (tmp_path / "traffic" / folder / "2026/01/01/10/a.jsonl").write_text("\n".join(lines) + "\n")
    if labels is not None:
        (tmp_path / "traffic/ground-truth/2026/01/01/10").mkdir(parents=True)
        (tmp_path / "traffic/ground-truth/2026/01/01/10/labels.jsonl").write_text("".join(
            json.dumps({"groundTruthData": {"data": "".join(f"{v}\n" for v in labels[s:s + 10]), "encoding": "CSV"},
                        "eventMetadata": {"eventId": f"r{s}"}, "eventVersion": "0"}) + "\n"
            for s in range(0, len(labels), 10)))
    return scores


def test_the_monitor_finds_no_drift_in_traffic_like_training(tmp_path):
    folders(tmp_path, frame(3000, 1), frame(600, 2))
    report = monitor.analyze(tmp_path)
    assert report["outcome"] == "NoDrift" and report["drift"]["share"] == 0 and report["rows"] == 600
    size = report["drift"]["features"][0]
    assert size["psi"] < 0.1 and size["ks_p_value"] > 0.01 and report["data_quality"]["violations"] == 0
    assert report["model_quality"] is None  # no ground truth yet


def test_the_monitor_finds_drift_and_data_quality_issues(tmp_path):
    traffic = frame(600, 2, shift=30, colours=("red", "purple"))
    folders(tmp_path, frame(3000, 1), traffic)
    report = monitor.analyze(tmp_path)
    assert report["outcome"] == "Drift" and report["drift"]["drifted"] == ["size", "colour"]
    size, colour = report["drift"]["features"]
    present = traffic["size"].dropna().to_numpy()
    statistics = json.loads((tmp_path / "baseline/statistics.json").read_text())["features"][0]
    # The PSI is the one over the baseline's bins, recomputed here from its definition.
    edges = statistics["histogram"]["edges"]
    current = np.histogram(np.clip(present, edges[0], edges[-1]), bins=edges)[0] / len(present)
    expected = np.asarray(statistics["histogram"]["counts"]) / sum(statistics["histogram"]["counts"])
    e, c = np.clip(expected, 1e-4, None), np.clip(current, 1e-4, None)
    assert size["psi"] == pytest.approx(float(np.sum((c - e) * np.log(c / e))), abs=1e-5) and size["psi"] > 0.2
    assert size["ks_p_value"] < 1e-10
    # Chi-square over the trained categories (blue, green, red); the unseen purple is a data-quality issue.
    trained = json.loads((tmp_path / "baseline/statistics.json").read_text())["features"][1]["frequencies"]
    red = int((traffic["colour"] == "red").sum())
    expected_counts = np.asarray([trained[c] for c in ("blue", "green", "red")]) * red
    assert colour["chi2_statistic"] == pytest.approx(stats.chisquare([0, 0, red], expected_counts).statistic, rel=1e-5)
    assert colour["quality"]["unseen"] == ["purple"] and "unseen_category" in colour["quality"]["violations"]
    assert "out_of_range" in size["quality"]["violations"] and report["data_quality"]["violations"] == 2


def test_model_quality_is_computed_once_ground_truth_arrives_joined_by_inference_id(tmp_path):
    traffic = frame(400, 3)
    labels = [int(v) for v in traffic["label"]]
    scores = folders(tmp_path, frame(3000, 1), traffic, labels)
    quality = monitor.analyze(tmp_path)["model_quality"]
    assert quality["rows"] == 400
    ranks = stats.rankdata(scores)
    positives = sum(labels)
    expected_auc = (ranks[np.asarray(labels) == 1].sum() - positives * (positives + 1) / 2) / (positives * (400 - positives))
    assert quality["metrics"]["auc"] == pytest.approx(expected_auc, abs=1e-6)
    assert quality["metrics"]["accuracy"] == pytest.approx(np.mean((scores >= 0.5) == (np.asarray(labels) == 1)),
                                                           abs=1e-6)
    assert set(quality["metrics"]) == {"accuracy", "auc", "precision", "recall", "f1"}
    assert quality["gate"] == {"metric": "auc", "better": "higher", "registered": 0.9,
                               "live": quality["metrics"]["auc"], "worsening": pytest.approx(0.9 - expected_auc,
                                                                                             abs=1e-6)}


def labelled(tmp_path, task: str, classes, truth: list[str], answers: list[str], gate: str):
    """A window of `task` traffic whose ground truth arrived, with the test set's evaluation as registered (the
    answers on it are the traffic's own, `truth` its labels): the live metrics equal the registered ones."""
    evaluation = metrics.evaluate(task, classes, "".join(f"{v}\n" for v in truth), "\n".join(answers))
    evaluation["gate"] = metrics.gate(evaluation, gate, None)
    folders(tmp_path, frame(300, 1), frame(len(truth), 2), labels=truth, evaluation=evaluation, answers=answers)
    return monitor.analyze(tmp_path)["model_quality"]


@pytest.mark.parametrize(("task", "gate"), [("multiclass", "accuracy"), ("multiclass", "f1"),
                                            ("regression", "rmse"), ("regression", "r2")])
def test_model_quality_covers_every_task_and_a_planted_drop_is_a_worsening(tmp_path, task, gate):
    """Multiclass and regression models get their task's metrics on ground truth, by processing/metrics.py; the
    same answers as registered are no worse, and answers made wrong for a third of the rows are, beyond the
    alarm's 0.1 (below for accuracy, F1 and R^2; 10% above for RMSE)."""
    from stacks.workflows.monitor_endpoint import QUALITY_WORSENING

    rng = np.random.default_rng(11)
    if task == "multiclass":
        classes = ["ant", "bee", "cow"]
        truth_index = rng.integers(0, 3, 300)
        truth = [classes[k] for k in truth_index]
        good = [",".join("0.8" if j == k else "0.1" for j in range(3)) for k in truth_index]
        bad = [",".join("0.8" if j == (k + 1) % 3 else "0.1" for j in range(3)) if i % 3 == 0 else a
               for i, (k, a) in enumerate(zip(truth_index, good))]
    else:
        classes = None
        values = rng.normal(1000, 100, 300).tolist()
        truth = [repr(v) for v in values]
        good = [repr(v + float(rng.normal(0, 10))) for v in values]
        bad = [repr(float(a) + 300) if i % 3 == 0 else a for i, a in enumerate(good)]
    same = labelled(tmp_path / "same", task, classes, truth, good, gate)
    assert same["rows"] == 300 and same["task"] == task
    assert set(same["metrics"]) == set(metrics.task_of(task).metrics)
    assert same["gate"]["live"] == pytest.approx(same["gate"]["registered"], abs=1e-6)
    assert same["gate"]["worsening"] == pytest.approx(0, abs=1e-6)
    # The registered evaluation is the good answers'; the traffic now answers badly.
    evaluation = json.loads((tmp_path / "same" / "evaluation/evaluation.json").read_text())
    folders(tmp_path / "worse", frame(300, 1), frame(300, 2), labels=truth, evaluation=evaluation, answers=bad)
    worse = monitor.analyze(tmp_path / "worse")["model_quality"]
    assert worse["gate"]["worsening"] > QUALITY_WORSENING
    live = metrics.measure(task, classes, metrics.parse_labels(task, classes, "\n".join(truth)),
                           metrics.parse_answers(task, classes, "\n".join(bad)), [gate])[gate]
    assert worse["gate"]["live"] == pytest.approx(live, abs=1e-6)


def test_a_metric_the_labelled_rows_cannot_give_is_none_and_not_published(tmp_path):
    evaluation = metrics.evaluate("binary", ["0", "1"], "0\n1\n" * 10, "0.2\n0.8\n" * 10)
    evaluation["gate"] = metrics.gate(evaluation, "auc", None)
    folders(tmp_path, frame(300, 1), frame(20, 2), labels=[1] * 20, evaluation=evaluation,
            answers=["0.7"] * 10 + ["0.3"] * 10)
    quality = monitor.analyze(tmp_path)["model_quality"]
    assert quality["metrics"]["auc"] is None and quality["metrics"]["accuracy"] == 0.5  # every label is 1
    assert quality["gate"]["live"] is None and quality["gate"]["worsening"] is None
    published = load_lambda_module("publish_metrics", "handler").metrics(
        {"rows": 20, "outcome": "NoTraffic", "model_quality": quality})
    assert "LiveAuc" not in published and "GateMetricWorsening" not in published
    assert published["LiveAccuracy"] == (0.5, "None")


def test_the_monitor_refuses_rows_that_do_not_match_the_baseline(tmp_path):
    folders(tmp_path, frame(300, 1), frame(20, 2))
    extra = tmp_path / "traffic/capture/2026/01/01/10/b.jsonl"
    extra.write_text(json.dumps({"captureData": {"endpointInput": {"data": "1,2,3\n", "encoding": "CSV"}},
                                 "eventMetadata": {"eventId": "x"}}) + "\n")
    with pytest.raises(monitor.BadInput, match="b.jsonl line 1 has a row of 3 values; the baseline has 2 features"):
        monitor.analyze(tmp_path)


def multiclass_answers(rng, rows: int, weights) -> list[str]:
    """Answers of a three-class model whose predicted class is drawn with `weights`."""
    answers = []
    for k in rng.choice(3, rows, p=weights):
        probabilities = [0.2, 0.2, 0.2]
        probabilities[k] = 0.6
        answers.append(",".join(map(str, probabilities)))
    return answers


def test_multiclass_answers_are_checked_as_predicted_class_frequencies(tmp_path):
    rng = np.random.default_rng(4)
    classes = ["ant", "bee", "cow"]
    test_answers = multiclass_answers(rng, 900, [0.5, 0.5, 0.0])  # cow is never predicted on the test set
    evaluation = metrics.evaluate("multiclass", classes, "".join(f"{classes[i % 3]}\n" for i in range(900)),
                                  "\n".join(test_answers))
    assert evaluation["predictions"]["frequencies"]["cow"] == 0
    like_test = tmp_path / "like"
    folders(like_test, frame(300, 1), frame(600, 2), evaluation=evaluation,
            answers=multiclass_answers(rng, 600, [0.5, 0.5, 0.0]))
    found = monitor.analyze(like_test)["predictions"]
    assert not found["drifted"] and found["chi2_p_value"] > 0.01 and found["chart"]["bins"] == classes
    assert monitor.analyze(like_test)["model_quality"] is None  # no ground truth arrived
    moved = tmp_path / "moved"  # a tenth of the answers now predict cow
    folders(moved, frame(300, 1), frame(600, 2), evaluation=evaluation,
            answers=multiclass_answers(rng, 600, [0.45, 0.45, 0.1]))
    found = monitor.analyze(moved)["predictions"]
    assert found["drifted"] and found["chi2_p_value"] < 1e-10 and found["chart"]["current"][2] == pytest.approx(
        0.1, abs=0.03)
    assert "chi-square" in monitor.render_html(monitor.analyze(moved))


def test_regression_answers_are_checked_against_their_own_range(tmp_path):
    rng = np.random.default_rng(5)
    predicted = rng.normal(1000, 50, 2000)
    evaluation = metrics.evaluate("regression", None, "".join(f"{v}\n" for v in predicted + 1),
                                  "".join(f"{v}\n" for v in predicted))
    edges = evaluation["predictions"]["histogram"]["edges"]
    assert edges[0] == predicted.min() and edges[-1] == predicted.max()  # bins where the values are, not [0, 1]
    same = tmp_path / "same"
    folders(same, frame(300, 1), frame(600, 2), evaluation=evaluation,
            answers=[str(v) for v in rng.normal(1000, 50, 600)])
    assert not monitor.analyze(same)["predictions"]["drifted"]
    shifted = tmp_path / "shifted"
    folders(shifted, frame(300, 1), frame(600, 2), evaluation=evaluation,
            answers=[str(v) for v in rng.normal(1060, 50, 600)])
    found = monitor.analyze(shifted)["predictions"]
    assert found["drifted"] and found["ks_p_value"] < 1e-10 and found["psi"] > 0.2


def test_ground_truth_is_matched_to_the_classes_by_text_or_by_number():
    assert monitor.class_index("yes", ["no", "yes"]) == 1 and monitor.class_index("no", ["no", "yes"]) == 0
    assert monitor.class_index("1.0", ["0", "1"]) == 1 and monitor.class_index("2", ["0", "1", "2.0"]) == 2
    with pytest.raises(monitor.BadInput, match="ground truth label 'maybe' is not one of the classes"):
        monitor.class_index("maybe", ["no", "yes"])
    with pytest.raises(monitor.BadInput, match="ground truth label 'high' is not a finite number"):
        monitor.truth_of("high", {"task": "regression"})


def test_the_monitor_refuses_answers_that_break_the_model_contract(tmp_path):
    evaluation = metrics.evaluate("multiclass", ["a", "b", "c"], "a\nb\nc\n", "0.6,0.2,0.2\n0.2,0.6,0.2\n0.2,0.2,0.6\n")
    folders(tmp_path, frame(300, 1), frame(20, 2), evaluation=evaluation, answers=["0.5,0.5"] * 20)
    with pytest.raises(monitor.BadInput, match=r"a.jsonl line 1 is not a data-capture record: the answer line 1 has "
                                               r"2 values \('0.5,0.5'\); a multiclass model answers 3 probabilities"):
        monitor.analyze(tmp_path)


# -- offline: the loop ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cloud(synthesized):
    with LocalCloud(synthesized["retrain"].outdir) as local:  # retrain_on_drift=true
        yield local


def wait(cloud: LocalCloud, arn_: str) -> dict:
    described = cloud.wait([arn_])[arn_]
    return {**described, "output": json.loads(described.get("output") or "null")}


def check(cloud: LocalCloud, name: str, window_end: datetime.datetime) -> dict:
    """A monitor run, as the schedule starts it for the hour that just ended."""
    return wait(cloud, cloud.start(MON, {"window_end": f"{window_end:%Y-%m-%dT%H:%M:%SZ}"}, name))


def send(cloud: LocalCloud, rows: np.ndarray, hour: datetime.datetime, tag: str) -> list[str]:
    """Raw rows to the endpoint as a client sends them, in requests of 25 with an inference id each."""
    cloud.sagemaker.hosting.clock = lambda: hour + datetime.timedelta(minutes=10)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    ids = []
    for start in range(0, len(rows), 25):
        ids.append(f"{tag}-{start}")
        body = "\n".join(",".join(f"{v:g}" for v in row) for row in rows[start:start + 25])
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=body, InferenceId=ids[-1])
    return ids


@pytest.fixture(scope="module")
def loop(cloud):
    build = wait(cloud, cloud.start(BR, {"rows": 1500, "seed": 3}, "monitored-v1"))
    assert build["status"] == "SUCCEEDED", build.get("cause")
    (delivery,) = cloud.approve(build["output"]["model_package_arn"])
    deployed = wait(cloud, delivery["result"])
    assert deployed["status"] == "SUCCEEDED", deployed.get("cause")
    bucket = cloud.workflows[BR].data_bucket
    raw = f"s3://{bucket}/runs/monitored-v1/input/"
    test = pd.read_csv(pd.io.common.BytesIO(cloud.read(f"{raw}raw/test.csv")), header=None).to_numpy(dtype=float)
    labels = [int(v) for v in cloud.read(f"{raw}test-labels/labels.csv").decode().split()]
    now = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    quiet, normal, drifted, later = now - 6 * HOUR, now - 5 * HOUR, now - 4 * HOUR, now - 3 * HOUR
    steps = {"test": test, "labels": labels, "hours": (quiet, normal, drifted, later)}
    steps["before_deploy_checked"] = deployed
    steps["quiet"] = check(cloud, "quiet", quiet + HOUR)
    steps["normal_ids"] = send(cloud, test, normal, "n")
    steps["normal"] = check(cloud, "normal", normal + HOUR)
    steps["alarms_normal"] = cloud.alarms.evaluate(normal + HOUR)
    shifted = test.copy()
    shifted[:, 0] += 60  # x moves well past the range training saw
    shifted[:, 1] *= 0.3
    # New labelled data lands under incoming/ (for the retraining the drift alarm starts).
    cloud.s3.put_object(Bucket=bucket, Key="incoming/fresh.csv", Body=cloud.read(f"{raw}raw/train.csv"))
    send(cloud, shifted, drifted, "d")
    steps["drifted"] = check(cloud, "drifted", drifted + HOUR)
    steps["alarms_drifted"] = cloud.alarms.evaluate(drifted + HOUR)
    # Ground truth for the normal hour arrives later, in the documented layout, joined by inference id.
    truth = "".join(json.dumps({"groundTruthData": {"data": "".join(f"{v}\n" for v in labels[i * 25:(i + 1) * 25]),
                                                    "encoding": "CSV"},
                                "eventMetadata": {"eventId": request}, "eventVersion": "0"}) + "\n"
                    for i, request in enumerate(steps["normal_ids"]))
    cloud.s3.put_object(Bucket=cloud.workflows["DeployApproved"].data_bucket, Key=f"ground-truth/{normal:%Y/%m/%d/%H}/labels.jsonl",
                        Body=truth.encode())
    steps["labelled"] = check(cloud, "labelled", later + HOUR)
    return steps


def report(cloud: LocalCloud, run: dict) -> dict:
    return json.loads(cloud.read(run["output"]["report"]))


def test_an_hour_without_traffic_is_a_named_outcome_not_a_failure(loop):
    run = loop["quiet"]
    assert run["status"] == "SUCCEEDED" and run["output"]["outcome"] == "NoTraffic"
    assert run["output"]["details"]["capture_files"] == 0


def test_traffic_like_training_shows_no_drift_and_publishes_its_metrics(cloud, loop):
    run = loop["normal"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    out = run["output"]
    assert out["outcome"] == "NoDrift" and out["drift_share"] == 0 and out["data_quality_issues"] == 0
    found = report(cloud, run)
    assert found["rows"] == len(loop["test"]) and found["requests"] == len(loop["normal_ids"])
    assert [f["name"] for f in found["drift"]["features"]] == ["x", "y"]
    # The test rows, served raw by the registered pipeline, score exactly as the evaluation scored them.
    assert found["predictions"]["ks_statistic"] <= 0.02 and not found["predictions"]["drifted"]
    # The built-in XGBoost model's own SHAP values, on its training sample and on the traffic, rank alike.
    explained = found["attribution"]
    assert explained["outcome"] == "NoDrift" and explained["ndcg"] >= 0.9, explained
    assert list(explained["baseline"]) == ["x", "y"] and explained["rows"] == len(loop["test"])
    points = cloud.cloudwatch.get_metric_statistics(
        Namespace="mlkit-mon", MetricName="DriftShare", Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        StartTime=loop["hours"][1], EndTime=loop["hours"][1] + 2 * HOUR, Period=3600, Statistics=["Maximum"])
    assert [p["Maximum"] for p in points["Datapoints"]] == [0.0]
    assert all(change["state"] == "OK" for change in loop["alarms_normal"])
    # The same numbers, as the window's row of the results table a BI tool reads (contract/results.py).
    bucket, execution = cloud.workflows[MON].data_bucket, run["output"]["run_prefix"].split("/")[1]
    row = json.loads(cloud.read(f"s3://{bucket}/results/monitor/{execution}.json"))
    assert (row["outcome"], row["drift_share"], row["rows_checked"]) == ("NoDrift", 0, len(loop["test"]))


def test_a_drifted_batch_is_found_and_its_alarm_notifies_and_starts_retraining(cloud, loop):
    run = loop["drifted"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    found = report(cloud, run)
    assert run["output"]["outcome"] == "Drift" and found["drift"]["drifted"] == ["x", "y"]
    # Data drift, not attribution drift: x moved, yet it still drives the model's answers more than y does.
    assert found["attribution"]["outcome"] == "NoDrift", found["attribution"]
    x = found["drift"]["features"][0]
    assert x["psi"] > 1 and x["ks_p_value"] < 1e-10 and "out_of_range" in x["quality"]["violations"]
    fired = {change["alarm"]: change for change in loop["alarms_drifted"]}
    assert fired["mlkit-mon-drift"]["state"] == "ALARM" and fired["mlkit-mon-data-quality"]["state"] == "ALARM"
    sent = [n for n in cloud.notifications() if n["subject"] == 'ALARM: "mlkit-mon-drift" in us-east-1']
    assert sent and json.loads(sent[0]["message"])["NewStateValue"] == "ALARM"
    (retrain,) = [d for d in fired["mlkit-mon-drift"]["delivered"] if d["rule"] == "mlkit-mon-retrain-on-drift"]
    retrained = wait(cloud, retrain["result"])
    assert retrained["status"] == "SUCCEEDED", retrained.get("cause")
    assert json.loads(retrained["input"]) == {"dataset_uri": f"s3://{cloud.workflows[BR].data_bucket}/incoming/"}
    assert cloud.sagemaker.model_packages[retrained["output"]["model_package_arn"]]["ModelApprovalStatus"] == \
        "PendingManualApproval"  # a person still approves


def test_model_quality_is_scored_once_ground_truth_arrives(cloud, loop):
    run = loop["labelled"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert run["output"]["outcome"] == "NoTraffic"  # a quiet hour, but the labels that arrived are scored
    quality = run["output"]["model_quality"]
    # The same numbers, recomputed from what the endpoint answered for those requests and the true labels.
    scores = []
    bucket = cloud.workflows[MON].data_bucket
    for key in cloud.keys(bucket, f"{run['output']['run_prefix']}traffic/labelled/"):
        for line in cloud.read(f"s3://{bucket}/{key}").decode().splitlines():
            record = json.loads(line)
            if record["eventMetadata"].get("inferenceId", "").startswith("n-"):
                start = int(record["eventMetadata"]["inferenceId"][2:])
                scores += [(start + i, float(v)) for i, v in
                           enumerate(record["captureData"]["endpointOutput"]["data"].split())]
    scored = np.asarray([s for _, s in sorted(scores)])
    truth = np.asarray(loop["labels"])
    assert quality["rows"] == len(truth) == len(scored)
    assert quality["metrics"]["accuracy"] == pytest.approx(np.mean((scored >= 0.5) == (truth == 1)), abs=1e-6)
    if 0 < truth.sum() < len(truth):
        ranks = stats.rankdata(scored)
        positives = truth.sum()
        auc = (ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(truth) - positives))
        assert quality["metrics"]["auc"] == pytest.approx(auc, abs=1e-6)
    row = json.loads(cloud.read(f"s3://{bucket}/results/monitor/{run['output']['run_prefix'].split('/')[1]}.json"))
    assert row["live_metrics"] == {k: v for k, v in quality["metrics"].items() if v is not None}
    assert row["live_gate_metric"] == quality["gate"]["live"] and row["labelled_rows"] == quality["rows"]


# -- as synthesized: alarms, retraining, dashboard, no Model Monitor -------------------------------
def topic(template: dict) -> dict:
    """The copy's topic: BuildAndRegister's, read from SSM at deploy time."""
    (parameter,) = [k for k, p in template["Parameters"].items()
                    if p.get("Default") == "/mlkit-br/notification-topic-arn"]
    return {"Ref": parameter}


def alarms(template: dict) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()}


def test_every_alarm_watches_its_metric_and_notifies_the_copys_topic(synthesized):
    template = synthesized["default"].templates[MON]
    found = alarms(template)
    endpoint = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    mine = [{"Name": "EndpointName", "Value": ENDPOINT}]
    expected = {
        "mlkit-mon-drift": ("mlkit-mon", "DriftShare", mine, "Maximum", 3600, 0.3),
        "mlkit-mon-data-quality": ("mlkit-mon", "DataQualityIssues", mine, "Maximum", 3600, 1),
        "mlkit-mon-model-quality": ("mlkit-mon", "GateMetricWorsening", mine, "Maximum", 3600, 0.1),
        "mlkit-mon-bias": ("mlkit-mon", "BiasGapWidening", mine, "Maximum", 3600, 0.2),
        "mlkit-mon-attribution": ("mlkit-mon", "AttributionNDCG", mine, "Minimum", 3600, 0.9),
        "mlkit-mon-endpoint-errors": ("AWS/SageMaker", "Invocation5XXErrors", endpoint, "Sum", 300, 1),
        "mlkit-mon-endpoint-latency": ("AWS/SageMaker", "ModelLatency", endpoint, "p90", 300, 1_000_000),
        **run_alarms("mon"),
        # the queues that keep what the stack gave up on (tests/test_nothing_dropped.py checks them)
        **{name: ("AWS/SQS", "ApproximateNumberOfMessagesVisible", found[name]["Dimensions"], "Maximum", 300, 1)
           for name in ("mlkit-mon-missed", "mlkit-mon-cleanup-gave-up", "mlkit-mon-stop-stranded-jobs-undelivered")},
    }
    assert set(found) == set(expected)
    for name, (namespace, metric, dimensions, statistic, period, threshold) in expected.items():
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"], alarm["Period"]) == (
            namespace, metric, dimensions, period), name
        assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == statistic, name
        operator = "LessThanThreshold" if metric == "AttributionNDCG" else "GreaterThanOrEqualToThreshold"
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
            threshold, operator, 1), name
        assert alarm["TreatMissingData"] == "notBreaching" and alarm["AlarmActions"] == [topic(template)], name


def run_alarms(slug: str) -> dict[str, tuple]:
    machine = [{"Name": "StateMachineArn", "Value": arn("states", f"stateMachine:mlkit-{slug}")}]
    return {f"mlkit-{slug}-failed": ("AWS/States", "ExecutionsFailed", machine, "Sum", 300, 1),
            f"mlkit-{slug}-timed-out": ("AWS/States", "ExecutionsTimedOut", machine, "Sum", 300, 1)}


@pytest.mark.parametrize("configuration", ["default", "kms"])
def test_every_workflow_alone_alarms_on_its_failed_and_timed_out_runs(synthesized, configuration):
    """Each stack, deployed on its own, notifies its own runs that fail or time out: a workflow that shares no
    topic gets one of its own, under a customer managed key CloudWatch may use for that stack's alarms only."""
    for stack, cls in WORKFLOWS.items():
        template = synthesized[configuration].templates[stack]
        slug = cls.spec.slug
        found = {name: alarm for name, alarm in alarms(template).items() if alarm["Namespace"] == "AWS/States"}
        assert set(found) == set(run_alarms(slug)), stack
        for name, (namespace, metric, dimensions, statistic, period, threshold) in run_alarms(slug).items():
            alarm = found[name]
            assert (alarm["MetricName"], alarm["Dimensions"], alarm["Statistic"], alarm["Period"],
                    alarm["Threshold"]) == (metric, dimensions, statistic, period, threshold), name
            if stack in (DA, MON):  # the copy's topic, BuildAndRegister's
                assert alarm["AlarmActions"] == [topic(template)], name
                continue
            (topic_id,) = of_type(template, "AWS::SNS::Topic")
            assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        if stack in (DA, MON):
            continue
        (properties,) = [t["Properties"] for t in of_type(template, "AWS::SNS::Topic").values()]
        key_id = properties["KmsMasterKeyId"]["Fn::GetAtt"][0]
        key = template["Resources"][key_id]["Properties"]
        if configuration == "default":  # a key for the topic alone
            assert key["Description"].endswith("notification topic, which its alarms publish to"), stack
        # BuildAndRegister's topic takes the copy's alarms (DeployApproved's and MonitorEndpoint's too), each
        # workflow's by its own prefix (tests/test_stages.py: no other copy's alarm matches).
        sources = ([arn("cloudwatch", f"alarm:mlkit-{cls.spec.slug}-*") for cls in WORKFLOWS.values()] if stack == BR
                   else arn("cloudwatch", f"alarm:mlkit-{slug}-*"))
        (statement,) = [s for s in key["KeyPolicy"]["Statement"]
                        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
        assert statement == {"Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Effect": "Allow", "Resource": "*",
                             "Principal": {"Service": "cloudwatch.amazonaws.com"},
                             "Condition": {"ArnLike": {"aws:SourceArn": sources},
                                           "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}, stack
        # The workflows' state machines are named so: each alarm watches a machine that exists.
        machines = of_type(template, "AWS::StepFunctions::StateMachine")
        assert [m["Properties"]["StateMachineName"] for m in machines.values()] == [f"mlkit-{slug}"]


def test_retraining_on_drift_is_off_by_default_and_then_starts_only_buildandregister(synthesized):
    def retraining(template: dict) -> list[dict]:
        return [r["Properties"] for r in of_type(template, "AWS::Events::Rule").values()
                if r["Properties"]["Name"] == "mlkit-mon-retrain-on-drift"]

    assert retraining(synthesized["default"].templates[MON]) == []
    template = synthesized["retrain"].templates[MON]
    (props,) = retraining(template)
    assert props["EventPattern"] == {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                                     "resources": [get_att(template, "AlarmDrift/Resource")],
                                     "detail": {"state": {"value": ["ALARM"]}}}
    (target,) = props["Targets"]
    build = arn("states", "stateMachine:mlkit-br")
    assert target["Arn"] == build
    assert statements(template, "StartedByEvents") == [{"Action": "states:StartExecution", "Effect": "Allow",
                                                        "Resource": build}]
    assert trust(template, "StartedByEvents")[0]["Principal"] == {"Service": "events.amazonaws.com"}


def dashboard_body(body: dict) -> dict:
    """The dashboard's JSON, with CloudFormation values (an Fn::Join of text and Refs) as placeholders."""
    parts = body["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "X" for p in parts))


def test_the_dashboard_has_a_widget_per_metric(synthesized):
    template = synthesized["default"].templates[MON]
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "mlkit-mon-dashboard"
    body = dashboard_body(dashboard["Properties"]["DashboardBody"])
    graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    shown = {tuple(m[:2]) for g in graphs for m in g["metrics"]}  # (namespace, metric) of every line
    wanted = {("mlkit-mon", name) for name in MONITOR_METRICS}
    wanted |= {("AWS/States", name) for name in (*EXECUTION_METRICS, "ExecutionTime", "ServiceIntegrationTime")}
    wanted |= {("AWS/SageMaker", name) for name in ENDPOINT_METRICS}
    assert shown == wanted
    # One graph per metric (and per workflow or job): nothing is hidden in a crowded chart.
    assert all(len({tuple(m[:2]) for m in g["metrics"]}) == 1 for g in graphs)
    assert len(graphs) == len(WORKFLOWS) * (len(EXECUTION_METRICS) + 1) + 4 + len(ENDPOINT_METRICS) + len(MONITOR_METRICS)
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    # The stack's own alarms (the monitor's, its runs', its queues'), and the other stacks' run alarms.
    shown_alarms = status["properties"]["alarms"]
    assert len(shown_alarms) == len(alarms(template)) + 2 * (len(WORKFLOWS) - 1)
    assert {f"arn:X:cloudwatch:X:X:alarm:mlkit-{cls.spec.slug}-{suffix}" for stack, cls in WORKFLOWS.items()
            if stack != MON for suffix in ("failed", "timed-out")} <= set(shown_alarms)
    # Every metric the monitor publishes is on the dashboard.
    published = load_lambda_module("publish_metrics", "handler")
    report = {"outcome": "Drift", "rows": 3, "drift": {"share": 1, "drifted": ["x"]}, "data_quality": {"violations": 1},
              "predictions": {"psi": 0.5}, "model_quality": {
                  "rows": 3, "metrics": {name: 0.5 for task in ("binary", "regression") for name in
                                         metrics.task_of(task).metrics},
                  "gate": {"metric": "auc", "better": "higher", "registered": 0.6, "live": 0.5, "worsening": 0.1}},
              "bias": {"region": {"widening": 0.3}}, "attribution": {"outcome": "Drift", "ndcg": 0.7}}
    assert set(published.metrics(report)) == set(MONITOR_METRICS)


def test_no_template_names_model_monitor(synthesized):
    for name in ("default", "kms", "retrain"):
        for stack, template in synthesized[name].templates.items():
            text = json.dumps(template)
            for banned in ("model-monitor", "ModelMonitor", "MonitoringSchedule", "monitoring-schedule"):
                assert banned not in text, (name, stack, banned)


# -- the report page, as a browser renders it -----------------------------------------------------
# Debian's package `chromium` (/usr/bin/chromium), which .ci/run installs when no Chromium is on the machine;
# CHROMIUM names another build (GitHub's Ubuntu runners ship Google Chrome).
CHROMIUM = Path(os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
                or shutil.which("google-chrome") or "/usr/bin/chromium")


def png_pixels(data: bytes) -> np.ndarray:
    """(height, width, channels) of an 8-bit, non-interlaced RGB(A) PNG, decoded with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 255
        rows.append(bytes(line))
        previous = line
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, channels)


def test_the_report_page_renders_its_charts_in_a_browser(tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("no Chromium on this CI machine: .ci/run installs Debian's chromium package (or set CHROMIUM)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    folders(tmp_path, frame(3000, 1), frame(600, 2, shift=30, colours=("red", "purple")))
    page = tmp_path / "report.html"
    page.write_text(monitor.render_html(monitor.analyze(tmp_path)))
    shot = tmp_path / "shot.png"
    done = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars",
                           "--window-size=900,1000", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-500:]
    pixels = png_pixels(shot.read_bytes())[:, :, :3].astype(int)

    def painted(colour: str) -> np.ndarray:
        """Where the page shows this colour: the rows of the screenshot holding it."""
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        return np.flatnonzero((np.abs(pixels - rgb).sum(axis=2) <= 6).sum(axis=1) >= 3)

    baseline_rows, traffic_rows = painted(monitor.BASELINE_COLOR), painted(monitor.CURRENT_COLOR)
    # Bars of both series, in three charts (size, colour, the model's scores) stacked down the page.
    assert len(baseline_rows) > 100 and len(traffic_rows) > 100, (len(baseline_rows), len(traffic_rows))
    charts = np.split(baseline_rows, np.flatnonzero(np.diff(baseline_rows) > 30) + 1)
    assert len([c for c in charts if len(c) > 20]) >= 3


def test_the_results_site_shows_the_loops_figures_in_a_browser(cloud, loop, tmp_path):
    """The site (results_site/) over what make run keeps of this loop, served by make site's Streamlit and read
    in headless Chromium: the serving version's registered accuracy and the drifted hour's drift share."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")  # .ci/run installs it
    snapshot = tmp_path / "site.json"
    assert cloud.save_s3(tmp_path / "s3") and site.keep(cloud, snapshot, tmp_path / "s3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = site.start(snapshot, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.25)
        # Chromium's virtual time runs ahead of the server's first run of the page (its imports, the reads): a
        # page is read again, up to five times, until it shows its last section.
        for _ in range(5):
            done = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                   "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
                                   "--virtual-time-budget=20000", "--dump-dom", f"http://127.0.0.1:{port}/"],
                                  capture_output=True, text=True, timeout=120)
            text = re.sub(r"<[^>]+>", " ", done.stdout)
            if "Registered versions" in text:
                break
    finally:
        server.terminate()
        server.wait(timeout=10)
    bucket = cloud.workflows[BR].data_bucket
    evaluation = json.loads(cloud.read(f"s3://{bucket}/runs/monitored-v1/evaluation/evaluation.json"))
    accuracy = evaluation["binary_classification_metrics"]["accuracy"]["value"]
    drifted = report(cloud, loop["drifted"])["drift"]["share"]
    assert "Serving: version 1 (Approved)" in text, text[:2000]
    assert re.search(rf"accuracy \(test set\)\s+{accuracy:.4f}", text), text[:3000]
    # The newest window is the labelled one (no traffic, so no drift share): the drifted hour's share shows.
    assert re.search(rf"Drift share\s+{drifted:.4f}", text), text[:3000]
    assert "mlkit-mon-drift" in text and "ALARM" in text


@pytest.mark.slow  # make run's whole loop: build, approve, deploy, monitor, retrain, then roll back
def test_make_run_closes_the_loop_from_deployment_to_retraining(synthesized, tmp_path, capsys):
    from offline.cli.run import ROOT as RUN_ROOT, main

    summary = tmp_path / "summary.json"
    code = main(["--workflow", BR, "--approve", "--roll-back", "--input", '{"rows": 1000, "seed": 4}', "--summary",
                 str(summary), "--assembly", str(synthesized["retrain"].outdir), "--no-synth"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    loop = json.loads(summary.read_text())["monitoring"]
    assert (loop["traffic"]["output"]["outcome"], loop["drifted"]["output"]["outcome"]) == ("NoDrift", "Drift")
    assert 'notification to buildandregister-notifications' in printed and 'ALARM: "mlkit-mon-drift"' in printed
    assert list(loop["retraining"].values()) == ["SUCCEEDED"]
    assert "retraining (started by the drift alarm): SUCCEEDED" in printed
    page = RUN_ROOT / ".offline" / "monitor-drifted.html"
    assert loop["drifted"]["page"] == str(page) and "<svg class=\"chart\"" in page.read_text()
    # The roll back docs/deploy-approved.md shows, rehearsed: a second version deployed, then the first started again by hand.
    rolled = json.loads(summary.read_text())["roll_back"]
    assert rolled["status"] == "SUCCEEDED" and rolled["first_version"] != rolled["second_version"], rolled
    assert f"rolling back: starting DeployApproved with {rolled['first_version']}" in printed
    # What the results site reads, kept beside the summary (tests/test_offline_run.py serves one with make site).
    assert "results site: make site serves this run's results at http://localhost:8501" in printed
    kept = json.loads((tmp_path / "site.json").read_text())
    assert {p["ModelPackageArn"] for p in kept["model_packages"]} >= {rolled["first_version"], rolled["second_version"]}


def test_a_small_window_of_undrifted_traffic_is_not_drift_and_a_shifted_one_is():
    """PSI between two samples of one distribution grows as the samples shrink: the threshold adds that sampling
    noise, (bins - 1)(1/rows + 1/baseline rows), so 92 rows of traffic like training's do not read as drift."""
    monitor = load_processing_module("monitor")
    rng = np.random.default_rng(3)
    training = rng.normal(0.0, 1.0, 420)
    counts, edges = np.histogram(training, bins=10)
    baseline = {"histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
                "percentiles": np.percentile(training, np.arange(101)).tolist()}
    fixed = [monitor.psi(counts / counts.sum(), monitor.bin_shares(rng.normal(0.0, 1.0, 92), edges))
             for _ in range(200)]
    assert np.mean(fixed) > 0.08  # what sampling alone gives at these sizes: often near the old 0.2 line
    windows = [monitor.numeric_drift(rng.normal(0.0, 1.0, 92), baseline) for _ in range(1000)]
    assert windows[0]["psi_threshold"] == round(0.2 + 9 * (1 / 92 + 1 / 420), 6)
    old_rule = sum(w["psi"] >= 0.2 or w["ks_p_value"] < 0.01 for w in windows)
    assert sum(w["drifted"] for w in windows) <= 80 and old_rule >= 150  # false alarms: under 8%, from over 15%
    assert monitor.numeric_drift(rng.normal(1.0, 1.0, 92), baseline)["drifted"]  # one standard deviation off


def test_a_dropped_column_is_in_the_baseline_by_name_only_and_never_checked():
    """An id the model drops is still in every row a client sends (the monitor reads rows by position), but
    its values are the client's: no drift or data-quality check reads them."""
    import pandas as pd

    baseline = load_processing_module("baseline")
    frame = pd.DataFrame({"listing_id": ["L1", "L2", "L3"], "area": [50.0, 60.5, 70.0], "price": [1.0, 2.0, 3.0]})
    statistics, constraints = baseline.baseline(frame, "price", ("listing_id",))
    assert statistics["features"][0] == {"name": "listing_id", "type": "ignored"}
    assert statistics["features"][1]["name"] == "area" and statistics["features"][1]["type"] == "numeric"
    assert constraints["features"][0] == {"name": "listing_id", "type": "ignored"}
    assert baseline.main(["--input-dir", "/nonexistent", "--output-dir", "/tmp/x", "--ignore", "none"]) == 1


def test_the_monitor_reads_a_traffic_value_as_the_served_preprocessing_does(tmp_path):
    """Traffic is checked against what the model reads, so a captured cell is missing, a number or text in the
    monitor exactly as the served preprocessing (processing/features.py) takes it: spaces around it removed, 'NA' or
    'null' missing (imputed, not a data-quality violation), '1_0' and 'inf' text."""
    features = load_processing_module("features")
    texts = ["10", " 1", "-1.5", ".5", "2e3", "+7.", "", "NA", "null", "nan", " N/A ", "1_0", "inf", "0x10", "1,5",
             "abc", "1e999"]

    def served(text: str) -> str:
        try:
            (value,) = features.numbers((text.strip(),), "x", lambda index: "row")
        except features.BadInput:
            return "text"
        return "missing" if math.isnan(value) else f"number {float(value)!r}"

    def monitored(text: str) -> str:
        capture = tmp_path / f"{texts.index(text)}.jsonl"
        line = io.StringIO()
        csv.writer(line).writerow([text])
        capture.write_text(json.dumps({"captureData": {"endpointInput": {"data": line.getvalue(),
                                                                         "encoding": "CSV"}}}) + "\n")
        (row,) = monitor.read_captures(tmp_path, 1, float)
        capture.unlink()
        checked = monitor.quality(row["values"], {"type": "numeric", "min": -1e300, "max": 1e300,
                                                  "max_missing_rate": 0})
        if checked["missing_rate"] == 1:
            return "missing"
        return "text" if checked["not_numeric_share"] else f"number {monitor.finite_number(row['values'][0])!r}"

    assert {text: monitored(text) for text in texts} == {text: served(text) for text in texts}
    assert served(" 1") == "number 1.0" and served("NA") == "missing" and served("1_0") == "text"


def bias_window(rng, rows: int, flip: str | None = None) -> tuple[list[str], list[int], list[float]]:
    """A window's colours, true labels and a binary model's scores (right for 85% of rows), the labels of the
    `flip` group flipped (a planted bias: the world changed for that group, the model did not)."""
    colours = list(rng.choice(["blue", "green", "red"], rows))
    truth = rng.integers(0, 2, rows)
    right = rng.random(rows) < 0.85
    scores = np.where(right == (truth == 1), 0.8, 0.2) + rng.normal(0, 0.05, rows)
    labels = [int(1 - t) if c == flip else int(t) for c, t in zip(colours, truth)]
    return colours, labels, [float(s) for s in np.clip(scores, 0, 1)]


def bias_evaluation(rng) -> dict:
    """The test set's evaluation with the colour groups, as the evaluation job writes it (--group-columns colour)."""
    colours, labels, scores = bias_window(rng, 900)
    evaluation = metrics.evaluate("binary", ["0", "1"], "".join(f"{v}\n" for v in labels),
                                  "".join(f"{s!r}\n" for s in scores))
    evaluation["gate"] = metrics.gate(evaluation, "auc", None)
    evaluation["bias"] = metrics.bias_report("binary", ["0", "1"], labels, scores, {"colour": colours},
                                             evaluation["gate"])
    return evaluation


def test_the_evaluation_records_the_gate_metric_and_rates_of_each_group():
    rng = np.random.default_rng(21)
    evaluation = bias_evaluation(rng)
    colour = evaluation["bias"]["colour"]
    assert set(colour["groups"]) == {"blue", "green", "red"}
    for group in colour["groups"].values():
        assert group["rows"] >= metrics.MIN_GROUP_ROWS and 0.8 < group["auc"] <= 1 and 0 < group["positive_rate"] < 1
    aucs = [g["auc"] for g in colour["groups"].values()]
    assert colour["gap"] == pytest.approx(max(aucs) - min(aucs))
    small = metrics.groups("binary", ["0", "1"], [0, 1] * 20, [0.2, 0.8] * 20, ["a"] * 40, "auc")
    assert "auc" not in small["a"] and small["a"]["rows"] == 40  # too few rows to compare on the metric


def test_a_planted_bias_widens_the_gap_and_undrifted_windows_do_not_alarm():
    """Labels flipped for one colour in the traffic open a gap far beyond the alarm's 0.2; windows like the test
    set stay below it: 0 false alarms in 100 windows of 600 labelled rows (about 200 a group), the widest 0.11."""
    from stacks.workflows.monitor_endpoint import BIAS_WIDENING

    rng = np.random.default_rng(22)
    evaluation = bias_evaluation(rng)
    published = load_lambda_module("publish_metrics", "handler")

    def widening(flip: str | None) -> float:
        colours, labels, scores = bias_window(rng, 600, flip)
        rows = [({"values": ["50", colour], "answer": score}, label)
                for colour, label, score in zip(colours, labels, scores)]
        found = monitor.bias(rows, {"size": 0, "colour": 1}, evaluation, metrics)
        report = {"rows": 600, "outcome": "NoDrift", "drift": {"share": 0, "drifted": []},
                  "data_quality": {"violations": 0}, "bias": found}
        return published.metrics(report)["BiasGapWidening"][0]

    undrifted = [widening(None) for _ in range(100)]
    assert sum(w >= BIAS_WIDENING for w in undrifted) == 0  # (the widest was 0.11 with this seed)
    planted = widening("red")
    assert planted >= BIAS_WIDENING and planted > 0.5


def test_the_monitor_reports_bias_per_group_of_the_labelled_traffic(tmp_path):
    rng = np.random.default_rng(23)
    evaluation = bias_evaluation(rng)
    colours, labels, scores = bias_window(rng, 600, "red")
    traffic = frame(600, 2)
    traffic["colour"] = colours
    folders(tmp_path, frame(300, 1), traffic, labels=labels, evaluation=evaluation, answers=[repr(s) for s in scores])
    found = monitor.analyze(tmp_path)["bias"]["colour"]
    assert found["groups"]["red"]["auc"] < 0.3 < found["groups"]["blue"]["auc"]
    assert found["widening"] == pytest.approx(found["gap"] - evaluation["bias"]["colour"]["gap"], abs=1e-6)
    # What the model said of each group in the hour's traffic, whether or not its labels came.
    for colour, group in found["traffic"].items():
        picked = [s for c, s in zip(colours, scores) if c == colour]
        assert group == {"rows": len(picked), "positive_rate": pytest.approx(np.mean(np.asarray(picked) >= 0.5))}
