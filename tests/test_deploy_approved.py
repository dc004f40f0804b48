"""DeployApproved: the approval trigger, its exact IAM, and the loop offline: first deploy, update, an update whose
smoke test fails (restored), one SageMaker rolls back, a failed endpoint, a version of another group, a rejection."""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import threading
import time

import boto3
import botocore
import pytest
from moto.events.models import EventPattern

from offline.cloud.account import LocalCloud
from offline.sources.request_validation import RequestRefused as SageMakerError
from stacks.settings.config import ConfigError
from stacks.app.kit import build_app, cdk_json_context
from tests.cfn import ACCOUNT, PARTITION, REGION, arn, get_att, join, of_type, ref, resource
from tests.conftest import ROOT, load_lambda_module
from tests.test_iam import function_basics, service_trust, statements, trust
from tests.test_resources import inline_definition

DA, BR = "DeployApproved", "BuildAndRegister"
ENDPOINT, SCHEDULE = "mlkit-da-endpoint", "mlkit-da-monitor"  # the monitor's schedule (MonitorEndpoint)
checker = load_lambda_module("check_model_package", "handler")
smoke = load_lambda_module("smoke_test", "handler")


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized["default"].templates[DA]


def shared(template: dict, name: str) -> dict:
    """The template parameter through which the stack reads what BuildAndRegister shares under `name`."""
    (parameter,) = [p for p, d in template["Parameters"].items() if d.get("Default") == f"/mlkit-br/{name}"]
    assert template["Parameters"][parameter]["Type"] == "AWS::SSM::Parameter::Value<String>"
    return {"Ref": parameter}


def build_objects(template: dict, *folders: str) -> list[dict]:
    return [join("arn:", PARTITION, ":s3:::", shared(template, "data-bucket-name"), f"/runs/*/{f}/*") for f in folders]


# -- the trigger ----------------------------------------------------------------------------------
def approval_event(status: str, group: str = "mlkit-br-models") -> dict:
    arn_ = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/3"
    return {"version": "0", "id": "1", "source": "aws.sagemaker", "account": "123456789012", "region": "us-east-1",
            "detail-type": "SageMaker Model Package State Change", "time": "2026-11-23T00:00:00Z",
            "resources": [arn_], "detail": {"ModelPackageGroupName": group, "ModelPackageArn": arn_,
                                            "ModelPackageVersion": 3, "ModelApprovalStatus": status}}


def test_approving_a_version_of_the_build_group_starts_a_deployment_of_it(template):
    rule = resource(template, "OnApproval/Resource")["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["mlkit-br-models"], "ModelApprovalStatus": ["Approved"]}}
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    assert pattern.matches_event(approval_event("Approved"))
    for status in ("Rejected", "PendingManualApproval"):  # a rejection or a new registration starts nothing...
        assert not pattern.matches_event(approval_event(status))
    withdrawn = resource(template, "ClaimRelease/OnWithdrawal/Resource")["Properties"]
    released = EventPattern.load(json.dumps(withdrawn["EventPattern"]))
    for status in ("Rejected", "PendingManualApproval"):  # ...but releases the version's claim
        assert released.matches_event(approval_event(status))
    assert not released.matches_event(approval_event("Approved"))
    assert not released.matches_event(approval_event("Rejected", group="mlkit-dev-br-models"))
    assert not pattern.matches_event(approval_event("Approved", group="mlkit-dev-br-models"))
    (target,) = rule["Targets"]
    assert target["Arn"] == ref(template, "Workflow/StateMachine/Resource")
    # The claim is the version alone: one deployment per approval (tests/test_event_claim.py), resting on no field
    # of the event beyond the version's ARN.
    assert target["InputTransformer"] == {
        "InputPathsMap": {"detail-ModelPackageArn": "$.detail.ModelPackageArn"},
        "InputTemplate": '{"model_package_arn":<detail-ModelPackageArn>,"event_claim":<detail-ModelPackageArn>}'}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": get_att(template, "UndeliveredApproval/Resource")}
    assert statements(template, "StartedByEvents") == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": ref(template, "Workflow/StateMachine/Resource")}]


def test_the_build_stack_shares_what_deployments_read_and_is_deployed_first(synthesized):
    build = synthesized["kms"].templates[BR]
    parameters = {p["Properties"]["Name"]: p["Properties"]["Value"]
                  for p in of_type(build, "AWS::SSM::Parameter").values()}
    assert parameters == {"/mlkit-br/data-bucket-name": ref(build, "Data/Bucket/Resource"),
                          "/mlkit-br/notification-topic-arn": ref(build, "Notifications/Resource"),
                          "/mlkit-br/topic-key-arn": get_att(build, "Key/Resource"),
                          "/mlkit-br/key-arn": get_att(build, "Key/Resource")}
    manifest = json.loads((synthesized["default"].outdir / "manifest.json").read_text())["artifacts"]
    assert BR in manifest[DA]["dependencies"]
    assert not of_type(synthesized["default"].templates[DA], "AWS::CloudFormation::Stack")
    assert "Fn::ImportValue" not in json.dumps(synthesized["default"].templates[DA])  # no export ties the two


def test_rollback_alarm_watches_the_endpoints_server_errors(template):
    alarm = resource(template, "EndpointErrors/Resource")["Properties"]
    assert alarm["AlarmName"] == f"{ENDPOINT}-errors"
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        "AWS/SageMaker", "Invocation5XXErrors", "Sum", 60)
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT},
                                   {"Name": "VariantName", "Value": "AllTraffic"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching")


@pytest.mark.parametrize(("setting", "value", "allowed"), [
    ("endpoint_instance_type", "ml.t2.medium", "one of allowed_instance_types (ml.m5.large"),
    ("endpoint_instance_type", "large", "a SageMaker instance type such as ml.m5.large"),
    ("data_capture_percentage", "0", "a whole number from 1 to 100"),
    ("data_capture_percentage", "101", "a whole number from 1 to 100"),
])
def test_bad_endpoint_settings_stop_synthesis_in_one_line(tmp_path, setting, value, allowed):
    with pytest.raises(ConfigError, match=rf"^invalid setting {setting}='{value}': expected {re.escape(allowed)}[^\n]*$"):
        build_app({**cdk_json_context(), setting: value}, outdir=str(tmp_path))


# -- exact IAM ------------------------------------------------------------------------------------
def test_check_function_describes_only_the_build_groups_versions(template):
    assert trust(template, "CheckModelPackage/Role") == service_trust("lambda.amazonaws.com")
    assert statements(template, "CheckModelPackage/Role") == [
        *function_basics(template, "CheckModelPackage"),
        {"Action": "sagemaker:DescribeModelPackage", "Effect": "Allow",
         "Resource": arn("sagemaker", "model-package/mlkit-br-models/*")}]


def test_smoke_test_function_invokes_only_the_endpoint_and_reads_only_registered_test_data(template):
    assert statements(template, "SmokeTest/Role") == [
        *function_basics(template, "SmokeTest"),
        {"Action": "sagemaker:InvokeEndpoint", "Effect": "Allow", "Resource": arn("sagemaker", f"endpoint/{ENDPOINT}")},
        {"Action": "s3:GetObject", "Effect": "Allow",
         "Resource": build_objects(template, "evaluation", "input")},
        {"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}, "Effect": "Allow",
         "Resource": join("arn:", PARTITION, ":s3:::", shared(template, "data-bucket-name"))}]


def test_sagemaker_role_serves_the_build_model_and_writes_only_capture(template):
    def logs(suffix: str) -> dict:
        return arn("logs", f"log-group:/aws/sagemaker/Endpoints/{ENDPOINT}:{suffix.format('AllTraffic/*')}")

    own = lambda folder: join(get_att(template, "Data/Bucket/Resource"), f"/runs/*/{folder}/*")  # noqa: E731
    registry = lambda name, mapping: arn("ecr", f"repository/{name}", account={  # noqa: E731
        "Fn::FindInMap": [mapping, REGION, "Account"]})
    assert trust(template, "SageMakerRole/Role") == service_trust("sagemaker.amazonaws.com")
    assert statements(template, "SageMakerRole/Role") == [
        {"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}, "Effect": "Allow",
         "Resource": get_att(template, "Data/Bucket/Resource")},
        {"Action": ["s3:AbortMultipartUpload", "s3:PutObject"], "Effect": "Allow", "Resource": own("capture")},
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {"Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Effect": "Allow", "Resource": [registry("sagemaker-scikit-learn", "SageMakerImageRegistry"),
                                         registry("sagemaker-xgboost", "SageMakerImageRegistry")]},
        {"Action": "cloudwatch:PutMetricData", "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
         "Effect": "Allow", "Resource": "*"},
        # What it serves: the build stack's model files (its own bucket's runs are not read at all).
        {"Action": "s3:GetObject", "Effect": "Allow",
         "Resource": build_objects(template, "model", "processed/preprocessor")},
        {"Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"], "Effect": "Allow", "Resource": logs("*")},
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow", "Resource": logs("log-stream:{}")},
        # Deployment guardrails read the rollback alarm with "your IAM execution role" (the model's, or the caller's).
        {"Action": "cloudwatch:DescribeAlarms", "Effect": "Allow",
         "Resource": [get_att(template, f"Endpoint{alarm}/Resource") for alarm in ("Errors", "Latency")]},
    ]


