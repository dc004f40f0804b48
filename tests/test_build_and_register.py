"""BuildAndRegister: the MLOps training pipeline, offline end to end and as synthesized (triggers, IAM)."""
from __future__ import annotations

import http.server
import json
import random
import threading
from typing import Callable

import numpy as np
import pytest

from offline.cloud.account import LocalCloud
from offline.sources.request_validation import RequestRefused as SageMakerError
from tests.cfn import arn, get_att, of_type, ref, resource
from tests.conftest import load_lambda_module, load_processing_module
from tests.test_iam import statements, trust

BR = "BuildAndRegister"
features = load_processing_module("features")


def csv_text(rows: int, seed: int, noisy: bool = False, header: str = "label,x,y") -> bytes:
    """A user's data set: the kit's rule (label 1 when y >= 3x + 5), or labels drawn at random."""
    rng = random.Random(seed)
    lines = [header]
    for _ in range(rows):
        x, y = rng.randint(0, 100), rng.randint(0, 100)
        label = rng.randint(0, 1) if noisy else int(y >= 3 * x + 5)
        lines.append(f"{label},{x},{y}")
    return ("\n".join(lines) + "\n").encode()


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
    preprocess, model = package["InferenceSpecification"]["Containers"]  # an inference pipeline of two
    assert model["ModelDataUrl"] == output["model_artifacts"] and "sagemaker-xgboost:" in model["Image"]
    assert preprocess["ModelDataUrl"] == output["preprocessor"] == \
        "s3://" + cloud.workflows[BR].data_bucket + "/runs/registered/processed/preprocessor/model.tar.gz"
    assert "sagemaker-scikit-learn:" in preprocess["Image"]
    assert preprocess["Environment"]["SAGEMAKER_PROGRAM"] == "features.py"
    assert "features.py" in features.__file__
    assert package["CustomerMetadataProperties"]["test_data"] == output["test_data"]
    assert package["CustomerMetadataProperties"]["task"] == "binary"
    assert cloud.read(output["test_data"]).decode().splitlines()[0].count(",") == 1  # raw x,y: no label, no header
    quality = json.loads(cloud.read(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    metrics = quality["binary_classification_metrics"]
    assert metrics["auc"]["value"] >= 0.8 and set(metrics) == {"accuracy", "auc", "precision", "recall", "f1",
                                                                 "confusion_matrix"}
    assert quality["gate"] == {"metric": "auc", "value": metrics["auc"]["value"], "threshold": 0.8,
                               "better": "higher", "passed": True}
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
    assert package["CustomerMetadataProperties"]["execution"] == "registered"  # the execution name, as metadata allows
    (message,) = messages(cloud, output["model_package_arn"])
    assert (f"aws sagemaker update-model-package --model-package-arn {output['model_package_arn']} "
            "--model-approval-status Approved") in message


def test_a_model_below_the_gate_is_not_registered_and_its_owner_is_told(cloud):
    bucket = cloud.workflows[BR].data_bucket
    cloud.s3.put_object(Bucket=bucket, Key="datasets/noise/data.csv", Body=csv_text(600, 1, noisy=True))
    before = len(packages(cloud))
    described = run(cloud, "below", {"dataset_uri": f"s3://{bucket}/datasets/noise/"})
    assert described["status"] == "FAILED" and described["error"] == "ModelBelowThreshold"
    assert len(packages(cloud)) == before
    (message,) = messages(cloud, "Execution below trained a model that scored auc 0.")
    assert "which fails the gate (higher is better, threshold 0.8): nothing was registered" in message


def test_the_old_min_auc_input_is_refused_with_what_replaces_it(cloud):
    described = run(cloud, "old-gate", {"min_auc": 0.9})
    assert described["status"] == "FAILED" and described["error"] == "InvalidExecutionInput"
    assert ("min_auc is no longer an input: the registration gate is now the settings gate_metric and "
            "gate_threshold (for example -c gate_metric=auc -c gate_threshold=0.8)") in described["cause"]


def test_the_users_data_set_is_split_into_the_run_and_trained_on(cloud):
    bucket = cloud.workflows[BR].data_bucket
    for part in (1, 2):
        cloud.s3.put_object(Bucket=bucket, Key=f"datasets/mine/part-{part}.csv", Body=csv_text(400, part))
    described = run(cloud, "own-data", {"dataset_uri": f"s3://{bucket}/datasets/mine/", "seed": 7})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert described["output"]["data"] == f"s3://{bucket}/datasets/mine/"
    keys = cloud.keys(bucket, "runs/own-data/input/")
    assert {k.split("/input/")[1] for k in keys} == {"raw/train.csv", "raw/validation.csv", "raw/test.csv",
                                                      "raw/dataset.json", "test-labels/labels.csv"}
    rows = {k.split("/input/")[1]: cloud.read(f"s3://{bucket}/{k}").decode().splitlines() for k in keys}
    sizes = {name: len(lines) for name, lines in rows.items() if name.endswith(".csv")}
    assert sizes["raw/test.csv"] == sizes["test-labels/labels.csv"] and 115 <= sizes["raw/test.csv"] <= 122
    assert sizes["raw/train.csv"] - 1 + sizes["raw/validation.csv"] - 1 + sizes["raw/test.csv"] == 800
    # The data job's disk is sized from the data set: 10 GB and 8 GB per GiB begun (lambda/size_dataset).
    (job,) = [job for job in cloud.sagemaker.jobs["ProcessingJob"].values()
              if job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].endswith("/runs/own-data/input")]
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 11


def test_the_data_jobs_disk_grows_with_the_data_set_up_to_sagemakers_limit():
    size = load_lambda_module("size_dataset", "handler")
    assert [size.volume_gb(n, 8, 10) for n in (0, 1, 2**30, 2**30 + 1, 5 * 2**30)] == [10, 11, 18, 19, 50]
    assert size.volume_gb(3000 * 2**30, 8, 10) == 16_384  # ProcessingClusterConfig.VolumeSizeInGB's maximum


@pytest.mark.slow  # a whole run of its own
def test_a_constant_column_is_dropped_and_named_in_the_output_and_the_notification(cloud):
    """A column constant in the training split carries no signal: the run trains without it and says so; the
    registered model still takes rows with it, as clients send them."""
    bucket = cloud.workflows[BR].data_bucket
    rows = csv_text(400, 3).decode().splitlines()
    body = "\n".join([rows[0] + ",flag"] + [row + ",1" for row in rows[1:]]) + "\n"
    cloud.s3.put_object(Bucket=bucket, Key="datasets/flagged/data.csv", Body=body.encode())
    described = run(cloud, "flagged", {"dataset_uri": f"s3://{bucket}/datasets/flagged/", "seed": 2})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert described["output"]["constant_columns"] == {"count": 1, "names": ["flag"]}
    (message,) = [m for m in messages(cloud, "flagged") if "waits for" in m or "scored" in m]
    assert 'Columns dropped as constant in the training split: {"count":1,"names":["flag"]}' in message
    parameters = json.loads(cloud.read(f"s3://{bucket}/runs/flagged/processed/params/features.json"))
    assert parameters["dropped"] == ["flag"] and "flag" not in parameters["numeric"]
    assert features.predict_fn([["4", "50", "1"]], parameters).shape == (1, 2)  # x, y standardized; flag dropped


def rows_text(header: str, row: Callable[[int], str], count: int = 60) -> bytes:
    return (header + "\n" + "".join(row(i) + "\n" for i in range(count))).encode()


@pytest.mark.parametrize(("where", "body", "error", "cause"), [
    ("s3://elsewhere/datasets/x/", None, "InvalidExecutionInput", "dataset_uri must be an s3:// URI in this stack's"),
    ("datasets/empty/", None, "InvalidDataset", "no file under s3://"),
    ("datasets/columns/", csv_text(100, 2, header="target,x,y"), "InvalidDataset",
     "data.csv line 1 has no column 'label', which the label_column setting names; its columns are target,x,y"),
    ("datasets/gap/", rows_text("label,x,y", lambda i: f"{'' if i == 7 else i % 2},{i},{i * 3}"),
     "InvalidDataset", "data.csv line 9, column 'label': '' is a missing label; drop the rows without a label"),
    ("datasets/constant/", rows_text("label,z", lambda i: f"{i % 2},5"),
     "InvalidDataset", "column 'z' holds the same value '5' in all 60 rows (for example s3://"),
    ("datasets/one-class/", rows_text("label,x,y", lambda i: f"1,{i},{i * 3}"),
     "InvalidDataset", "column 'label' is '1' in all 60 rows"),
    ("datasets/three/", rows_text("label,x,y", lambda i: f"{i % 3},{i},{i * 3}"),
     "InvalidDataset", "the column holds 3 distinct labels ('0', '1', '2') and task=binary needs exactly 2: set "
                       "task=multiclass to predict 3 classes"),
], ids=["outside-bucket", "empty-prefix", "wrong-columns", "missing-label", "nothing-varies", "one-class",
        "three-classes"])
def test_bad_data_sets_fail_with_a_named_error_before_any_training(cloud, where, body, error, cause):
    """The import job refuses the data set (its ExitMessage names file, line, column and value); nothing after it
    runs."""
    bucket = cloud.workflows[BR].data_bucket
    uri = where if where.startswith("s3://") else f"s3://{bucket}/{where}"
    if body:
        cloud.s3.put_object(Bucket=bucket, Key=f"{where}data.csv", Body=body)
    calls = len(cloud.sagemaker.calls)
    described = run(cloud, f"bad-{where.strip('/').replace('/', '-').replace(':', '')}", {"dataset_uri": uri})
    assert described["status"] == "FAILED" and described["error"] == error
    assert cause in described["cause"]
    created = [call for call in cloud.sagemaker.calls[calls:] if call.startswith("Create")]
    assert created == ([] if error == "InvalidExecutionInput" else ["CreateProcessingJob"])


def test_a_multi_file_upload_and_its_ready_marker_train_once_on_everything_there(cloud):
    bucket = cloud.workflows[BR].data_bucket
    calls = len(cloud.sagemaker.calls)
    for part in (1, 2, 3):  # data files start nothing, however many there are
        assert cloud.upload(bucket, f"incoming/2026-11-23/part-{part}.csv", csv_text(300, part)) == []
    (delivery,) = cloud.upload(bucket, "incoming/_READY", b"")
    # EventBridge delivers an event at least once: the same event again starts a second run, a duplicate.
    event = delivery["event"]
    (again,) = cloud.events.put(event["source"], event["detail-type"], event["detail"], event["resources"])
    runs = [cloud.wait([d["result"]])[d["result"]] for d in (delivery, again)]
    assert all(run["status"] == "SUCCEEDED" for run in runs), [run.get("cause") for run in runs]
    # Either delivery may claim the event first; the other finds the claim taken and does nothing.
    (second,) = [run for run in runs if json.loads(run["output"]).get("claim") == {"claimed": False}]
    (first,) = [run for run in runs if run is not second]
    assert json.loads(first["input"])["dataset_uri"] == f"s3://{bucket}/incoming/"
    assert json.loads(first["input"])["event_claim"] == f"incoming/_READY@{event['detail']['object']['sequencer']}"
    split = [cloud.read(f"s3://{bucket}/runs/{first['name']}/input/raw/{name}.csv").decode().splitlines()
             for name in ("train", "validation", "test")]
    assert len(split[0]) - 1 + len(split[1]) - 1 + len(split[2]) == 900  # all three files, 300 rows each
    assert cloud.sagemaker.calls[calls:].count("CreateTrainingJob") == 1
    assert cloud.upload(bucket, "datasets/not-incoming.csv", b"label,x\n") == []  # other prefixes start nothing


def test_a_second_ready_marker_while_a_build_runs_trains_nothing_and_says_so(cloud):
    """Each put of incoming/_READY is a new event (a new sequencer): uploads cannot stack up trainings. A run an
    upload starts while an earlier build of the copy still runs ends at once in BuildAlreadyRunning, after a
    notification naming that build; the earlier build goes on."""
    bucket = cloud.workflows[BR].data_bucket
    calls = len(cloud.sagemaker.calls)
    cloud.upload(bucket, "incoming/2026-12-07/part-1.csv", csv_text(300, 7))
    (first,) = cloud.upload(bucket, "incoming/_READY", b"")
    (second,) = cloud.upload(bucket, "incoming/_READY", b"")  # put again before the first build ends
    ended = cloud.wait([first["result"], second["result"]])
    built, refused = ended[first["result"]], ended[second["result"]]
    assert built["status"] == refused["status"] == "SUCCEEDED", (built.get("cause"), refused.get("cause"))
    entered = {e["stateEnteredEventDetails"]["name"] for e in cloud.history(refused["executionArn"])
               if "stateEnteredEventDetails" in e}
    assert "BuildAlreadyRunning" in entered and "ImportDataset" not in entered
    assert "Summarize" in {e["stateEnteredEventDetails"]["name"] for e in cloud.history(built["executionArn"])
                           if "stateEnteredEventDetails" in e}
    (sent,) = [n for n in cloud.notifications() if n["subject"].startswith("A build is already running")
               and refused["name"] in n["message"]]
    assert built["executionArn"] in sent["message"] and "put incoming/_READY again" in sent["message"]
    assert cloud.sagemaker.calls[calls:].count("CreateTrainingJob") == 1


def test_the_incoming_rule_and_its_role_start_only_this_workflow(templates):
    template = templates[BR]
    rule = resource(template, "OnIncomingData/Resource")["Properties"]
    bucket = ref(template, "Data/Bucket/Resource")
    assert rule["EventPattern"] == {"detail": {"bucket": {"name": [bucket]}, "object": {"key": ["incoming/_READY"]}},
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
    assert statements(template, "StartedByScheduler") == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": ref(template, "Workflow/StateMachine/Resource")},
        # A start that fails after its retries goes to the schedule's dead-letter queue, sent with this role.
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": get_att(template, "RetrainScheduleMissed/Resource")}]
    assert props["Target"]["DeadLetterConfig"] == {"Arn": get_att(template, "RetrainScheduleMissed/Resource")}
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
    # Not alias/aws/sns: CloudWatch alarms cannot publish under an AWS managed key (stacks/constructs/notifications.py).
    assert topic["KmsMasterKeyId"] == get_att(template, "TopicKey/Resource")
    # The workflow's role uses the key only through SNS.
    assert {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow",
            "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["sns.", {"Ref": "AWS::Region"},
                                                                                ".amazonaws.com"]]}}},
            "Resource": get_att(template, "TopicKey/Resource")} in sm
    reads = statements(template, "SageMakerRole/Role")  # the import job reads the user's data sets
    bucket = get_att(template, "Data/Bucket/Resource")
    assert {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": bucket,
            "Condition": {"StringLike": {"s3:prefix": ["runs/*", "datasets/*", "incoming/*"]}}} in reads
    (objects,) = [s["Resource"] for s in reads if s["Action"] == "s3:GetObject"]
    data_sets = [r for r in objects if "Fn::Join" in r and r["Fn::Join"][1][0] == bucket and
                 not r["Fn::Join"][1][1].startswith("/runs/")]
    assert data_sets == [{"Fn::Join": ["", [bucket, "/datasets/*"]]}, {"Fn::Join": ["", [bucket, "/incoming/*"]]}]


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


