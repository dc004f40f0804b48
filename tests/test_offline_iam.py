"""IAM offline: the evaluator, the call table, what moto's own enforcement covers, and planted over-reach that
fails offline with AccessDenied and passes once granted."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from offline.sources.assembly import load_workflows
from offline.cloud.account import LocalCloud
from offline.iam.iam_policy import UnsupportedPolicy, decide, parse_policy
from offline.iam.iam_requests import Keys, UnmappedCall, checks_for, mapped_calls
from stacks.asl.integrations import SERVICE_INTEGRATIONS
from tests.conftest import synthesize

TT = "TrainAndTransform"
RUN = {"rows": 300, "seed": 2}
BUCKET_ARN = "arn:aws:s3:::data"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"  # a runner serves it


def policy(*statements: dict) -> list:
    return parse_policy({"Statement": list(statements)}, "test")


def allow(action, resource, condition=None) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **({"Condition": condition} if condition else {})}


# -- the evaluator --------------------------------------------------------------------------------
@pytest.mark.parametrize(("statement", "action", "resource", "expected"), [
    (allow("S3:Put*", f"{BUCKET_ARN}/runs/*/input/*"), "s3:PutObject", f"{BUCKET_ARN}/runs/a/input/b/c.csv", "Allow"),
    (allow("s3:PutObject", f"{BUCKET_ARN}/runs/*/input/*"), "s3:PutObject", f"{BUCKET_ARN}/runs/a/report/c", "ImplicitDeny"),
    (allow("s3:PutObject", f"{BUCKET_ARN}/runs/*/input/*"), "s3:GetObject", f"{BUCKET_ARN}/runs/a/input/c", "ImplicitDeny"),
    # A wildcard does not reach across an ARN's region or account.
    (allow("sns:Publish", "arn:aws:sns:*:1*"), "sns:Publish", "arn:aws:sns:us-east-1:123:topic", "ImplicitDeny"),
    (allow("sns:Publish", "arn:aws:sns:*:123:*"), "sns:Publish", "arn:aws:sns:us-east-1:123:topic", "Allow"),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "iam:PassRole", "arn:aws:iam::1:role/r", "ImplicitDeny"),
    ({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET_ARN}/secret/*"}, "s3:GetObject",
     f"{BUCKET_ARN}/secret/k", "ImplicitDeny"),
    (allow("s3:ListBucket", BUCKET_ARN, {"StringLike": {"s3:prefix": ["runs/*"]}}), "s3:ListBucket", BUCKET_ARN,
     "ImplicitDeny"),  # no prefix in the request: the condition is false
], ids=["wildcard-action", "outside-folder", "other-action", "wildcard-stays-in-segment", "segment-wildcards",
        "not-action", "not-resource", "condition-key-absent"])
def test_statements_match_actions_and_resources_as_iam_does(statement, action, resource, expected):
    assert decide(policy(statement), action, resource, {}) == expected


def test_an_explicit_deny_wins_over_any_allow():
    statements = policy(allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{BUCKET_ARN}/*"})
    assert decide(statements, "s3:PutObject", f"{BUCKET_ARN}/k", {}) == "Deny"
    assert decide(statements, "s3:GetObject", f"{BUCKET_ARN}/k", {}) == "Allow"


GUARDS = {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.c5.xlarge"]},
          "Null": {"sagemaker:InstanceTypes": "false"}, "Bool": {"sagemaker:NetworkIsolation": "true"},
          "NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": 3600}}


@pytest.mark.parametrize(("context", "expected"), [
    ({"sagemaker:InstanceTypes": ["ml.m5.large"], "sagemaker:NetworkIsolation": True,
      "sagemaker:MaxRuntimeInSeconds": 3600}, "Allow"),
    ({"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p4d.24xlarge"], "sagemaker:NetworkIsolation": True,
      "sagemaker:MaxRuntimeInSeconds": 60}, "ImplicitDeny"),
    ({"sagemaker:NetworkIsolation": True, "sagemaker:MaxRuntimeInSeconds": 60}, "ImplicitDeny"),  # Null: false
    ({"sagemaker:InstanceTypes": ["ml.m5.large"], "sagemaker:NetworkIsolation": False,
      "sagemaker:MaxRuntimeInSeconds": 60}, "ImplicitDeny"),
    ({"sagemaker:InstanceTypes": ["ml.m5.large"], "sagemaker:NetworkIsolation": True,
      "sagemaker:MaxRuntimeInSeconds": 3601}, "ImplicitDeny"),
], ids=["within-guards", "one-instance-type-outside", "no-instance-type", "isolation-off", "runtime-over-cap"])
def test_the_kits_job_guards_decide_as_iam_does(context, expected):
    statements = policy(allow("sagemaker:CreateTrainingJob", "*", GUARDS))
    assert decide(statements, "sagemaker:CreateTrainingJob", "arn:aws:sagemaker:r:1:training-job/x", context) == expected


def test_negated_operators_and_if_exists_on_a_missing_key():
    negated = policy(allow("s3:GetObject", "*", {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}))
    if_exists = policy(allow("s3:GetObject", "*", {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}))
    arn_like = policy(allow("lambda:InvokeFunction", "*", {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:1:rule/a-*"}}))
    assert decide(negated, "s3:GetObject", "x", {}) == "Allow"  # IAM: a negated operator holds on a missing key
    assert decide(if_exists, "s3:GetObject", "x", {}) == "Allow"
    assert decide(arn_like, "lambda:InvokeFunction", "f", {"aws:SourceArn": "arn:aws:events:r:1:rule/a-b"}) == "Allow"
    assert decide(arn_like, "lambda:InvokeFunction", "f", {"aws:SourceArn": "arn:aws:events:r:2:rule/a-b"}) != "Allow"


def test_an_allow_that_holds_only_because_an_unmodelled_key_is_absent_fails_loudly():
    statements = policy(allow("s3:GetObject", "*", {"StringNotEquals": {"aws:ResourceTag/team": "other"}}))
    with pytest.raises(UnsupportedPolicy, match="StringNotEquals aws:ResourceTag/team holds only because the key is "
                                                "absent, a key offline does not set"):
        decide(statements, "s3:GetObject", "x", {}, known={"s3:prefix"})


@pytest.mark.parametrize(("condition", "message"), [
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, "condition operator DateLessThan is not evaluated"),
    ({"StringEquals": {"s3:prefix": "${aws:username}/"}}, "policy variables"),
])
def test_a_condition_offline_cannot_decide_fails_loudly_naming_it(condition, message):
    with pytest.raises(UnsupportedPolicy, match=message):
        decide(policy(allow("s3:ListBucket", "*", condition)), "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "a/"})


# -- the call table -------------------------------------------------------------------------------
def test_a_call_without_a_mapping_fails_naming_where_to_add_it():
    with pytest.raises(UnmappedCall, match=r"s3:PutBucketPolicy has no IAM mapping offline.*offline/iam/iam_requests.py"):
        checks_for("s3", "PutBucketPolicy", {"Bucket": "b"}, Keys())


def test_a_sagemaker_create_passes_its_role_and_sets_the_guarded_keys():
    request = {"TrainingJobName": "Mlkit-TT-1", "RoleArn": "arn:aws:iam::1:role/jobs", "EnableNetworkIsolation": True,
               "ResourceConfig": {"InstanceType": "ml.m5.large", "VolumeKmsKeyId": "k1"},
               "OutputDataConfig": {"S3OutputPath": "s3://b/", "KmsKeyId": "k2"},
               "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "Tags": [{"Key": "a", "Value": "b"}]}
    create, tags, pass_role = checks_for("sagemaker", "CreateTrainingJob", request, Keys())
    assert create.resource.endswith(":training-job/mlkit-tt-1")  # SageMaker ARNs hold names in lower case
    assert create.context == {"sagemaker:InstanceTypes": ["ml.m5.large"], "sagemaker:MaxRuntimeInSeconds": 60,
                              "sagemaker:NetworkIsolation": True, "sagemaker:VolumeKmsKey": "k1",
                              "sagemaker:OutputKmsKey": "k2"}
    assert (tags.action, pass_role.action, pass_role.resource) == ("sagemaker:AddTags", "iam:PassRole",
                                                                   "arn:aws:iam::1:role/jobs")
    assert pass_role.context == {"iam:PassedToService": "sagemaker.amazonaws.com"}


def test_an_endpoint_configs_volume_key_is_its_own_not_its_captures():
    request = {"EndpointConfigName": "c", "KmsKeyId": "volume", "DataCaptureConfig": {"KmsKeyId": "capture"},
               "ProductionVariants": [{"InstanceType": "ml.m5.large"}, {"InstanceType": "ml.c5.xlarge"}]}
    (create,) = checks_for("sagemaker", "CreateEndpointConfig", request, Keys())
    assert create.context == {"sagemaker:VolumeKmsKey": "volume",
                              "sagemaker:InstanceTypes": ["ml.m5.large", "ml.c5.xlarge"]}


def iam_reference() -> dict:
    """The IAM service authorization reference as cfn-lint ships it: actions, their resource types, ARN formats."""
    import cfnlint.data.AdditionalSpecs

    return json.loads((Path(cfnlint.data.AdditionalSpecs.__file__).parent / "Policies.json").read_text())


def test_every_mapped_call_checks_real_actions_on_resources_of_their_types():
    """Checked against the IAM reference, not against the kit's own table, so a wrong row cannot pass."""
    reference, arn = iam_reference(), "arn:aws:{}:us-east-1:123456789012:{}"
    key = arn.format("kms", "key/k")
    keys = Keys(buckets={"b": key}, topics={arn.format("sns", "t"): key},
                state_machines={arn.format("states", "stateMachine:m"): key}, queues={"q": key})
    request = {"Bucket": "b", "Key": "k/x", "Prefix": "k/", "FunctionName": "f", "TopicArn": arn.format("sns", "t"),
               "stateMachineArn": arn.format("states", "stateMachine:m"),
               "executionArn": arn.format("states", "execution:m:e"), "RoleArn": "arn:aws:iam::123456789012:role/r",
               "ModelPackageGroupName": "g", "ModelPackageName": arn.format("sagemaker", "model-package/g/1"),
               "ModelPackageArn": arn.format("sagemaker", "model-package/g/1"), "Tags": [{"Key": "k", "Value": "v"}],
               "CopySource": "b/k/y", "Name": "s", "Namespace": "n",
               "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
               "DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]}},
               **{f"{noun}Name": "n" for noun in ("TrainingJob", "ProcessingJob", "TransformJob", "Model", "Endpoint",
                                                  "HyperParameterTuningJob", "EndpointConfig", "MonitoringSchedule")}}
    checked = set()
    for service, operation in mapped_calls():
        for check in checks_for(service, operation, request, keys):
            prefix, action = check.action.split(":")
            entry = reference[prefix]["Actions"].get(action.lower())
            assert entry is not None, f"{service}:{operation} checks {check.action}, which IAM does not define"
            formats = [f for kind in entry.get("Resources", [])
                       for f in reference[prefix]["Resources"][kind]["ARNFormats"]]
            patterns = [f.replace("${Partition}", "aws").replace("${Region}", "[^:]*").replace("${Account}", "[0-9]*")
                        for f in formats]  # the reference writes ARN formats as regular expressions
            # Metric data names no resource a policy can scope (CloudWatch User Guide, "Using condition keys to
            # limit access to CloudWatch namespaces"): it is authorized on "*", narrowed by cloudwatch:namespace.
            on_star = check.action in ("cloudwatch:PutMetricData",) and check.resource == "*"
            assert on_star or any(re.fullmatch(p, check.resource) for p in patterns), \
                f"{service}:{operation}: {check.action} on {check.resource} is none of {entry.get('Resources')}"
            checked.add(check.action)
    assert {"s3:GetObject", "iam:PassRole", "sagemaker:AddTags", "kms:Decrypt", "states:StartExecution",
            "sqs:SendMessage", "cloudwatch:DescribeAlarms"} <= checked