def test_state_machine_role_deploys_only_this_stacks_endpoint_resources(template):
    sm = lambda kind: arn("sagemaker", f"{kind}/mlkit-da-*")  # noqa: E731
    guard = {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [
        "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.c5.2xlarge"]},
        "Null": {"sagemaker:InstanceTypes": "false"}}
    assert trust(template, "Workflow/Role") == service_trust("states.amazonaws.com")
    assert statements(template, "Workflow/Role") == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": [
            get_att(template, f"{f}/Function/Resource")
            for f in ("CheckModelPackage", "ClaimEvent", "CompareShadow", "MonitorDeployment", "SmokeTest",
                      "ValidateInput")]},
        {"Action": "sagemaker:CreateModel", "Condition": {"Bool": {"sagemaker:NetworkIsolation": "true"}},
         "Effect": "Allow", "Resource": sm("model")},
        {"Action": ["sagemaker:AddTags", "sagemaker:ListTags"], "Effect": "Allow", "Resource": sm("model")},
        {"Action": "iam:PassRole", "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
         "Effect": "Allow", "Resource": get_att(template, "SageMakerRole/Role/Resource")},
        {"Action": "sagemaker:CreateEndpointConfig", "Condition": guard, "Effect": "Allow",
         "Resource": sm("endpoint-config")},
        {"Action": ["sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"], "Effect": "Allow",
         "Resource": sm("endpoint")},
        # The shadow test copies production's variant and capture from its config.
        {"Action": "sagemaker:DescribeEndpointConfig", "Effect": "Allow", "Resource": sm("endpoint-config")},
        {"Action": ["sagemaker:AddTags", "sagemaker:CreateEndpoint", "sagemaker:ListTags", "sagemaker:UpdateEndpoint"],
         "Effect": "Allow", "Resource": [sm("endpoint-config"), sm("endpoint")]},
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": shared(template, "notification-topic-arn")},
        # The topic is under a customer managed key (in every encryption mode); SNS uses it on the caller's behalf.
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Condition": {"StringEquals": {"kms:ViaService": join(
            "sns.", REGION, ".amazonaws.com")}}, "Effect": "Allow", "Resource": shared(template, "topic-key-arn")},
        {"Action": ["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
        # It calls UpdateEndpoint with the rollback alarm: guardrails' "IAM execution role" may be the caller's.
        {"Action": "cloudwatch:DescribeAlarms", "Effect": "Allow",
         "Resource": [get_att(template, f"Endpoint{alarm}/Resource") for alarm in ("Errors", "Latency")]},
    ]


def test_under_kms_the_build_stacks_key_is_used_only_through_s3_and_sns(synthesized):
    template = synthesized["kms"].templates[DA]
    build_key = shared(template, "key-arn")

    def on_build_key(role: str) -> list[dict]:
        return [s for s in statements(template, role) if s["Resource"] == build_key]

    via = lambda service: {"StringEquals": {"kms:ViaService": join(f"{service}.", REGION, ".amazonaws.com")}}  # noqa
    assert on_build_key("SageMakerRole/Role") == [{"Action": "kms:Decrypt", "Condition": via("s3"), "Effect": "Allow",
                                                   "Resource": build_key}]
    assert on_build_key("SmokeTest/Role") == [{"Action": "kms:Decrypt", "Condition": via("s3"), "Effect": "Allow",
                                               "Resource": build_key}]
    # The build stack's topic is under its key (shared as topic-key-arn), used only through SNS.
    topic_key = shared(template, "topic-key-arn")
    assert on_build_key("Workflow/Role") == []
    assert [s for s in statements(template, "Workflow/Role") if s["Resource"] == topic_key] == [
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Condition": via("sns"), "Effect": "Allow",
         "Resource": topic_key}]
    assert on_build_key("CheckModelPackage/Role") == []
    # The endpoint's volumes and its captured traffic are encrypted with this stack's own key.
    config = inline_definition(template)["States"]["CreateEndpointConfig"]["Parameters"]
    assert config["KmsKeyId"] == config["DataCaptureConfig"]["KmsKeyId"] == "<token>"
    assert "KmsKeyId" not in json.dumps(inline_definition(synthesized["default"].templates[DA]))


# -- the handlers ---------------------------------------------------------------------------------
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
SERVING = {"SAGEMAKER_PROGRAM": "features.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
           "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}


def chain(preprocessor: str = "s3://build/runs/r1/processed/preprocessor/model.tar.gz",
          model: str = "s3://build/runs/r1/model/j/output/model.tar.gz", images=(SKLEARN, IMAGE),
          environment=None) -> dict:
    return {"Containers": [{"Image": images[0], "ModelDataUrl": preprocessor, "Environment": environment or SERVING},
                           {"Image": images[1], "ModelDataUrl": model}]}
VERSION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models/4"


def description(**changes) -> dict:
    run = "s3://build/runs/r1"
    return {"ModelPackageArn": VERSION, "ModelPackageVersion": 4, "ModelApprovalStatus": "Approved",
            "InferenceSpecification": chain(),
            "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": f"{run}/evaluation/evaluation.json"}}},
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"S3Uri": f"{run}/baseline/statistics.json"},
                                                         "Constraints": {"S3Uri": f"{run}/baseline/constraints.json"}}},
            "CustomerMetadataProperties": {"test_data": f"{run}/input/raw/test.csv", "test_labels": f"{run}/input/l.csv"},
            **changes}


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"ModelApprovalStatus": "Rejected"}, "ModelNotApproved", "is Rejected, not Approved"),
    ({"InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://build/runs/r1/model/m"}]}},
     "UnsupportedModel", "must be the kit's inference pipeline: the fitted preprocessing in .*sagemaker-scikit-learn"
                         ".*; it has .*sagemaker-xgboost:1.7-1$"),
    ({"InferenceSpecification": chain(images=(SKLEARN, "other:1"))}, "UnsupportedModel", "it has .*, other:1"),
    ({"InferenceSpecification": chain(model="s3://elsewhere/runs/r1/model/m")},
     "UnsupportedModel", "its model under runs/<run>/model/ of one run in s3://build"),
    ({"InferenceSpecification": chain(model="s3://build/runs/r2/model/m")},
     "UnsupportedModel", "of one run in s3://build"),
    ({"InferenceSpecification": chain(environment={**SERVING, "SAGEMAKER_SUBMIT_DIRECTORY": "s3://x/code.tar.gz"})},
     "UnsupportedModel", "must tell its preprocessing container SAGEMAKER_PROGRAM"),
    ({"InferenceSpecification": chain(images=(SKLEARN, SKLEARN))}, "UnsupportedModel",
     "must tell its model container SAGEMAKER_PROGRAM"),  # a script's model needs its serving module
    ({"CustomerMetadataProperties": {"run_prefix": "runs/r1/"}}, "UnsupportedModel",
     "registered without test_data, test_labels"),
])
def test_check_refuses_versions_it_must_not_deploy(changes, error, message):
    with pytest.raises(getattr(checker, error), match=message):
        checker.registered(description(**changes), images=(SKLEARN, IMAGE), bucket="build")


def test_check_accepts_a_registered_version_and_returns_what_it_registered():
    facts = checker.registered(description(), images=(SKLEARN, IMAGE), bucket="build")
    assert facts["model_data_url"] == "s3://build/runs/r1/model/j/output/model.tar.gz"
    assert facts["preprocessor_data_url"] == "s3://build/runs/r1/processed/preprocessor/model.tar.gz"
    assert facts["preprocessor_environment"] == SERVING
    assert (facts["model_image"], facts["model_environment"]) == (IMAGE, {})  # the built-in algorithm