# -- teardown -------------------------------------------------------------------------------------
class ResponseURL(http.server.ThreadingHTTPServer):
    """Where CloudFormation waits for a custom resource's answer: keeps each PUT body."""

    def __init__(self) -> None:
        answers = self.answers = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_destroy_data_on_delete_empties_the_model_package_group_before_cloudformation_deletes_it(synthesized):
    template = synthesized["destroy-data"].templates[BR]
    empty = resource(template, "EmptyModelPackageGroupOnDelete/Default")
    group = next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::ModelPackageGroup")
    assert empty["Properties"] == {"ServiceToken": get_att(template, "EmptyModelPackageGroup/Function/Resource"),
                                   "ModelPackageGroupName": "mlkit-br-models"}
    assert empty["DependsOn"] == [group]  # so CloudFormation deletes it, emptying the group, before the group
    assert template["Resources"][group]["DeletionPolicy"] == "Delete"
    assert statements(template, "EmptyModelPackageGroup/Role")[-1] == {
        "Action": ["sagemaker:DeleteModelPackage", "sagemaker:ListModelPackages"], "Effect": "Allow",
        "Resource": arn("sagemaker", "model-package/mlkit-br-models/*")}
    default = synthesized["default"].templates[BR]  # the group and its versions are kept: nothing to empty
    assert not of_type(default, "Custom::EmptyModelPackageGroup")

    answers = ResponseURL()
    with LocalCloud(synthesized["destroy-data"].outdir) as cloud:
        for _ in range(2):
            cloud.sagemaker.handle("CreateModelPackage", {"ModelPackageGroupName": "mlkit-br-models"})
        with pytest.raises(SageMakerError, match="still has 2 model package"):  # what cdk destroy met
            cloud.sagemaker.handle("DeleteModelPackageGroup", {"ModelPackageGroupName": "mlkit-br-models"})
        (function,) = [f for f in cloud.workflows[BR].functions.values() if "emptymodelpackagegroup" in f.name]
        request = {"RequestType": "Delete", "ResponseURL": f"http://127.0.0.1:{answers.server_address[1]}/answer",
                   "StackId": "stack", "RequestId": "1", "LogicalResourceId": "EmptyModelPackageGroupOnDelete",
                   "PhysicalResourceId": "mlkit-br-models-versions", "ResourceProperties": empty["Properties"]}
        cloud.sagemaker.inject_error("DeleteModelPackage", "AccessDeniedException", "not authorized")
        cloud.lambda_.invoke(function, json.dumps(request).encode())  # a failure is answered, not left waiting
        cloud.lambda_.invoke(function, json.dumps(request).encode())  # CloudFormation's next attempt
        assert cloud.sagemaker.handle("DeleteModelPackageGroup", {"ModelPackageGroupName": "mlkit-br-models"}) == {}
    answers.shutdown()
    failed, deleted = answers.answers
    assert failed["Status"] == "FAILED" and "AccessDeniedException" in failed["Reason"]
    assert (deleted["Status"], deleted["Data"], deleted["PhysicalResourceId"]) == (
        "SUCCESS", {"Deleted": 2}, "mlkit-br-models-versions")
