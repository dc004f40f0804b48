"""A user's data set, end to end offline: imported intact, trained, registered, approved and deployed; the endpoint
and a batch transform of the registered version answer the data set's raw rows with the registered metrics."""
from __future__ import annotations

import json
import random
import time

import boto3
import pytest

from offline.cloud.account import LocalCloud
from tests.conftest import load_processing_module

BR, DA = "BuildAndRegister", "DeployApproved"
metrics = load_processing_module("metrics")


def sensor_data_set(rows: int = 700, seed: int = 11) -> bytes:
    """Pressure readings whose signal sits in the decimals (a six-digit rounding erases it), a temperature on
    another scale, and the label in the middle of the header."""
    rng = random.Random(seed)
    lines = ["pressure,label,temperature"]
    for _ in range(rows):
        fraction = rng.random()
        label = int(fraction + rng.gauss(0, 0.08) > 0.5)
        lines.append(f"{101325 + fraction:.6f},{label},{rng.uniform(-40, 45):.3f}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def loop(synthesized):
    with LocalCloud(synthesized["default"].outdir) as cloud:
        bucket = cloud.workflows[BR].data_bucket
        cloud.s3.put_object(Bucket=bucket, Key="datasets/sensors/readings.csv", Body=sensor_data_set())
        started = cloud.start(BR, {"dataset_uri": f"s3://{bucket}/datasets/sensors/", "seed": 2}, "sensors")
        built = cloud.wait([started])[started]
        assert built["status"] == "SUCCEEDED", built.get("cause")
        output = json.loads(built["output"])
        (delivery,) = cloud.approve(output["model_package_arn"])
        deployed = cloud.wait([delivery["result"]])[delivery["result"]]
        yield cloud, output, deployed


def registered_metrics(cloud: LocalCloud, output: dict) -> dict:
    report = json.loads(cloud.read(output["evaluation"]))["binary_classification_metrics"]
    return {name: report[name]["value"] for name in ("accuracy", "auc")}


def sagemaker_role(cloud: LocalCloud, stack: str) -> str:
    """The stack's SageMaker execution role, which may read its runs' models (a batch transform runs as it)."""
    return next(arn for arn in cloud.iam.roles if f"/{stack.lower()}-sagemakerrole" in arn)


def scored(labels: list[int], answer: str) -> dict:
    return metrics.measure("binary", ["0", "1"], labels, metrics.parse_answers("binary", ["0", "1"], answer),
                           ["accuracy", "auc"])


def test_the_signal_in_the_decimals_reaches_the_model(loop):
    cloud, output, _ = loop
    assert registered_metrics(cloud, output)["auc"] > 0.95  # a six-digit rounding would leave it near 0.5
    raw = cloud.read(output["test_data"]).decode().splitlines()
    assert all(len(line.split(",")[0].split(".")[1]) == 6 for line in raw)  # each pressure as written


def test_the_endpoint_answers_raw_rows_with_the_registered_metrics(loop):
    cloud, output, deployed = loop
    assert deployed["status"] == "SUCCEEDED", deployed.get("cause")
    rows = cloud.read(output["test_data"]).decode()  # pressure,temperature: as the user's CSV has them, no label
    labels = [int(v) for v in cloud.read(output["test_labels"] + "labels.csv").split()]
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    answer = runtime.invoke_endpoint(EndpointName=json.loads(deployed["output"])["endpoint"],
                                     ContentType="text/csv", Accept="text/csv", Body=rows)["Body"].read().decode()
    assert scored(labels, answer) == registered_metrics(cloud, output)
    captured = [json.loads(line) for key in cloud.keys(cloud.workflows[DA].data_bucket, "runs/")
                if "/capture/" in key for line in cloud.read(f"s3://{cloud.workflows[DA].data_bucket}/{key}").split(b"\n")
                if line]
    assert rows in [c["captureData"]["endpointInput"]["data"] for c in captured]  # the raw rows, as sent


def test_a_batch_transform_of_the_version_answers_raw_rows_with_the_registered_metrics(loop):
    cloud, output, _ = loop
    package = cloud.sagemaker.model_packages[output["model_package_arn"]]
    containers = [{k: c[k] for k in ("Image", "ModelDataUrl", "Environment") if k in c}
                  for c in package["InferenceSpecification"]["Containers"]]
    cloud.sagemaker.handle("CreateModel", {"ModelName": "mlkit-br-batch", "Containers": containers,
                                           "InferenceExecutionConfig": {"Mode": "Serial"},
                                           "ExecutionRoleArn": sagemaker_role(cloud, BR)})
    bucket = cloud.workflows[BR].data_bucket
    cloud.sagemaker.handle("CreateTransformJob", {
        "TransformJobName": "mlkit-br-batch", "ModelName": "mlkit-br-batch",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": output["test_data"]}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        # Into a folder of the run the role may write (offline IAM holds the job to its role, as AWS does).
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/{output['run_prefix']}evaluation/batch/",
                            "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    for _ in range(200):
        job = cloud.sagemaker.handle("DescribeTransformJob", {"TransformJobName": "mlkit-br-batch"})
        if job["TransformJobStatus"] != "InProgress":
            break
        time.sleep(0.1)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    labels = [int(v) for v in cloud.read(output["test_labels"] + "labels.csv").split()]
    answer = cloud.read(f"s3://{bucket}/{output['run_prefix']}evaluation/batch/test.csv.out").decode()
    assert scored(labels, answer) == registered_metrics(cloud, output)


def test_a_model_of_an_image_without_a_runner_is_refused_not_replaced(loop):
    cloud, output, _ = loop
    package = cloud.sagemaker.model_packages[output["model_package_arn"]]
    model = {"PrimaryContainer": {"Image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1",
                                  "ModelDataUrl": package["InferenceSpecification"]["Containers"][1]["ModelDataUrl"]}}
    with pytest.raises(ValueError, match="image 111122223333.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1 has no "
                                         "offline runner; register one in offline/runtimes/serving.py SERVERS"):
        cloud.sagemaker.runners.load_model("test", model)