def test_check_accepts_a_team_script_model_in_its_framework_image():
    served = {**SERVING, "SAGEMAKER_PROGRAM": "inference.py"}
    versions = chain(images=(SKLEARN, SKLEARN))
    versions["Containers"][1]["Environment"] = served
    facts = checker.registered(description(InferenceSpecification=versions), images=(SKLEARN, IMAGE), bucket="build")
    assert (facts["model_image"], facts["model_environment"]) == (SKLEARN, served)
    assert facts["test_data"] == "s3://build/runs/r1/input/raw/test.csv" and facts["version"] == 4


def test_a_shadow_replaces_production_only_when_it_does_at_least_as_well_or_agrees():
    shadow = load_lambda_module("compare_shadow", "handler")
    evaluation = {"task": "binary", "classes": ["0", "1"], "gate": {"metric": "accuracy", "value": 0.9}}
    truth = [1, 0] * 60
    right, wrong = [0.9, 0.1] * 60, [0.9, 0.1] * 50 + [0.1, 0.9] * 10
    labelled = list(range(120))
    assert shadow.verdict(evaluation, wrong, right, truth, labelled)["promote"]
    kept = shadow.verdict(evaluation, right, wrong, truth, labelled)
    assert not kept["promote"] and kept["summary"].startswith("production kept: on ground truth its accuracy is "
                                                               "0.833333 against production's 1 (worse)")
    assert shadow.verdict(evaluation, right, right, truth, labelled)["promote"]  # as good: the approval stands
    # Fewer than MIN_LABELLED labelled rows: agreement decides (95%).
    assert not shadow.verdict(evaluation, right, wrong, truth[:99], labelled[:99])["promote"]  # 83% agree
    assert shadow.verdict(evaluation, right, [0.8, 0.2] * 60, [], [])["promote"]  # same classes
    one_class = shadow.verdict({**evaluation, "gate": {"metric": "auc", "value": 0.9}}, right, right, [1] * 120,
                               labelled)  # an AUC needs both classes: agreement decides
    assert one_class["promote"] and "the ground truth cannot give auc (" in one_class["summary"]
    regression = {"task": "regression", "classes": None, "gate": {"metric": "rmse", "value": 1.0}}
    assert shadow.verdict(regression, [1.0, 2.0, 3.0], [1.04, 2.09, 3.1], [], [])["promote"]  # within 5%
    assert not shadow.verdict(regression, [1.0, 2.0, 3.0], [1.2, 2.0, 3.0], [], [])["promote"]
    lower = shadow.verdict(regression, [1.0] * 100, [1.5] * 100, [1.4] * 100, list(range(100)))
    assert lower["promote"] and lower["metric"] == "rmse"  # lower is better
    assert shadow.hours(datetime.datetime(2026, 1, 1, 10, 59, tzinfo=datetime.UTC),
                        datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)) == [
        "2026/01/01/10/", "2026/01/01/11/", "2026/01/01/12/"]


def test_a_shadow_test_replays_only_production_requests_with_rows_from_its_start_and_names_a_bad_line():
    shadow = load_lambda_module("compare_shadow", "handler")

    class Objects:  # list_objects_v2 pages and get_object of a few keys
        def __init__(self, objects: dict) -> None:
            self.objects = objects

        def get_paginator(self, name: str):
            return type("Pages", (), {"paginate": lambda _, Bucket, Prefix: [{"Contents": [
                {"Key": k} for k in self.objects if k.startswith(Prefix)]}]})()

        def get_object(self, Bucket: str, Key: str) -> dict:
            return {"Body": type("Body", (), {"read": lambda _: self.objects[Key].encode()})()}

    def record(when: str, text: str, inference_id: str) -> str:
        return json.dumps({"captureData": {"endpointInput": {"data": text, "encoding": "CSV"},
                                           "endpointOutput": {"data": "0.9\n" * text.count("\n"), "encoding": "CSV"}},
                           "eventMetadata": {"eventId": "e", "inferenceId": inference_id, "inferenceTime": when}})
    folder = "runs/r/capture/ep/AllTraffic/"
    since = datetime.datetime(2026, 1, 1, 10, 30, 15, 500000, tzinfo=datetime.UTC)
    until = since + datetime.timedelta(hours=1)
    objects = Objects({f"{folder}2026/01/01/10/a.jsonl": "\n".join([
        record("2026-01-01T10:30:14Z", "1,2\n", "before"), record("2026-01-01T10:30:15Z", "1,2\n", "same-second"),
        record("2026-01-01T10:31:00Z", "", "empty"), record("2026-01-01T10:40:00Z", "1,2\n3,4\n", "later")])})
    found = shadow.production_requests(objects, "b", folder, since, until, 1000)
    assert [(r["id"], r["rows"]) for r in found] == [("same-second", 1), ("later", 2)]
    assert [r["id"] for r in shadow.production_requests(objects, "b", folder, since, until, 1)] == ["same-second"]
    objects.objects[f"{folder}2026/01/01/11/b.jsonl"] = "{not json"
    with pytest.raises(ValueError, match=r"^s3://b/runs/r/capture/ep/AllTraffic/2026/01/01/11/b.jsonl line 1 is "
                                         r"not JSON"):
        shadow.production_requests(objects, "b", folder, since, until, 1000)


def test_smoke_test_compares_the_gate_metric_within_the_tolerance():
    evaluation = {"task": "binary", "classes": ["0", "1"], "gate": {"metric": "auc", "value": 0.98}}
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.6, 0.9]
    passed = smoke.compare(evaluation, labels, scores, 0.05)
    assert passed["passed"] and passed["summary"] == ("Smoke test passed on 4 registered test rows: auc 1 "
                                                      "(registered 0.98); tolerance 0.05.")
    failed = smoke.compare(evaluation, labels, [0.9, 0.4, 0.6, 0.1], 0.05)
    assert not failed["passed"] and failed["summary"].startswith("Smoke test FAILED on 4 registered test rows")


# -- offline: the loop ----------------------------------------------------------------------------
def register(cloud: LocalCloud, name: str, seed: int) -> str:
    arn_ = cloud.start(BR, {"rows": 1000, "seed": seed}, name)
    described = cloud.wait([arn_])[arn_]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return json.loads(described["output"])["model_package_arn"]


def deploy(cloud: LocalCloud, version: str, status: str = "Approved") -> dict:
    """Approve the version as a person would; the rule starts the deployment, which runs to its end."""
    deliveries = cloud.approve(version, status)
    assert [d["rule"] for d in deliveries] == ["mlkit-da-on-approval"]
    execution = deliveries[0]["result"]
    described = cloud.wait([execution])[execution]
    return {**described, "output": json.loads(described.get("output") or "null"), "history": cloud.history(execution)}


def endpoint(cloud: LocalCloud) -> dict:
    return cloud.sagemaker.handle("DescribeEndpoint", {"EndpointName": ENDPOINT})


def answers(cloud: LocalCloud) -> str:
    """What the endpoint answers, over HTTP as a client calls it, for a few raw rows (x, and y in thousands)."""
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    body = "\n".join(f"{x},{y * 1000}" for x, y in ((8, 12), (0, 90), (50, 3), (9, 14), (20, 95)))
    return runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=body)["Body"].read().decode()


def served_model(cloud: LocalCloud) -> str:
    """The model data of the model the endpoint's config serves."""
    config = cloud.sagemaker.hosting.configs[endpoint(cloud)["EndpointConfigName"]]
    model = cloud.sagemaker.models[config["ProductionVariants"][0]["ModelName"]]
    return model["Containers"][-1]["ModelDataUrl"]


def served_config(cloud: LocalCloud) -> str:
    return cloud.sagemaker.hosting.serving[ENDPOINT][0]


def abort_while_creating(cloud: LocalCloud, version: str) -> dict:
    """Approve, then stop the run while its new endpoint is still Creating, as an operator might."""
    cloud.sagemaker.hosting.hold_next_endpoint(seconds=2)
    (delivery,) = cloud.approve(version)
    for _ in range(400):
        if ENDPOINT in cloud.sagemaker.hosting.endpoints:
            break
        time.sleep(0.05)
    creating = dict(cloud.sagemaker.hosting.endpoints[ENDPOINT])
    cloud.sfn.stop_execution(executionArn=delivery["result"], error="Operator", cause="stopped by hand")
    described = cloud.wait([delivery["result"]])[delivery["result"]]  # its end goes on the bus, to JobCleanup
    cleanup = [d["result"] for d in cloud.events.delivered if d["rule"] == "mlkit-da-stop-stranded-jobs"
               and d["event"]["detail"]["executionArn"] == delivery["result"]]
    return {"status": described["status"], "creating": creating, "cleanup": cleanup,
            "endpoint_after": cloud.sagemaker.hosting.endpoints.get(ENDPOINT)}


