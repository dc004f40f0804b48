"""Offline, every request is refused where its service refuses it, from botocore's service model (lengths, sizes,
values, patterns, enums, required members; botocore checks only types, required members and minimums) and the
few limits only an API reference states, with the service's own error code and AWS's wording."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from offline.iam import iam
from offline.sources.request_validation import RequestRefused, service_model, validate

REGION = "us-east-1"
# Every create operation a workflow of the kit may call, with its name field and that field's maximum length.
NAMED = [("CreateTrainingJob", "TrainingJobName", 63), ("CreateProcessingJob", "ProcessingJobName", 63),
         ("CreateTransformJob", "TransformJobName", 63), ("CreateModel", "ModelName", 63),
         ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName", 32)]


def check(operation: str, request: dict) -> None:
    """The constraints of one SageMaker request, whatever members it leaves out."""
    try:
        validate("sagemaker", operation, request)
    except RequestRefused as refused:
        broken = [part for part in str(refused).split("; ") if not part.endswith("Member must not be null")]
        if broken:
            raise RequestRefused(refused.code, "; ".join(broken)) from None


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@pytest.mark.parametrize(("operation", "field", "longest"), NAMED)
def test_names_one_over_the_maximum_are_refused(operation, field, longest):
    assert service_model("sagemaker").operation_model(operation).input_shape.members[field].metadata["max"] == longest
    check(operation, {field: "a" * longest})
    with pytest.raises(RequestRefused, match=rf"at '{lower_first(field)}' failed to satisfy constraint: Member must "
                                             rf"have length less than or equal to {longest}"):
        check(operation, {field: "a" * (longest + 1)})


@pytest.mark.parametrize(("operation", "field", "longest"), NAMED)
def test_names_outside_the_pattern_are_refused(operation, field, longest):
    for name in ("with_underscore", "-leading-hyphen", "ümlaut"):
        with pytest.raises(RequestRefused, match="Member must satisfy regular expression pattern"):
            check(operation, {field: name})


def test_nested_limits_enums_and_maximum_values_are_checked():
    with pytest.raises(RequestRefused, match=r"at 'resourceConfig.instanceType' .* enum value set"):
        check("CreateTrainingJob", {"ResourceConfig": {"InstanceType": "ml.m5.huge"}})
    with pytest.raises(RequestRefused, match=r"'processingResources.clusterConfig.instanceCount' .* value less than "
                                             r"or equal to 100"):
        check("CreateProcessingJob", {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 101}}})
    with pytest.raises(RequestRefused, match=r"at 'hyperParameters' failed to satisfy constraint: Map keys must "
                                             r"satisfy constraint: \[Member must have length less than or equal "
                                             r"to 256"):
        check("CreateTrainingJob", {"HyperParameters": {"k" * 257: "1"}})
    with pytest.raises(RequestRefused, match=r"at 'tags.2.member.value' failed to satisfy"):
        check("AddTags", {"Tags": [{"Key": "a", "Value": "b"}, {"Key": "team", "Value": "semi;colon"}]})


def test_every_broken_constraint_is_reported_as_aws_counts_them():
    with pytest.raises(RequestRefused, match=r"^2 validation errors detected: Value null at 'endpointConfigName' "
                                             r"failed to satisfy constraint: Member must not be null; Value 'a_b' at "
                                             r"'endpointName' failed to satisfy constraint: Member must satisfy "
                                             r"regular"):
        validate("sagemaker", "CreateEndpoint", {"EndpointName": "a_b"})


def test_patterns_written_for_java_are_understood():
    # Unicode classes (\p{L}) and UTF-16 surrogate ranges in the model's patterns match as SageMaker matches them.
    check("AddTags", {"Tags": [{"Key": "team", "Value": "Übung 日本"}]})
    athena = lambda catalog: {"ProcessingInputs": [  # noqa: E731 (a field whose pattern spells surrogate pairs)
        {"DatasetDefinition": {"AthenaDatasetDefinition": {"Catalog": catalog}}}]}
    check("CreateProcessingJob", athena("catalog 😀 outside the basic plane"))
    with pytest.raises(RequestRefused, match="Member must satisfy regular expression pattern"):
        check("CreateProcessingJob", athena("control \x01 character"))
    for value in ("semi;colon", "emoji 😀"):  # neither is a letter, separator or number
        with pytest.raises(RequestRefused, match="Member must satisfy regular expression pattern"):
            check("AddTags", {"Tags": [{"Key": "team", "Value": value}]})


# -- every service, through the clients offline code uses -------------------------------------------
@pytest.fixture
def aws(monkeypatch):
    """moto with the offline hooks on every client, as a local account has them."""
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        iam.install()
        yield lambda service: boto3.client(service, region_name=REGION)


def refused(call, code: str, *words: str) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for word in words:
        assert word in raised.value.response["Error"]["Message"]


MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
ROLE = "arn:aws:iam::123456789012:role/r"


def test_s3_refuses_what_its_model_refuses(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="data")
    refused(lambda: s3.put_object(Bucket="data", Key="k", Body=b"", StorageClass="COLD"), "InvalidStorageClass",
            "at 'StorageClass'", "Member must satisfy enum value set: [STANDARD,")
    refused(lambda: s3.put_object(Bucket="data", Key="k", Body=b"", ServerSideEncryption="rot13"), "InvalidArgument",
            "at 'ServerSideEncryption'", "enum value set")
    refused(lambda: s3.list_buckets(MaxBuckets=10001), "InvalidArgument", "value less than or equal to 10000")
    s3.put_object(Bucket="data", Key="k", Body=b"", StorageClass="STANDARD_IA", ServerSideEncryption="aws:kms")


def test_sns_refuses_with_invalid_parameter(aws):
    sns = aws("sns")
    topic = sns.create_topic(Name="t")["TopicArn"]
    refused(lambda: sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "k" * 129, "Value": "v"}]), "InvalidParameter",
            "Invalid parameter: Tags.1.member.Key", "Member must have length less than or equal to 128")
    refused(lambda: sns.publish(TopicArn=topic, Message="m", Subject="s" * 100), "InvalidParameter",
            "Invalid parameter: Subject", "less than 100 characters")
    refused(lambda: sns.publish(TopicArn=topic, Message="m", Subject="two\nlines"), "InvalidParameter", "Subject")
    sns.publish(TopicArn=topic, Message="m", Subject="s" * 99)
    sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "k" * 128, "Value": "v"}])


def test_lambda_refuses_with_validation_exception(aws):
    lambda_ = aws("lambda")
    refused(lambda: lambda_.invoke(FunctionName="f" * 257), "ValidationException",
            "at 'functionName'", "Member must have length less than or equal to 256")
    refused(lambda: lambda_.invoke(FunctionName="my function"), "ValidationException",
            "at 'functionName'", "regular expression pattern")
    refused(lambda: lambda_.invoke(FunctionName="f", InvocationType="Later"), "ValidationException",
            "at 'invocationType'", "enum value set: [Event, RequestResponse, DryRun]")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):  # valid: it reaches moto, which has no f
        lambda_.invoke(FunctionName="f", InvocationType="Event")


def test_step_functions_refuses_with_validation_exception(aws):
    sfn = aws("stepfunctions")
    arn = sfn.create_state_machine(name="m", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    refused(lambda: sfn.start_execution(stateMachineArn=arn, name="n" * 81), "ValidationException",
            "at 'name'", "Member must have length less than or equal to 80")
    refused(lambda: sfn.list_executions(stateMachineArn=arn, statusFilter="DONE"), "ValidationException",
            "at 'statusFilter'", "enum value set")
    refused(lambda: sfn.list_executions(stateMachineArn=arn, maxResults=1001), "ValidationException",
            "at 'maxResults'", "value less than or equal to 1000")
    sfn.start_execution(stateMachineArn=arn, name="n" * 80)


def test_cloudwatch_refuses_with_validation_error(aws):
    cloudwatch = aws("cloudwatch")
    alarm = {"AlarmName": "a", "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
             "MetricName": "m", "Namespace": "n", "Period": 60, "Statistic": "Average", "Threshold": 1.0}
    refused(lambda: cloudwatch.put_metric_alarm(**{**alarm, "AlarmName": "a" * 256}), "ValidationError",
            "at 'alarmName'", "length less than or equal to 255")
    refused(lambda: cloudwatch.put_metric_alarm(**{**alarm, "Statistic": "Median"}), "ValidationError",
            "at 'statistic'", "enum value set: [SampleCount,")
    refused(lambda: cloudwatch.put_metric_data(Namespace="n", MetricData=[{"MetricName": "m", "Unit": "Parsecs"}]),
            "ValidationError", "at 'metricData.1.member.unit'")
    cloudwatch.put_metric_alarm(**alarm)


def test_eventbridge_and_its_scheduler_refuse_with_validation_exception(aws):
    events, scheduler = aws("events"), aws("scheduler")
    refused(lambda: events.put_rule(Name="a rule", EventPattern="{}"), "ValidationException",
            "at 'name'", "regular expression pattern: [\\.\\-_A-Za-z0-9]+")
    refused(lambda: events.put_rule(Name="r" * 65, EventPattern="{}"), "ValidationException",
            "length less than or equal to 64")
    refused(lambda: events.put_rule(Name="r", EventPattern="{}", State="ON"), "ValidationException",
            "at 'state'", "enum value set")
    refused(lambda: scheduler.get_schedule(Name="s" * 65), "ValidationException", "at 'name'")
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["x"]}), State="ENABLED")


def _finished(sfn, arn: str) -> dict:
    for _ in range(200):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise TimeoutError(arn)


@pytest.mark.parametrize(("subject", "status"), [("s" * 100, "FAILED"), ("s" * 99, "SUCCEEDED")])
def test_the_interpreters_own_clients_are_checked(aws, subject, status):
    """moto's interpreter makes its clients with parameter validation off; the hook still checks what a Task sends."""
    sns, sfn = aws("sns"), aws("stepfunctions")
    topic = sns.create_topic(Name="t")["TopicArn"]
    definition = {"StartAt": "Publish", "States": {"Publish": {
        "Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": True,
        "Parameters": {"TopicArn": topic, "Message": "m", "Subject": subject}}}}
    machine = sfn.create_state_machine(name="publish", roleArn=ROLE, definition=json.dumps(definition))
    described = _finished(sfn, sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"])
    assert described["status"] == status
    if status == "FAILED":
        assert described["error"] == "SNS.InvalidParameterException"
        assert "Invalid parameter: Subject" in described["cause"]


def test_the_interpreters_aws_sdk_tasks_are_checked_against_the_model(aws):
    sfn = aws("stepfunctions")
    definition = {"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:cloudwatch:putMetricData", "End": True,
        "Parameters": {"Namespace": "n", "MetricData": [{"MetricName": "m", "Value": 1, "Unit": "Parsecs"}]}}}}
    machine = sfn.create_state_machine(name="put", roleArn=ROLE, definition=json.dumps(definition))
    described = _finished(sfn, sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"])
    assert described["status"] == "FAILED"
    assert "at 'metricData.1.member.unit' failed to satisfy constraint" in described["cause"]
