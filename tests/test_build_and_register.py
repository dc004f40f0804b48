"""BuildAndRegister: the MLOps training pipeline, offline end to end and as synthesized (triggers, IAM)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from offline.cloud import LocalCloud
from tests.cfn import arn, get_att, of_type, ref, resource
from tests.conftest import load_lambda_module
from tests.test_iam import statements, trust

BR = "BuildAndRegister"
importer = load_lambda_module("import_dataset", "handler")


def csv_text(rows: int, seed: int, noisy: bool = False, header: str = "label,x,y") -> bytes:
    """A user's data set: the kit's rule (label 1 when y >= 3x + 5), or labels drawn at random."""
    rng = random.Random(seed)
    lines = [header]
    for _ in range(rows):
        x, y = rng.randint(0, 100), rng.randint(0, 100)
        label = rng.randint(0, 1) if noisy else int(y >= 3 * x + 5)
        lines.append(f"{label},{x},{y}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def cloud(synthesized):
    with LocalCloud(synthesized["default"].outdir) as local:
        yield local


def run(cloud: LocalCloud, name: str, execution_input: dict) -> dict:
    arn_ = cloud.start(BR, execution_input, name)
    described = cloud.wait([arn_])[arn_]
    return {**described, "output": json.loads(described.get("output") or "null")}


def packages(cloud: LocalCloud) -> list[dict]:
    return list(cloud.sagemaker.model_packages.values())


def messages(cloud: LocalCloud, text: str) -> list[str]:
    return [n["message"] for n in cloud.notifications() if text in n["message"]]


def test_a_good_model_is_registered_for_approval_with_metrics_baselines_and_lineage(cloud):
    described = run(cloud, "registered", {"rows": 1000, "seed": 5})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = described["output"]
    package = cloud.sagemaker.model_packages[output["model_package_arn"]]
    assert package["ModelPackageGroupName"] == "mlkit-br-models"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == output["model_artifacts"]
    quality = json.loads(cloud.read(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    metrics = quality["binary_classification_metrics"]
    assert metrics["auc"]["value"] >= 0.8 and set(metrics) == {"accuracy", "auc", "precision", "recall", "f1",
                                                                 "confusion_matrix"}
    # The kit's own drift-check baseline: the raw training features the endpoint receives (no label, not
    # standardized), and the test-set score distribution with the model-quality metrics.
    baselines = package["DriftCheckBaselines"]
    statistics = json.loads(cloud.read(baselines["ModelDataQuality"]["Statistics"]["S3Uri"]))
    constraints = json.loads(cloud.read(baselines["ModelDataQuality"]["Constraints"]["S3Uri"]))
    raw = np.loadtxt(cloud.read(f"s3://{cloud.workflows[BR].data_bucket}/runs/registered/input/raw/train.csv")
                     .decode().splitlines()[1:], delimiter=",")
    assert [f["name"] for f in statistics["features"]] == ["x", "y"] and statistics["rows"] == len(raw)
    for column, feature in enumerate(statistics["features"], 1):
        assert feature["type"] == "numeric" and feature["missing_rate"] == 0
        assert (feature["min"], feature["max"]) == (raw[:, column].min(), raw[:, column].max())
        assert feature["percentiles"][50] == pytest.approx(np.median(raw[:, column]))
        assert sum(feature["histogram"]["counts"]) == len(raw)
    assert constraints["features"] == [{"name": f["name"], "type": "numeric", "max_missing_rate": 0.0,
                                        "min": f["min"], "max": f["max"]} for f in statistics["features"]]
    assert baselines["ModelQuality"]["Statistics"]["S3Uri"] == package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    scores = quality["predictions"]
    assert len(scores["percentiles"]) == 101 and sum(scores["histogram"]["counts"]) == scores["count"] > 0
    assert package["CustomerMetadataProperties"]["run_prefix"] == "runs/registered/"
    assert package["CustomerMetadataProperties"]["execution"].endswith(":registered")
    (message,) = messages(cloud, output["model_package_arn"])
    assert (f"aws sagemaker update-model-package --model-package-arn {output['model_package_arn']} "
            "--model-approval-status Approved") in message


def test_a_model_below_min_auc_is_not_registered_and_its_owner_is_told(cloud):
    bucket = cloud.workflows[BR].data_bucket
    cloud.s3.put_object(Bucket=bucket, Key="datasets/noise/data.csv", Body=csv_text(600, 1, noisy=True))
    before = len(packages(cloud))
    described = run(cloud, "below", {"dataset_uri": f"s3://{bucket}/datasets/noise/", "min_auc": 0.9})
    assert described["status"] == "FAILED" and described["error"] == "ModelBelowThreshold"
    assert len(packages(cloud)) == before
    assert messages(cloud, "Execution below trained a model that scored AUC")


def test_the_users_data_set_is_split_into_the_run_and_trained_on(cloud):
    bucket = cloud.workflows[BR].data_bucket
    for part in (1, 2):
        cloud.s3.put_object(Bucket=bucket, Key=f"datasets/mine/part-{part}.csv", Body=csv_text(400, part))
    described = run(cloud, "own-data", {"dataset_uri": f"s3://{bucket}/datasets/mine/", "seed": 7})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert described["output"]["data"] == f"s3://{bucket}/datasets/mine/"
    keys = cloud.keys(bucket, "runs/own-data/input/")
    assert {k.split("/input/")[1] for k in keys} == {"raw/train.csv", "raw/validation.csv", "raw/test.csv",
                                                      "test-labels/labels.csv"}
    rows = {k.split("/input/")[1]: cloud.read(f"s3://{bucket}/{k}").decode().splitlines() for k in keys}
    assert len(rows["raw/train.csv"]) - 1 == 560 and len(rows["raw/test.csv"]) - 1 == len(rows["test-labels/labels.csv"])


@pytest.mark.parametrize(("where", "body", "error", "cause"), [
    ("s3://elsewhere/datasets/x/", None, "InvalidExecutionInput", "dataset_uri must be an s3:// URI in this stack's"),
    ("datasets/empty/", None, "InvalidDataset", "no .csv file under"),
    ("datasets/columns/", csv_text(100, 2, header="target,x,y"), "InvalidDataset", "must have a header with a 'label'"),
    ("datasets/text/", b"label,x,y\n1,2,three\n", "InvalidDataset", "line 2 has a value that is not a number"),
], ids=["outside-bucket", "empty-prefix", "wrong-columns", "not-numbers"])
def test_bad_data_sets_fail_with_a_named_error_before_any_job(cloud, where, body, error, cause):
    bucket = cloud.workflows[BR].data_bucket
    uri = where if where.startswith("s3://") else f"s3://{bucket}/{where}"
    if body:
        cloud.s3.put_object(Bucket=bucket, Key=f"{where}data.csv", Body=body)
    calls = len(cloud.sagemaker.calls)
    described = run(cloud, f"bad-{where.strip('/').replace('/', '-').replace(':', '')}", {"dataset_uri": uri})
    assert described["status"] == "FAILED" and described["error"] == error
    assert cause in described["cause"]
    assert len(cloud.sagemaker.calls) == calls


def test_a_file_arriving_under_incoming_starts_a_run_on_everything_there(cloud):
    bucket = cloud.workflows[BR].data_bucket
    (delivery,) = cloud.upload(bucket, "incoming/2026-11-23.csv", csv_text(500, 3))
    described = cloud.wait([delivery["result"]])[delivery["result"]]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["input"]) == {"dataset_uri": f"s3://{bucket}/incoming/"}
    assert cloud.upload(bucket, "datasets/not-incoming.csv", b"label,x\n") == []  # other prefixes start nothing


def test_the_incoming_rule_and_its_role_start_only_this_workflow(templates):
    template = templates[BR]
    rule = resource(template, "OnIncomingData/Resource")["Properties"]
    bucket = ref(template, "Data/Bucket/Resource")
    assert rule["EventPattern"] == {"detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "incoming/"}]}},
                                    "detail-type": ["Object Created"], "source": ["aws.s3"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == ref(template, "Workflow/StateMachine/Resource")
    assert target["RoleArn"] == get_att(template, "StartedByEvents/Resource")
    assert target["DeadLetterConfig"] == {"Arn": get_att(template, "UndeliveredIncomingData/Resource")}
    assert trust(template, "StartedByEvents") == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                   "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                                                   "Principal": {"Service": "events.amazonaws.com"}}]
    assert statements(template, "StartedByEvents") == [{"Action": "states:StartExecution", "Effect": "Allow",
                                                        "Resource": ref(template, "Workflow/StateMachine/Resource")}]
    assert resource(template, "Data/Bucket/Resource")["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert of_type(template, "AWS::Scheduler::Schedule") == {}  # retrain_schedule is off by default


def test_retrain_schedule_starts_the_workflow_through_a_role_of_its_own(synthesized):
    template = synthesized["retrain"].templates[BR]
    (schedule,) = of_type(template, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(7 days)" and props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"]["Arn"] == ref(template, "Workflow/StateMachine/Resource")
    assert props["Target"]["RoleArn"] == get_att(template, "StartedByScheduler/Resource")
    assert trust(template, "StartedByScheduler")[0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statements(template, "StartedByScheduler") == [{"Action": "states:StartExecution", "Effect": "Allow",
                                                           "Resource": ref(template, "Workflow/StateMachine/Resource")}]
    (subscription,) = of_type(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ml-team@example.com"


def test_the_workflow_registers_only_in_its_group_and_notifies_only_its_topic(templates):
    template = templates[BR]
    sm = statements(template, "Workflow/Role")
    assert {"Action": "sagemaker:CreateModelPackage", "Effect": "Allow",
            "Resource": [arn("sagemaker", "model-package-group/mlkit-br-*"),
                         arn("sagemaker", "model-package/mlkit-br-*")]} in sm
    assert {"Action": "sns:Publish", "Effect": "Allow", "Resource": ref(template, "Notifications/Resource")} in sm
    group = resource(template, "ModelPackageGroup")["Properties"]
    assert group["ModelPackageGroupName"] == "mlkit-br-models"
    assert resource(template, "ModelPackageGroup")["DeletionPolicy"] == "Retain"
    topic = resource(template, "Notifications/Resource")["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":kms:",
                                                          {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                                                          ":alias/aws/sns"]]}
    reads = statements(template, "ImportDataset/Role")
    bucket = get_att(template, "Data/Bucket/Resource")
    assert {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": bucket,
            "Condition": {"StringLike": {"s3:prefix": ["datasets/*", "incoming/*"]}}} in reads


def test_import_rules_as_a_user_meets_them():
    columns, rows = importer.read_rows("a.csv", "x,label,y\n1,0,2\n3,1,4\n", None)
    assert columns == ["x", "label", "y"] and rows == [[1, 0, 2], [3, 1, 4]]
    files = importer.split(columns, rows * 10, seed=1)
    assert files["raw/train.csv"].splitlines()[0] == "label,x,y"  # label first, as training expects
    assert files["raw/test.csv"].splitlines()[0] == "x,y"
    with pytest.raises(importer.InvalidDataset, match="has columns label,x, but the other files have"):
        importer.read_rows("b.csv", "label,x\n1,2\n", ["label", "x", "y"])
    with pytest.raises(importer.InvalidDataset, match="label 0 or 1"):
        importer.read_rows("c.csv", "label,x\n2,1\n", None)
    with pytest.raises(importer.InvalidDataset, match="at least 20"):
        importer.split(["label", "x"], [[1, 1]] * 5, seed=1)


def test_evaluation_metrics_match_their_definitions():
    from processing.evaluate_model import metrics

    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    report = metrics(labels, scores)["binary_classification_metrics"]
    assert report["auc"]["value"] == 0.75 and report["accuracy"]["value"] == 0.5
    assert report["confusion_matrix"] == {"0": {"0": 1, "1": 1}, "1": {"0": 1, "1": 1}}
    assert report["precision"]["value"] == report["recall"]["value"] == report["f1"]["value"] == 0.5


def test_operators_may_upload_data_sets_and_approve_this_workflows_models(templates):
    template = templates[BR]
    document = resource(template, "Operators/Policy/Resource")["Properties"]["PolicyDocument"]["Statement"]
    bucket = get_att(template, "Data/Bucket/Resource")
    assert document[-2:] == [
        {"Action": "s3:PutObject", "Effect": "Allow",
         "Resource": [{"Fn::Join": ["", [bucket, "/datasets/*"]]}, {"Fn::Join": ["", [bucket, "/incoming/*"]]}]},
        {"Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:UpdateModelPackage"],
         "Effect": "Allow", "Resource": arn("sagemaker", "model-package/mlkit-br-*")},
    ]