@pytest.fixture(scope="module")
def loop(cloud):
    """The loop, in order, on one local account: each step starts from where the previous one left it."""
    steps = {}
    first = register(cloud, "loop-v1", seed=3)
    steps["aborted"] = abort_while_creating(cloud, first)
    cloud.sagemaker.hosting.fail_next_endpoint("the model container exited with code 1")
    # Each first deployment finds no endpoint; the error DescribeEndpoint names it with is stated nowhere, so each
    # runs under another name it might have (stacks/aws_behaviours.py).
    cloud.choose({"describe-missing-endpoint-error": "SageMaker.AmazonSageMakerException"})
    steps["failed"] = deploy(cloud, first)
    steps["endpoints_after_failure"] = dict(cloud.sagemaker.hosting.endpoints)
    cloud.choose({"describe-missing-endpoint-error": "SageMaker.ValidationException"})
    steps["created"] = deploy(cloud, first)  # approving again (after a fix) deploys it again
    cloud.choose({})
    steps["config_v1"] = endpoint(cloud)["EndpointConfigName"]
    second = register(cloud, "loop-v2", seed=5)
    steps["updated"] = deploy(cloud, second)
    steps["config_v2"] = endpoint(cloud)["EndpointConfigName"]
    steps["answers_v2"] = answers(cloud)
    third = register(cloud, "loop-v3", seed=7)
    report = json.loads(cloud.read(cloud.sagemaker.model_packages[third]["ModelMetrics"]["ModelQuality"]
                                   ["Statistics"]["S3Uri"]))
    report["gate"]["value"] = 0.5  # a registered gate metric the model cannot match
    bucket, key = cloud.sagemaker.model_packages[third]["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"][
        5:].split("/", 1)
    cloud.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(report).encode())
    steps["versions"] = {"v1": first, "v2": second, "v3": third}  # v3 registered a gate value it cannot match
    steps["smoke_failed"] = deploy(cloud, third)
    steps["config_after_smoke"] = endpoint(cloud)["EndpointConfigName"]
    steps["served_after_smoke"] = served_config(cloud)
    steps["answers_after_smoke"] = answers(cloud)
    fourth = register(cloud, "loop-v3b", seed=8)
    metadata = cloud.sagemaker.model_packages[fourth]["CustomerMetadataProperties"]
    metadata["test_data"] = metadata["test_data"].replace("/raw/test.csv", "/raw/missing.csv")
    steps["smoke_errored"] = deploy(cloud, fourth)  # the smoke test cannot score: restored as well
    steps["config_after_smoke_error"] = endpoint(cloud)["EndpointConfigName"]
    cloud.sagemaker.hosting.trip_alarm_during_next_update(f"{ENDPOINT}-errors")
    steps["rolled_back"] = deploy(cloud, register(cloud, "loop-v4", seed=9))
    steps["config_after_rollback"] = endpoint(cloud)["EndpointConfigName"]
    schedule = cloud.scheduler.get_schedule(Name=SCHEDULE)
    cloud.scheduler.update_schedule(**{k: schedule[k] for k in ("Name", "ScheduleExpression", "FlexibleTimeWindow",
                                                                "Target")}, State="DISABLED")
    steps["unmonitored"] = deploy(cloud, register(cloud, "loop-v6", seed=13))
    steps["config_unmonitored"] = served_config(cloud)
    cloud.scheduler.update_schedule(**{k: schedule[k] for k in ("Name", "ScheduleExpression", "FlexibleTimeWindow",
                                                                "Target")}, State="ENABLED")
    fifth = register(cloud, "loop-v5", seed=11)
    steps["rejected_deliveries"] = cloud.approve(fifth, "Rejected")
    # The roll back docs/deploy-approved.md shows: start the workflow by hand with an earlier version's ARN.
    started = cloud.start(DA, {"model_package_arn": second}, "roll-back-to-v2")
    steps["rolled_back_by_hand"] = cloud.wait([started])[started]
    steps["model_after_roll_back"] = served_model(cloud)
    return steps


@pytest.fixture(scope="module")
def duplicated(cloud, loop):
    """After the loop: approve a new version once while SageMaker sends the state change twice (as its guide
    says it may), so two runs start."""
    version = register(cloud, "loop-v7", seed=17)
    calls = len(cloud.sagemaker.calls)
    (delivery,) = cloud.approve(version)
    event = delivery["event"]
    (again,) = cloud.events.put(event["source"], event["detail-type"], dict(event["detail"]), event["resources"])
    runs = [delivery["result"], again["result"]]
    ended = cloud.wait(runs)
    return {"ended": [ended[run] for run in runs], "histories": [cloud.history(run) for run in runs],
            "calls": cloud.sagemaker.calls[calls:]}


def test_first_deployment_creates_the_endpoint_with_capture_and_hands_it_to_the_monitor(cloud, loop):
    run = loop["created"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    output = run["output"]
    assert (output["endpoint"], output["deployment"], output["monitoring_schedule"]) == (ENDPOINT, "create", SCHEDULE)
    assert output["smoke_test"].startswith("Smoke test passed on 151 registered test rows")
    config = cloud.sagemaker.hosting.configs[loop["config_v1"]]
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100 and capture["DestinationS3Uri"] == output["capture"]
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    # The smoke test's requests and responses were captured where the monitor reads them, and the deployment
    # record names the version's baseline.
    record = json.loads(cloud.read(output["deployment_record"]))
    assert output["deployment_record"].endswith(f"/{output['run_prefix']}deployment/version.json")
    assert record["capture"] == output["capture"] and record["endpoint"] == ENDPOINT
    assert record["baseline"]["statistics"].endswith("/runs/loop-v1/baseline/statistics.json")
    bucket, prefix = output["capture"][5:].split("/", 1)
    captured = cloud.keys(bucket, f"{prefix}/{ENDPOINT}/AllTraffic/")
    assert captured and all(key.endswith(".jsonl") for key in captured)
    record = json.loads(cloud.read(f"s3://{bucket}/{captured[0]}").decode().splitlines()[0])
    assert set(record["captureData"]) == {"endpointInput", "endpointOutput"}
    sent = [n for n in cloud.notifications() if n["subject"] == "A model was deployed"]
    assert sent and ENDPOINT in sent[0]["message"] and f"Monitored: schedule {SCHEDULE} (cron(5 * * * ? *))" in sent[0]["message"]


def test_a_run_stopped_while_its_endpoint_is_creating_leaves_no_endpoint_billing(loop):
    aborted = loop["aborted"]
    assert aborted["status"] == "ABORTED" and aborted["creating"]["EndpointStatus"] == "Creating"
    (cleanup,) = aborted["cleanup"]
    assert cleanup["endpoints"] == {ENDPOINT: "Deleted"} and aborted["endpoint_after"] is None


def test_a_failed_endpoint_ends_the_run_with_a_named_error_after_notifying_and_is_deleted(cloud, loop):
    run = loop["failed"]
    assert run["status"] == "FAILED" and run["error"] == "EndpointFailed"
    assert f"Endpoint {ENDPOINT} is Failed" in run["cause"]
    assert ENDPOINT not in loop["endpoints_after_failure"]  # deleted: it bills nothing, and the next run creates it
    failures = [n for n in cloud.notifications() if n["subject"] == "A model deployment failed"]
    assert any(n["message"].startswith("EndpointFailed deploying model package") for n in failures)


def test_a_first_deployment_creates_the_endpoint_whatever_describe_endpoint_calls_a_missing_one(loop):
    """Under SageMaker.AmazonSageMakerException the first run got to its (failed) endpoint, under
    SageMaker.ValidationException the next created it: neither name stopped the deployment."""
    assert loop["failed"]["error"] == "EndpointFailed" and loop["created"]["status"] == "SUCCEEDED"
    for run in (loop["failed"], loop["created"]):
        (lookup,) = [e for e in run["history"] if e["type"] == "TaskFailed"
                     and "describeEndpoint" in e["taskFailedEventDetails"].get("resource", "")]
        assert "Could not find endpoint" in lookup["taskFailedEventDetails"]["cause"]
    names = [e["taskFailedEventDetails"]["error"] for run in (loop["failed"], loop["created"])
             for e in run["history"] if e["type"] == "TaskFailed"
             and "describeEndpoint" in e["taskFailedEventDetails"].get("resource", "")]
    assert names == ["SageMaker.AmazonSageMakerException", "SageMaker.ValidationException"]


def test_an_execution_name_sagemaker_cannot_record_as_is_still_registers_and_deploys(cloud, loop):
    """Step Functions allows "run(1)!"; SageMaker's metadata values do not (CustomerMetadataValue): the run's
    metadata spells those characters =XX, the local SageMaker checks every value against botocore's pattern, and
    the deployment reads the run's test data back under its real name."""
    version = register(cloud, "run(1)!", seed=19)
    metadata = cloud.sagemaker.model_packages[version]["CustomerMetadataProperties"]
    assert metadata["execution"] == "run=281=29=21" and metadata["run_prefix"] == "runs/run=281=29=21/"
    run = deploy(cloud, version)
    assert run["status"] == "SUCCEEDED", run.get("cause")
    checked = next(json.loads(e["taskSucceededEventDetails"]["output"])["Payload"] for e in run["history"]
                   if e["type"] == "TaskSucceeded" and "test_data" in e["taskSucceededEventDetails"]["output"])
    assert checked["test_data"].endswith("/runs/run(1)!/input/raw/test.csv")


def test_rolling_back_by_hand_deploys_the_previous_version_again(cloud, loop):
    run = loop["rolled_back_by_hand"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    output = json.loads(run["output"])
    assert output["deployment"] == "update" and "/runs/loop-v2/model/" in loop["model_after_roll_back"]


def test_second_deployment_updates_blue_green_and_records_the_new_baseline(cloud, loop):
    run = loop["updated"]
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert run["output"]["deployment"] == "update" and loop["config_v2"] != loop["config_v1"]
    update = next(json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in run["history"]
                  if e["type"] == "TaskScheduled" and "updateEndpoint" in e["taskScheduledEventDetails"]["resource"])
    policy = update["DeploymentConfig"]
    assert policy["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": f"{ENDPOINT}-errors"},
                                                              {"AlarmName": f"{ENDPOINT}-latency"}]}
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    # The caller may read exactly those alarms, as offline IAM checked on the update (and nothing else of CloudWatch).
    described = {(d.action, d.resource, d.decision) for d in cloud.iam.decisions if d.action == "cloudwatch:DescribeAlarms"}
    assert described == {("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ENDPOINT}-{alarm}",
                          "Allow") for alarm in ("errors", "latency")}
    record = json.loads(cloud.read(run["output"]["deployment_record"]))
    assert "/runs/loop-v2/baseline/" in record["baseline"]["constraints"]


