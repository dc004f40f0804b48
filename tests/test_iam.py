"""Exact IAM statements of every role: the least-privilege claim, proven statement by statement."""
from __future__ import annotations

import pytest

from tests.conftest import CONFIGURATIONS

from tests.cfn import ACCOUNT, PARTITION, REGION, arn, get_att, join, logical_id, of_type, resource

STACK = "TrainAndTransform"
PREFIX = "mlkit-tt"
IMAGE_ACCOUNT = {"Fn::FindInMap": ["SageMakerImageRegistry", REGION, "Account"]}
XRAY = {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"}
# Actions AWS defines without resource-level permissions: the only ones allowed on Resource "*".
STAR_ACTIONS = {
    "xray:PutTelemetryRecords", "xray:PutTraceSegments", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
    "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData",
}


def statements(template: dict, role_path: str) -> list[dict]:
    return resource(template, f"{role_path}/DefaultPolicy/Resource")["Properties"]["PolicyDocument"]["Statement"]


def trust(template: dict, role_path: str) -> list[dict]:
    return resource(template, f"{role_path}/Resource")["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def bucket_objects(template: dict, pattern: str) -> dict:
    return join(get_att(template, "Data/Bucket/Resource"), f"/{pattern}")


def service_trust(service: str, confused_deputy: bool = True) -> list[dict]:
    statement = {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": service}}
    if confused_deputy:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    return [dict(sorted(statement.items()))]


@pytest.fixture(scope="module")
def template(templates):
    return templates[STACK]


def test_validate_input_function_role(template):
    assert trust(template, "ValidateInput/Role") == service_trust("lambda.amazonaws.com", confused_deputy=False)
    assert statements(template, "ValidateInput/Role") == [
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": get_att(template, "ValidateInput/Logs/Resource")},
        XRAY,
    ]


def test_seed_function_role_writes_only_run_inputs(template):
    assert trust(template, "SeedDataset/Role") == service_trust("lambda.amazonaws.com", confused_deputy=False)
    assert statements(template, "SeedDataset/Role") == [
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": get_att(template, "SeedDataset/Logs/Resource")},
        XRAY,
        {"Action": "s3:PutObject", "Effect": "Allow", "Resource": bucket_objects(template, "runs/*/input/*")},
    ]


def test_sagemaker_role(template):
    def job_logs(suffix: str) -> list[dict]:
        return [arn("logs", f"log-group:/aws/sagemaker/{group}:{suffix}") for group in ("TrainingJobs", "TransformJobs")]

    assert trust(template, "SageMakerRole/Role") == service_trust("sagemaker.amazonaws.com")
    assert statements(template, "SageMakerRole/Role") == [
        {"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}, "Effect": "Allow",
         "Resource": get_att(template, "Data/Bucket/Resource")},
        {"Action": "s3:GetObject", "Effect": "Allow",
         "Resource": [bucket_objects(template, "runs/*/input/*"), bucket_objects(template, "runs/*/model/*")]},
        {"Action": ["s3:AbortMultipartUpload", "s3:PutObject"], "Effect": "Allow",
         "Resource": [bucket_objects(template, "runs/*/model/*"), bucket_objects(template, "runs/*/predictions/*")]},
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {"Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Effect": "Allow", "Resource": arn("ecr", "repository/sagemaker-xgboost", account=IMAGE_ACCOUNT)},
        {"Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"], "Effect": "Allow", "Resource": job_logs("*")},
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": job_logs(f"log-stream:{PREFIX}-*")},
        {"Action": "cloudwatch:PutMetricData", "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
         "Effect": "Allow", "Resource": "*"},
    ]


def test_state_machine_role_follows_the_task_states(template):
    events_rule = lambda kind: arn("events", f"rule/StepFunctionsGetEventsForSageMaker{kind}JobsRule")  # noqa: E731
    assert trust(template, "Workflow/Role") == service_trust("states.amazonaws.com")
    assert statements(template, "Workflow/Role") == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow",
         "Resource": [get_att(template, "SeedDataset/Function/Resource"),
                      get_att(template, "ValidateInput/Function/Resource")]},
        {"Action": ["sagemaker:AddTags", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob"], "Effect": "Allow",
         "Resource": arn("sagemaker", f"training-job/{PREFIX}-*")},
        {"Action": ["events:DescribeRule", "events:PutRule", "events:PutTargets"], "Effect": "Allow",
         "Resource": [events_rule("Training"), events_rule("Transform")]},
        {"Action": "iam:PassRole", "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
         "Effect": "Allow", "Resource": get_att(template, "SageMakerRole/Role/Resource")},
        {"Action": "sagemaker:CreateModel", "Effect": "Allow", "Resource": arn("sagemaker", f"model/{PREFIX}-*")},
        {"Action": ["sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob"], "Effect": "Allow",
         "Resource": arn("sagemaker", f"transform-job/{PREFIX}-*")},
        {"Action": ["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "xray:GetSamplingRules",
                    "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"],
         "Effect": "Allow", "Resource": "*"},
    ]


def test_every_policy_and_role_is_asserted_above(template):
    """A new role or policy must come with its own exact assertions."""
    asserted = {"ValidateInput/Role", "SeedDataset/Role", "SageMakerRole/Role", "Workflow/Role"}
    assert set(of_type(template, "AWS::IAM::Role")) == {logical_id(template, f"{p}/Resource") for p in asserted}
    assert set(of_type(template, "AWS::IAM::Policy")) == {
        logical_id(template, f"{p}/DefaultPolicy/Resource") for p in asserted}
    for role in of_type(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_resource_star_only_for_actions_without_resource_level_permissions(synthesized, configuration):
    for stack, template in synthesized[configuration].templates.items():
        for policy in of_type(template, "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "*" in resources:
                    assert set(actions) <= STAR_ACTIONS, (stack, statement)