def test_objects_under_a_customer_managed_key_need_the_key_through_s3():
    keys = Keys(buckets={"data": "arn:aws:kms:us-east-1:123456789012:key/k"})
    put, generate = checks_for("s3", "PutObject", {"Bucket": "data", "Key": "runs/a/input/x"}, keys)
    assert (put.action, put.resource) == ("s3:PutObject", "arn:aws:s3:::data/runs/a/input/x")
    assert (generate.action, generate.context["kms:ViaService"]) == ("kms:GenerateDataKey", "s3.us-east-1.amazonaws.com")


# -- planted over-reach, in a copy of the synthesized assembly -------------------------------------------
@pytest.fixture
def assembly(synthesized, tmp_path) -> Path:
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized["default"].outdir, copy)
    return copy


def template_of(assembly: Path, stack: str) -> tuple[Path, dict]:
    path = assembly / f"{stack}.template.json"
    return path, json.loads(path.read_text())


def role_policy(template: dict, role_prefix: str) -> dict:
    """The policy document of the role whose logical ID starts with role_prefix."""
    (document,) = [r["Properties"]["PolicyDocument"] for r in template["Resources"].values()
                   if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"][0]["Ref"].startswith(role_prefix)]
    return document


def run(assembly: Path, stack: str = TT, name: str = "planted") -> tuple[dict, LocalCloud]:
    with LocalCloud(assembly) as cloud:
        arn = cloud.start(stack, RUN, name)
        described = cloud.wait([arn])[arn]
        described["history"] = cloud.history(arn)
        described["jobs"] = {kind: dict(jobs) for kind, jobs in cloud.sagemaker.jobs.items()}
        return described, cloud


def refusal(role: str, action: str, resource: str, service: str = "") -> str:
    quoted = f'"{resource}"' if service == "s3" else resource
    return (f"User: arn:aws:sts::123456789012:assumed-role/{role} is not authorized to perform: {action} on "
            f"resource: {quoted} because no identity-based policy allows the {action} action")


def test_a_function_writing_outside_its_writes_is_denied_and_passes_once_granted(assembly):
    """The issue's report function: it writes a report/ folder its declaration does not grant."""
    seed = next(f for f in load_workflows(assembly)[TT].functions.values() if "seeddataset" in f.name)
    handler = seed.code_dir / "handler.py"
    handler.write_text(handler.read_text() + (
        "\n\n_seed = handler\n\n\ndef handler(event, context, s3_client=None):\n"
        "    result = _seed(event, context, s3_client)\n"
        "    boto3.client('s3').put_object(Bucket=os.environ['DATA_BUCKET'], Body=b'planted',\n"
        "                                  Key=event['prefix'].replace('/input/', '/report/') + 'summary.txt')\n"
        "    return result\n"))
    denied, cloud = run(assembly)
    bucket = cloud.workflows[TT].data_bucket
    assert denied["status"] == "FAILED"
    failed = next(e["taskFailedEventDetails"] for e in denied["history"] if e["type"] == "TaskFailed")
    error = json.loads(failed["cause"])  # as Lambda reports a function's error
    assert error["errorType"] == "AccessDenied"
    assert error["errorMessage"] == "An error occurred (AccessDenied) when calling the PutObject operation: " + refusal(
        f"trainandtransform-seeddatasetrole53fa0254/{seed.name}", "s3:PutObject",
        f"arn:aws:s3:::{bucket}/runs/planted/report/summary.txt", "s3")

    path, template = template_of(assembly, TT)  # grant it, as `writes=("input", "report")` would
    role_policy(template, "SeedDatasetRole")["Statement"].append(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/runs/*/report/*"})
    path.write_text(json.dumps(template))
    granted, _ = run(assembly)
    assert granted["status"] == "SUCCEEDED", granted.get("cause")


def test_a_job_reading_outside_its_folders_is_denied_and_passes_once_granted(assembly):
    path, template = template_of(assembly, TT)
    original = path.read_text()
    reads = next(s for s in role_policy(template, "SageMakerRole")["Statement"] if s["Action"] == "s3:GetObject")
    reads["Resource"] = [r for r in reads["Resource"] if "/runs/*/input/*" not in json.dumps(r)]  # reads=("model",)
    path.write_text(json.dumps(template))
    denied, cloud = run(assembly)
    assert denied["status"] == "FAILED"
    (job,) = denied["jobs"]["TrainingJob"].values()
    assert job["TrainingJobStatus"] == "Failed"
    bucket = cloud.workflows[TT].data_bucket
    assert refusal("trainandtransform-sagemakerrole1353c180/SageMaker", "s3:GetObject",
                   f"arn:aws:s3:::{bucket}/runs/planted/input/train/train.csv", "s3") in job["FailureReason"]

    path.write_text(original)
    granted, _ = run(assembly)
    assert granted["status"] == "SUCCEEDED", granted.get("cause")


def test_a_state_machine_calling_an_action_its_integration_table_lacks_is_denied(synthesized, tmp_path, monkeypatch):
    """The table's createModel row without sagemaker:CreateModel: synthesis grants the role less, and the
    SaveModel task is refused offline; the real table's grant passes."""
    row = SERVICE_INTEGRATIONS["sagemaker:createModel"]
    monkeypatch.setitem(SERVICE_INTEGRATIONS, "sagemaker:createModel", dataclasses.replace(
        row, actions=tuple(a for a in row.actions if a != "sagemaker:CreateModel"), guarded_action=None))
    lacking = synthesize(tmp_path / "lacking", {}, (TT,)).outdir
    monkeypatch.undo()
    denied, _ = run(lacking)
    assert denied["status"] == "FAILED"
    failed = [e["taskFailedEventDetails"] for e in denied["history"] if e["type"] == "TaskFailed"]
    assert failed and all(f["error"] == "SageMaker.AmazonSageMakerException" for f in failed)
    assert "sagemaker:CreateModel on resource: arn:aws:sagemaker:us-east-1:123456789012:model/mlkit-tt-" in failed[0]["cause"]
    assert "because no identity-based policy allows the sagemaker:CreateModel action" in failed[0]["cause"]
    assert "Error Code: AccessDeniedException" in failed[0]["cause"]

    granted, _ = run(synthesized["default"].outdir, name="planted-granted")
    assert granted["status"] == "SUCCEEDED", granted.get("cause")


def test_event_rule_targets_are_reached_only_as_their_role_and_resource_policy_allow(assembly):
    path, template = template_of(assembly, TT)
    original = path.read_text()
    for logical_id in [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Permission"]:
        del template["Resources"][logical_id]  # the cleanup rule may no longer invoke its function
    path.write_text(json.dumps(template))
    failed = {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:mlkit-tt:x", "status": "FAILED",
              "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:mlkit-tt", "name": "x"}
    with LocalCloud(assembly) as cloud:
        with pytest.raises(PermissionError, match="no statement of the function's resource policy"):
            cloud.events.put("aws.states", "Step Functions Execution Status Change", failed, [failed["executionArn"]])
    path.write_text(original)
    with LocalCloud(assembly) as cloud:  # invoked: the function looks for the (made-up) execution's history
        (delivery,) = cloud.events.put("aws.states", "Step Functions Execution Status Change", failed,
                                       [failed["executionArn"]])
        assert "ExecutionDoesNotExist" in delivery["result"]["gave_up"]["responsePayload"]["errorMessage"]
        assert "stoprunjobs" in cloud.lambda_.invocations[-1][0]


def test_a_rule_whose_role_may_not_start_the_state_machine_is_refused(synthesized, tmp_path):
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized["default"].outdir, copy)
    path, template = template_of(copy, "DeployApproved")
    role_policy(template, "StartedByEvents")["Statement"].clear()
    path.write_text(json.dumps(template))
    approved = {"ModelPackageGroupName": "mlkit-br-models", "ModelApprovalStatus": "Approved",
                "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models/9"}
    with LocalCloud(copy) as cloud:
        with pytest.raises(ClientError, match="AccessDeniedException") as refused:
            cloud.events.put("aws.sagemaker", "SageMaker Model Package State Change", approved,
                             [approved["ModelPackageArn"]])
    assert "deployapproved-startedbyevents611f24fd/mlkit-da-on-approval is not authorized to perform: " \
           "states:StartExecution on resource: arn:aws:states:us-east-1:123456789012:stateMachine:mlkit-da" \
           in str(refused.value)


# -- what moto's own enforcement covers --------------------------------------------------------------------
def test_what_motos_iam_enforcement_covers():
    """moto authorizes signed requests of IAM users and assumed roles ("very basic"): measured here on grants
    shaped like the kit's (a run folder, a listed prefix, one topic). It is right on object grants (without
    naming action or resource), lets a listing outside the granted s3:prefix through, evaluates a non-S3
    resource as "*" (so a grant scoped to one topic denies), and never sees the Lambda and SageMaker calls,
    which offline/services/server.py serves. So offline/iam/iam.py evaluates every call itself."""
    from moto import mock_aws
    from moto.core import set_initial_no_auth_action_count

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}]})
    grants = {"Version": "2012-10-17", "Statement": [allow("s3:PutObject", "arn:aws:s3:::data/runs/*/input/*"),
                            allow("s3:ListBucket", "arn:aws:s3:::data", {"StringLike": {"s3:prefix": ["runs/*"]}}),
                            allow("sns:Publish", "arn:aws:sns:us-east-1:123456789012:topic")]}

    @set_initial_no_auth_action_count(5)  # the set-up calls below, up to AssumeRole
    def measure() -> dict[str, str]:
        iam, sts = boto3.client("iam", region_name="us-east-1"), boto3.client("sts", region_name="us-east-1")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="data")
        boto3.client("sns", region_name="us-east-1").create_topic(Name="topic")
        iam.create_role(RoleName="seed", AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName="seed", PolicyName="p", PolicyDocument=json.dumps(grants))
        credentials = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/seed", RoleSessionName="seed")["Credentials"]
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"], region_name="us-east-1",
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"])
        s3, sns = session.client("s3"), session.client("sns")
        calls = {"put inside the grant": lambda: s3.put_object(Bucket="data", Key="runs/a/input/x", Body=b"1"),
                 "put outside the grant": lambda: s3.put_object(Bucket="data", Key="runs/a/report/x", Body=b"1"),
                 "list under the granted prefix": lambda: s3.list_objects_v2(Bucket="data", Prefix="runs/a/"),
                 "list outside the granted prefix": lambda: s3.list_objects_v2(Bucket="data", Prefix="datasets/"),
                 "publish to the granted topic": lambda: sns.publish(
                     TopicArn="arn:aws:sns:us-east-1:123456789012:topic", Message="m")}
        outcome = {}
        for what, call in calls.items():
            try:
                call()
                outcome[what] = "allowed"
            except ClientError as error:
                outcome[what] = f"denied: {error.response['Error']['Message']}"
        return outcome

    with mock_aws():
        outcome = measure()
    assert outcome["put inside the grant"] == "allowed"
    assert outcome["put outside the grant"] == "denied: Access Denied"  # right, but says neither action nor resource
    assert outcome["list under the granted prefix"] == "allowed"
    assert outcome["list outside the granted prefix"] == "allowed"  # AWS denies it: its s3:prefix is not runs/*
    assert outcome["publish to the granted topic"] == (  # AWS allows it: the resource is granted
        "denied: User: arn:aws:sts::123456789012:assumed-role/seed/seed is not authorized to perform: sns:Publish")


def test_under_a_customer_managed_key_a_write_needs_the_key_too(synthesized, tmp_path):
    """encryption=kms: the bucket's objects are SSE-KMS, so a function writing one needs kms:GenerateDataKey
    through S3 as well as s3:PutObject."""
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized["kms"].outdir, copy)
    path, template = template_of(copy, TT)
    statements = role_policy(template, "SeedDatasetRole")["Statement"]
    statements[:] = [s for s in statements if s["Action"] != "kms:GenerateDataKey"]
    path.write_text(json.dumps(template))
    denied, cloud = run(copy)
    assert denied["status"] == "FAILED"
    failed = next(e["taskFailedEventDetails"] for e in denied["history"] if e["type"] == "TaskFailed")
    assert "is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/" \
           "trainandtransform-key961b73fd because no identity-based policy allows the kms:GenerateDataKey action" \
           in json.loads(failed["cause"])["errorMessage"]


def test_an_endpoint_fetches_its_model_as_the_models_role(synthesized):
    """A model whose artifact lies outside what its execution role reads: the endpoint fails to start."""
    with LocalCloud(synthesized["default"].outdir) as cloud:
        role = next(r for r in cloud.iam.roles if r.endswith("/deployapproved-sagemakerrole1353c180"))
        artifact = f"s3://{cloud.workflows['BuildAndRegister'].data_bucket}/runs/r/evaluation/model.tar.gz"
        cloud.s3.put_object(Bucket=artifact.split("/")[2], Key=artifact.split("/", 3)[3], Body=b"not read")
        for operation, request in [
            ("CreateModel", {"ModelName": "mlkit-da-m", "ExecutionRoleArn": role,
                             "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": artifact}}),
            ("CreateEndpointConfig", {"EndpointConfigName": "mlkit-da-c", "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "mlkit-da-m", "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": 1}]}),
            ("CreateEndpoint", {"EndpointName": "mlkit-da-e", "EndpointConfigName": "mlkit-da-c"})]:
            cloud.sagemaker.handle(operation, request)
        while (endpoint := cloud.sagemaker.handle("DescribeEndpoint", {"EndpointName": "mlkit-da-e"}))[
                "EndpointStatus"] == "Creating":
            time.sleep(0.05)
    assert endpoint["EndpointStatus"] == "Failed"
    assert refusal("deployapproved-sagemakerrole1353c180/SageMaker", "s3:GetObject",
                   f"arn:aws:s3:::{artifact.removeprefix('s3://')}", "s3") in endpoint["FailureReason"]