def test_an_update_failing_its_smoke_test_is_restored_and_the_old_model_still_serves(loop):
    run = loop["smoke_failed"]
    assert run["status"] == "FAILED" and run["error"] == "SmokeTestFailed"
    assert "The previous model serves again" in run["cause"] and "(registered 0.5)" in run["cause"]
    assert loop["config_after_smoke"] == loop["served_after_smoke"] == loop["config_v2"]
    assert loop["answers_after_smoke"] == loop["answers_v2"] and len(loop["answers_v2"].split()) == 5


def test_an_update_whose_smoke_test_cannot_score_is_restored_too(loop):
    run = loop["smoke_errored"]
    assert run["status"] == "FAILED" and run["error"] == "SmokeTestFailed"
    assert "the endpoint could not be scored" in run["cause"] and "The previous model serves again" in run["cause"]
    assert loop["config_after_smoke_error"] == loop["config_v2"]


def test_an_update_sagemaker_rolls_back_ends_with_a_named_error(loop):
    run = loop["rolled_back"]
    assert run["status"] == "FAILED" and run["error"] == "EndpointRolledBack"
    assert loop["config_after_rollback"] == loop["config_v2"]


def test_an_update_sagemaker_rolls_back_is_notified_with_its_steps(cloud, loop):
    """All at once: one step to the new fleet; the planted alarm fired while it baked, so traffic went back."""
    rollouts = cloud.sagemaker.hosting.rollouts[ENDPOINT]
    assert {"config": loop["config_v2"], "steps": [1.0], "outcome": "completed"} in rollouts
    rolled = [r for r in rollouts if r["outcome"].startswith("rolled back") and r["config"] not in (
        loop["config_v1"], loop["config_v2"]) and not r["config"].startswith(("mlkit-da-canary", "mlkit-da-linear"))]
    assert [(r["steps"], r["outcome"]) for r in rolled] == [([1.0, 0.0], f"rolled back: alarm {ENDPOINT}-errors")]
    failures = [n["message"] for n in cloud.notifications() if n["subject"] == "A model deployment failed"]
    assert any(m.startswith("EndpointRolledBack") for m in failures)


@pytest.mark.parametrize(("rollout", "percent", "instances", "steps"), [
    ("canary", 50, 2, [0.5, 1.0]), ("canary", 25, 8, [0.25, 1.0]),
    ("linear", 50, 2, [0.5, 1.0]), ("linear", 25, 4, [0.25, 0.5, 0.75, 1.0]), ("linear", 10, 10, None)])
def test_canary_and_linear_rollouts_shift_traffic_step_by_step_and_an_alarm_rolls_back(cloud, loop, rollout, percent,
                                                                                      instances, steps):
    """The kit's TrafficRoutingConfiguration for each rollout (stacks/settings/rollouts.py), applied by the offline
    SageMaker to an update of the served endpoint onto a fleet of `instances`: the new fleet's share of traffic
    after each step; the same update with an alarm fired while the first step bakes goes back to the old fleet."""
    from stacks.settings.rollouts import TERMINATION_WAIT_SECONDS, traffic_routing

    hosting = cloud.sagemaker.hosting
    serving = endpoint(cloud)["EndpointConfigName"]
    variants = [{**v, "InitialInstanceCount": instances} for v in hosting.configs[serving]["ProductionVariants"]]
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": traffic_routing(rollout, percent, instances),
                                        "TerminationWaitInSeconds": TERMINATION_WAIT_SECONDS,
                                        "MaximumExecutionTimeoutInSeconds": 3600},
              "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{ENDPOINT}-errors"}]}}
    for tripped in (False, True):
        config = f"mlkit-da-{rollout}-{instances}-{int(tripped)}"
        cloud.sagemaker.handle("CreateEndpointConfig", {"EndpointConfigName": config, "ProductionVariants": variants})
        if tripped:
            hosting.trip_alarm_during_next_update(f"{ENDPOINT}-errors")
        cloud.sagemaker.handle("UpdateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": config,
                                                  "DeploymentConfig": policy})
        for _ in range(200):
            if endpoint(cloud)["EndpointStatus"] == "InService":
                break
            time.sleep(0.05)
        (record,) = [r for r in hosting.rollouts[ENDPOINT] if r["config"] == config]
        expected = steps or [k / 10 for k in range(1, 11)]
        if tripped:
            assert record == {"config": config, "steps": [expected[0], 0.0],
                              "outcome": f"rolled back: alarm {ENDPOINT}-errors"}
            assert endpoint(cloud)["EndpointConfigName"] == serving  # the old fleet serves on
        else:
            assert record["steps"] == pytest.approx(expected) and record["outcome"] == "completed"
            serving = endpoint(cloud)["EndpointConfigName"]
            assert serving == config


@pytest.mark.parametrize(("routing", "instances", "message"), [
    ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 300}, 1,
     "CanarySize of 1 (INSTANCE_COUNT) is 100% of the variant's 1 instances; it must be at most 50%"),
    ({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5}, "WaitIntervalInSeconds": 300}, 4,
     "LinearStepSize of 5 (CAPACITY_PERCENT) is 5% of the variant's 4 instances; it must be 10-50%"),
])
def test_the_offline_sagemaker_refuses_steps_sagemaker_refuses(cloud, loop, routing, instances, message):
    hosting = cloud.sagemaker.hosting
    serving = endpoint(cloud)["EndpointConfigName"]
    config = f"mlkit-da-refused-{routing['Type'].lower()}"
    cloud.sagemaker.handle("CreateEndpointConfig", {"EndpointConfigName": config, "ProductionVariants": [
        {**v, "InitialInstanceCount": instances} for v in hosting.configs[serving]["ProductionVariants"]]})
    with pytest.raises(SageMakerError, match=re.escape(message)):
        cloud.sagemaker.handle("UpdateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": config,
                                                  "DeploymentConfig": {"BlueGreenUpdatePolicy": {
                                                      "TrafficRoutingConfiguration": routing}}})


def test_a_rollout_sagemaker_would_refuse_stops_synthesis_with_the_instance_count_that_works(tmp_path):
    with pytest.raises(ConfigError, match=r"^invalid setting rollout=canary: rollout_step_percent=50 of "
                                          r"endpoint_instance_count=1 is 0 instances, and SageMaker takes a canary "
                                          r"step of at most 50% of the endpoint's instances, at least one: set "
                                          r"endpoint_instance_count to 2 or more, or rollout=all_at_once$"):
        build_app({**cdk_json_context(), "rollout": "canary"}, outdir=str(tmp_path))
    with pytest.raises(ConfigError, match="invalid setting rollout='blue'"):
        build_app({**cdk_json_context(), "rollout": "blue"}, outdir=str(tmp_path))


@pytest.mark.parametrize(("serving", "reason"), [
    ("serverless", "SageMaker Serverless Inference takes no inference pipeline"),
    ("async", "SageMaker Asynchronous Inference takes no serial inference pipeline and no data capture")])
def test_serving_sagemaker_cannot_give_the_chain_is_refused_at_synthesis_with_its_reason(tmp_path, serving, reason):
    """Serverless endpoints take no inference pipeline, isolation, data capture or KMS key (developer guide,
    Serverless Inference, Feature exclusions); asynchronous ones no serial pipeline or data capture (the guide's
    feature table): the registered chain cannot be served there as it is."""
    with pytest.raises(ConfigError) as raised:
        build_app({**cdk_json_context(), "serving": serving}, outdir=str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"invalid setting serving={serving}: {reason}") and "keep serving=realtime" in message
    assert "\n" not in message


def test_a_deployment_is_announced_as_monitored_only_while_the_monitors_schedule_is_enabled(cloud, loop):
    run = loop["unmonitored"]
    assert run["status"] == "FAILED" and run["error"] == "MonitoringNotInPlace"
    assert f"schedule {SCHEDULE} is DISABLED" in run["cause"] and "but it is not monitored" in run["cause"]
    assert loop["config_unmonitored"] != loop["config_v2"]  # the model passed its smoke test and serves
    failures = [n["message"] for n in cloud.notifications() if n["subject"] == "A model deployment failed"]
    assert any(m.startswith("MonitoringNotInPlace deploying model package") for m in failures)


def test_a_rejected_version_starts_nothing_and_only_releases_its_claim(loop):
    (release,) = loop["rejected_deliveries"]  # the withdrawal rule; no deployment starts
    assert release["rule"] == "mlkit-da-on-withdrawal" and release["result"]["released"].startswith("claims/")


def test_a_version_of_another_group_is_refused_before_anything_is_created(cloud, loop):
    models = len(cloud.sagemaker.models)
    arn_ = cloud.start(DA, {"model_package_arn": VERSION.replace("mlkit-br-models", "other-models")}, "foreign")
    described = cloud.wait([arn_])[arn_]
    assert described["status"] == "FAILED" and described["error"] == "ModelPackageNotInGroup"
    assert "is not a version of arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models" in \
        described["cause"]
    assert len(cloud.sagemaker.models) == models
    refused = [n for n in cloud.notifications() if n["message"].startswith("ModelPackageNotInGroup deploying")]
    assert refused and "is not a version of" in refused[0]["message"]


def test_a_version_that_does_not_exist_is_refused_by_name(cloud, loop):
    arn_ = cloud.start(DA, {"model_package_arn": VERSION.replace("/4", "/999")}, "missing-version")
    described = cloud.wait([arn_])[arn_]
    assert described["status"] == "FAILED" and described["error"] == "ModelPackageNotFound"
    assert "/999 does not exist" in described["cause"]


@pytest.mark.parametrize("given", [{}, {"model_package_arn": "mlkit-br-models/1"}])
def test_a_run_without_a_version_arn_is_refused_as_invalid_input(cloud, given):
    arn_ = cloud.start(DA, given, None)
    described = cloud.wait([arn_])[arn_]
    assert described["status"] == "FAILED" and described["error"] == "InvalidExecutionInput"
    assert "model_package_arn" in described["cause"]


def test_an_approval_sent_twice_deploys_once_and_the_second_run_ends_as_a_duplicate(duplicated):
    first, second = duplicated["ended"]
    assert first["status"] == second["status"] == "SUCCEEDED", (first.get("cause"), second.get("cause"))
    entered = [[e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
               for history in duplicated["histories"]]
    deployed, duplicate = sorted(entered, key=len, reverse=True)
    assert "UpdateEndpoint" in deployed and "NotifyDeployed" in deployed
    assert duplicate == ["FromEvent", "ClaimEvent", "FirstForEvent", "DuplicateEvent"]
    calls = duplicated["calls"]
    assert calls.count("CreateModel") == calls.count("CreateEndpointConfig") == calls.count("UpdateEndpoint") == 1


def documented_invoke_endpoint() -> dict:
    """The `aws sagemaker-runtime invoke-endpoint` line of docs/deploy-approved.md, its words as bash gives them to
    the AWS CLI, as the InvokeEndpoint request the CLI sends (checked against botocore's model of it)."""
    from botocore.validate import ParamValidator

    (line,) = [line for line in (ROOT / "docs" / "deploy-approved.md").read_text().splitlines()
               if line.startswith("aws sagemaker-runtime invoke-endpoint ")]
    words = subprocess.run(["bash", "-c", f"set -- {line.removeprefix('aws ')}; printf '%s\\0' \"$@\""],
                           capture_output=True, check=True).stdout.decode().split("\0")[:-1]
    assert words[:2] == ["sagemaker-runtime", "invoke-endpoint"]
    options, outfile = dict(zip(words[2:-1:2], words[3:-1:2])), words[-1]
    assert options.pop("--cli-binary-format") == "raw-in-base64-out" and outfile == "scores.csv"
    request = {botocore.xform_name(k.removeprefix("--").replace("-", "_"), "").title().replace("_", ""): v
               for k, v in options.items()}
    request["Body"] = request["Body"].encode()
    shape = boto3.client("sagemaker-runtime", region_name="us-east-1").meta.service_model.operation_model(
        "InvokeEndpoint").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    return request


def test_the_documented_invoke_endpoint_command_scores_raw_rows(cloud, loop):  # before the endpoint is deleted
    request = documented_invoke_endpoint()
    assert request["EndpointName"] == ENDPOINT
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    scores = [float(v) for v in runtime.invoke_endpoint(**request)["Body"].read().split()]
    assert len(scores) == 2 and scores[0] > 0.5 > scores[1]  # (10, 90) lies well above the line y = 3x + 5, (60, 3) well below


# -- shadow tests (after the loop: v2 serves) ------------------------------------------------------
SHADOW_ROWS = [(x, 3 * x + 5 + d) for x in range(2, 52) for d in (-0.6, -0.2, 0.2, 0.6)]  # near the boundary


def answer_rows(cloud: LocalCloud, rows: list, variant: str | None, inference_id: str) -> list[str]:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    target = {"TargetVariant": variant} if variant else {}
    body = "\n".join(f"{x},{y * 1000:.0f}" for x, y in rows)
    return runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=body, InferenceId=inference_id,
                                   **target)["Body"].read().decode().split()


def shadow_run(cloud: LocalCloud, version: str, name: str, truth_from: str, meanwhile: str | None = None,
               stop: bool = False, monitor: bool = False) -> dict:
    """Deploy `version` by hand with a shadow hour. While the shadow serves, clients send production 200 rows near
    the model's boundary (4 requests), and ground truth arrives for them: the labels `truth_from` ("production"
    or "shadow") predicts, asked of that variant by name, so that variant is the better one wherever the two
    disagree. `meanwhile`, a version another run tries to deploy during the shadow hour; `stop`, stop the run
    then, as an operator might; `monitor`, run MonitorEndpoint on the hour while the shadow serves."""
    from offline.cloud.sfn_sagemaker import WaitFunction

    entered, release, original = threading.Event(), threading.Event(), WaitFunction._wait_interval

    def wait(self, env, wait_seconds):  # the shadow hour lasts until the test has sent its traffic
        if wait_seconds != 3600:
            return original(self, env, wait_seconds)
        entered.set()
        release.wait(120)
    WaitFunction._wait_interval = wait
    try:
        started = cloud.start(DA, {"model_package_arn": version, "shadow_hours": 1}, name)
        while not entered.wait(0.5):  # until the shadow hour starts, or the run ends without one
            running = cloud.sfn.describe_execution(executionArn=started)
            assert running["status"] == "RUNNING", (running.get("cause"), cloud.history(started)[-3:])
        config = cloud.sagemaker.hosting.configs[endpoint(cloud)["EndpointConfigName"]]
        if stop:
            cloud.sfn.stop_execution(executionArn=started, error="Operator", cause="stopped by hand")
            release.set()  # the interpreter goes on, and finds the run stopped
            ended = cloud.wait([started])[started]
            cleanup = [d for d in cloud.events.delivered if d["rule"] == "mlkit-da-stop-stranded-jobs"
                       and d["event"]["detail"]["executionArn"] == started]
            return {**ended, "config": config, "cleanup": cleanup}
        answered, labels = {}, []
        for part in range(4):
            rows, request = SHADOW_ROWS[part * 50:(part + 1) * 50], f"{name}-{part}"
            production = answer_rows(cloud, rows, None, request)
            shadow = answer_rows(cloud, rows, "Shadow", f"{request}-asked")
            answered[request] = (production, shadow)
            chosen = production if truth_from == "production" else shadow
            labels.append(json.dumps({"groundTruthData": {"data": "".join(f"{int(float(a) >= 0.5)}\n" for a in chosen),
                                                          "encoding": "CSV"},
                                      "eventMetadata": {"eventId": request}, "eventVersion": "0"}))
        hour = datetime.datetime.now(datetime.UTC)
        cloud.s3.put_object(Bucket=cloud.workflows[DA].data_bucket, Key=f"ground-truth/{hour:%Y/%m/%d/%H}/{name}.jsonl",
                            Body="\n".join(labels).encode())
        other = cloud.start(DA, {"model_package_arn": meanwhile}, f"{name}-meanwhile") if meanwhile else None
        interrupted = cloud.wait([other])[other] if other else None
        watched = None
        if monitor:  # the hour so far, as the schedule would check it at its end
            end = hour.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=1)
            checked = cloud.start("MonitorEndpoint", {"window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}, f"{name}-monitor")
            watched = cloud.wait([checked])[checked]
            output = json.loads(watched.get("output") or "null")
            bucket, prefix = config["DataCaptureConfig"]["DestinationS3Uri"][5:].split("/", 1)
            watched = {**watched, "output": output, "production_files": len(cloud.keys(
                bucket, f"{prefix}/{ENDPOINT}/AllTraffic/{hour:%Y/%m/%d/%H}/")), "window": json.loads(cloud.read(
                    f"s3://{cloud.workflows['MonitorEndpoint'].data_bucket}/{output['run_prefix']}traffic/window.json"))}
    finally:
        release.set()
        WaitFunction._wait_interval = original
    ended = cloud.wait([started])[started]
    return {**ended, "output": json.loads(ended.get("output") or "null"), "config": config, "meanwhile": interrupted,
            "monitored": watched,
            "history": cloud.history(started), "answered": answered,
            "notified": [n for n in cloud.notifications() if n["subject"] == "A shadow test ended"
                         and name in n["message"]]}


@pytest.fixture(scope="module")
def shadowed(cloud, loop):
    """After the loop (a later version serves): v1 shadows it and is better on ground truth (promoted); then v2
    shadows v1 and is worse (production kept)."""
    versions = loop["versions"]
    better = shadow_run(cloud, versions["v1"], "shadow-better", truth_from="shadow", meanwhile=versions["v2"])
    served_after_better = served_model(cloud)
    worse = shadow_run(cloud, versions["v2"], "shadow-worse", truth_from="production", monitor=True)
    served_after_worse = served_model(cloud)
    # The shadow starts, compares well, and its promotion's new fleet fails: production serves alone again.
    cloud.sagemaker.hosting.fail_next_endpoint("the model container exited with code 1", after=1)
    failed = shadow_run(cloud, versions["v2"], "shadow-not-taken", truth_from="shadow")
    serving = endpoint(cloud)["EndpointConfigName"]
    stopped = shadow_run(cloud, versions["v2"], "shadow-stopped", truth_from="shadow", stop=True)
    settled = _settled(cloud)
    smoke_failed = shadow_run(cloud, versions["v3"], "shadow-smoke-fails", truth_from="shadow")
    return {"smoke_failed": smoke_failed, "after_smoke_failed": _settled(cloud)["EndpointConfigName"],"better": better, "worse": worse, "failed": failed, "stopped": stopped, "serving_before_stop": serving,
            "after_stop": settled, "served_after_better": served_after_better,
            "served_after_worse": served_after_worse, "served_after_failure": served_model(cloud),
            "versions": versions}


def _settled(cloud: LocalCloud) -> dict:
    """The endpoint once no change is under way (the cleanup's update takes a moment offline)."""
    for _ in range(200):
        described = endpoint(cloud)
        if described["EndpointStatus"] == "InService":
            return described
        time.sleep(0.05)
    return described


def test_a_promoted_version_that_fails_its_smoke_test_gives_the_endpoint_back_to_production(cloud, shadowed):
    run = shadowed["smoke_failed"]
    assert (run["status"], run["error"]) == ("FAILED", "SmokeTestFailed"), run.get("cause")
    assert run["cause"].endswith("The previous model serves again.")
    assert shadowed["after_smoke_failed"] == shadowed["after_stop"]["EndpointConfigName"]  # production's own config


def test_a_run_stopped_during_its_shadow_test_leaves_production_serving_alone(cloud, shadowed):
    run = shadowed["stopped"]
    assert run["status"] == "ABORTED" and run["cleanup"]
    assert "-shadow-" in run["config"]["EndpointConfigName"]
    assert shadowed["after_stop"]["EndpointConfigName"] == shadowed["serving_before_stop"]
    assert [v["VariantName"] for v in cloud.sagemaker.hosting.configs[shadowed["serving_before_stop"]][
        "ProductionVariants"]] == ["AllTraffic"]


def disagreements(run: dict) -> int:
    return sum(int(float(a) >= 0.5) != int(float(b) >= 0.5) for production, shadow in run["answered"].values()
               for a, b in zip(production, shadow))


def test_a_shadow_serves_beside_production_with_no_weight_and_production_capture(cloud, shadowed):
    variants = shadowed["better"]["config"]["ProductionVariants"]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in variants] == [("AllTraffic", 1), ("Shadow", 0)]
    assert shadowed["better"]["config"]["DataCaptureConfig"]["DestinationS3Uri"].endswith("/capture")


def test_a_better_shadow_is_promoted_and_notified(cloud, shadowed):
    run, v1 = shadowed["better"], shadowed["versions"]["v1"]
    assert disagreements(run) > 0  # else the ground truth could not tell the versions apart
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert run["output"]["deployment"] == "promote" and run["output"]["model_package_arn"] == v1
    assert shadowed["served_after_better"] == cloud.sagemaker.model_packages[v1]["InferenceSpecification"][
        "Containers"][-1]["ModelDataUrl"]
    (note,) = run["notified"]
    assert re.search(r": promoted: on ground truth its (auc|accuracy) is 1 against production's 0\.\d+ \(at least as "
                     r"good\); \d+ production rows \(200 with ground truth\)", note["message"]), note["message"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in run["history"] if "stateEnteredEventDetails" in e]
    assert entered.index("CompareShadow") < entered.index("Promote") < entered.index("SmokeTest")


def test_the_monitor_watches_production_while_a_shadow_serves(cloud, shadowed):
    """During the shadow hour the monitor checks production's version on production's captured traffic only (the
    shadow's replays are captured under its own variant)."""
    watched, v1 = shadowed["worse"]["monitored"], shadowed["versions"]["v1"]
    assert watched["status"] == "SUCCEEDED", watched.get("cause")
    assert watched["output"]["outcome"] in ("Drift", "NoDrift") and watched["output"]["model_package_arn"] == v1
    assert watched["window"]["capture_files"] == watched["production_files"] >= 4


def test_a_deployment_during_another_runs_shadow_test_waits_for_it(shadowed):
    meanwhile = shadowed["better"]["meanwhile"]
    assert (meanwhile["status"], meanwhile["error"]) == ("FAILED", "EndpointNotReady")
    assert "is running a shadow test" in meanwhile["cause"]


def test_a_promotion_that_does_not_take_retires_the_shadow_and_fails_by_name(cloud, shadowed):
    run = shadowed["failed"]
    assert (run["status"], run["error"]) == ("FAILED", "EndpointRolledBack"), run.get("cause")
    assert run["cause"].startswith("The shadow test promoted the version (promoted: ")
    assert shadowed["served_after_failure"] == shadowed["served_after_worse"]
    assert [v["VariantName"] for v in cloud.sagemaker.hosting.configs[endpoint(cloud)["EndpointConfigName"]][
        "ProductionVariants"]] == ["AllTraffic"]


def test_a_worse_shadow_leaves_production_serving_and_is_notified(cloud, shadowed):
    run = shadowed["worse"]
    assert disagreements(run) > 0
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert run["output"]["deployment"] == "kept"
    assert run["output"]["shadow_test"].startswith("production kept: on ground truth its ")
    assert shadowed["served_after_worse"] == shadowed["served_after_better"]  # v1 still serves
    assert [v["VariantName"] for v in cloud.sagemaker.hosting.configs[endpoint(cloud)["EndpointConfigName"]][
        "ProductionVariants"]] == ["AllTraffic"]  # the shadow retired
    (note,) = run["notified"]
    assert "production kept" in note["message"]


# -- teardown (last: it deletes what the loop deployed) -------------------------------------------
def test_delete_endpoint_removes_what_runs_created_which_cdk_destroy_leaves(cloud, loop):
    from operations.delete_endpoint import delete_all, prefix

    assert (prefix(None), prefix("dev")) == ("mlkit-da", "mlkit-dev-da")
    hosting = cloud.sagemaker.hosting
    made = {name for name in [*hosting.configs, *cloud.sagemaker.models] if name.startswith("mlkit-da-")}
    assert made
    deleted = delete_all(boto3.client("sagemaker", region_name="us-east-1"), "mlkit-da", wait_seconds=0)
    assert deleted[0] == f"endpoint {ENDPOINT}"
    assert {item.split(" ")[-1] for item in deleted[1:]} == made
    assert not hosting.endpoints
    assert not [n for n in [*hosting.configs, *cloud.sagemaker.models] if n.startswith("mlkit-da-")]
    assert delete_all(boto3.client("sagemaker", region_name="us-east-1"), "mlkit-da", wait_seconds=0) == []


def test_cleanup_deletes_only_an_endpoint_still_running_the_config_its_run_created():
    cleanup = load_lambda_module("stop_run_jobs", "handler")

    class SageMaker:
        def __init__(self, config: str) -> None:
            self.config, self.deleted = config, []

        def describe_endpoint(self, EndpointName: str) -> dict:
            return {"EndpointName": EndpointName, "EndpointConfigName": self.config, "EndpointStatus": "InService"}

        def delete_endpoint(self, EndpointName: str) -> None:
            self.deleted.append(EndpointName)

    history = [{"taskScheduledEventDetails": {"resourceType": "sagemaker", "resource": "createEndpoint",
                                              "parameters": json.dumps({"EndpointName": ENDPOINT,
                                                                        "EndpointConfigName": "mlkit-da-1"})}},
               {"taskScheduledEventDetails": {"resourceType": "aws-sdk:sagemaker", "resource": "updateEndpoint",
                                              "parameters": json.dumps({"EndpointName": ENDPOINT,
                                                                        "EndpointConfigName": "mlkit-da-2"})}}]
    assert list(cleanup.created_endpoints(history)) == [(ENDPOINT, "mlkit-da-1")]  # an update creates nothing
    went_on = [*history, {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "MonitorDeployment"}}]
    assert list(cleanup.created_endpoints(went_on)) == []  # handed to the monitor: its smoke test had passed
    ours, later = SageMaker("mlkit-da-1"), SageMaker("mlkit-da-9")
    assert cleanup.delete_if_still_ours(ours, ENDPOINT, "mlkit-da-1") == "Deleted" and ours.deleted == [ENDPOINT]
    assert cleanup.delete_if_still_ours(later, ENDPOINT, "mlkit-da-1") == "mlkit-da-9" and later.deleted == []
    # A shadow test the run started: the production config it read, then the shadow config it served.
    shadowing = [event for state, resource, parameters in (
        ("DescribeServingConfig", "describeEndpointConfig", {"EndpointConfigName": "mlkit-da-7"}),
        ("StartShadow", "updateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": "mlkit-da-shadow-8"}),
        ("Promote", "updateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": "mlkit-da-9"}))
        for event in ({"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": state}},
                      {"taskScheduledEventDetails": {"resourceType": "aws-sdk:sagemaker", "resource": resource,
                                                     "parameters": json.dumps(parameters)}})]
    assert list(cleanup.shadow_tests(history)) == []
    assert list(cleanup.shadow_tests(shadowing)) == [(ENDPOINT, "mlkit-da-shadow-8", "mlkit-da-7")]
    still, moved = SageMaker("mlkit-da-shadow-8"), SageMaker("mlkit-da-9")
    still.update_endpoint = moved.update_endpoint = lambda **request: still.deleted.append(request)
    assert cleanup.restore_if_still_shadowing(still, ENDPOINT, "mlkit-da-shadow-8", "mlkit-da-7") == "Restored"
    assert still.deleted == [{"EndpointName": ENDPOINT, "EndpointConfigName": "mlkit-da-7"}]
    assert cleanup.restore_if_still_shadowing(moved, ENDPOINT, "mlkit-da-shadow-8", "mlkit-da-7") == "mlkit-da-9"


def test_delete_endpoint_reports_an_endpoint_it_could_not_delete(capsys, monkeypatch):
    from botocore.exceptions import ClientError

    from operations import delete_endpoint

    class Changing:
        """SageMaker with an endpoint still Creating: nothing else to delete."""
        def delete_endpoint(self, **_):
            raise ClientError({"Error": {"Code": "ValidationException",
                                         "Message": "Cannot delete in-progress endpoint"}}, "DeleteEndpoint")

    with pytest.raises(delete_endpoint.StillThere, match="endpoint mlkit-da-endpoint was not deleted: Cannot delete"):
        delete_endpoint.delete_all(Changing(), "mlkit-da", wait_seconds=0)
    monkeypatch.setattr(delete_endpoint.boto3, "client", lambda *a, **k: Changing())
    assert delete_endpoint.main([]) == 1
    assert "run this again when it has settled" in capsys.readouterr().err



@pytest.mark.slow  # one synthesis of its own
def test_the_documented_shadow_setting_gives_every_run_its_shadow_period(tmp_path):
    """`make synth CDK_ARGS="-c rollout=shadow -c shadow_hours=48"` (docs/deploy-approved.md): a run with no
    shadow_hours of its own shadows for 48 hours (the default configuration's runs, 0, do not: the loop above)."""
    from tests.conftest import synthesize

    template = synthesize(tmp_path, {"rollout": "shadow", "shadow_hours": "48"},
                          ("BuildAndRegister", "DeployApproved")).templates["DeployApproved"]
    states = inline_definition(template)["States"]
    assert states["ValidateInput"]["Parameters"]["Payload"]["defaults"] == {"shadow_hours": 48}
    policy = states["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    assert states["ShadowHour"]["Seconds"] == 3600
    assert states["ValidateInput"]["Parameters"]["Payload"]["rules"]["shadow_hours"] == ["whole", 0, 48]
    assert inline_definition(template)["TimeoutSeconds"] == (360 + 48 * 60) * 60  # the shadow's hours on top
    with pytest.raises(ConfigError, match=r"^invalid setting shadow_hours='0': expected a whole number from 1 to 720$"):
        build_app({**cdk_json_context(), "rollout": "shadow", "shadow_hours": "0"}, outdir=str(tmp_path / "bad"))


def test_the_documented_canary_setting_synthesizes_its_traffic_routing_and_fleet(tmp_path):
    """`make synth CDK_ARGS="-c rollout=canary -c endpoint_instance_count=2"` (docs/deploy-approved.md)."""
    from tests.conftest import synthesize

    template = synthesize(tmp_path, {"rollout": "canary", "endpoint_instance_count": "2"},
                          ("BuildAndRegister", "DeployApproved")).templates["DeployApproved"]
    states = inline_definition(template)["States"]
    policy = states["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                                                     "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}
    (variant,) = states["CreateEndpointConfig"]["Parameters"]["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 2

