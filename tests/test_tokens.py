"""stacks.cdk.tokens builds in Python what CDK would return from Node: the very same strings and values."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import ArnFormat
from aws_cdk import aws_s3 as s3

from stacks.cdk.tokens import AWS, Durations, bucket_arn, format_arn, objects_arn, stack_of

ARNS = [
    {"service": "states", "resource": "execution", "resource_name": "name:*",
     "arn_format": ArnFormat.COLON_RESOURCE_NAME},
    {"service": "sagemaker", "resource": "model-package", "resource_name": "group/*"},
    {"service": "sagemaker", "resource": "endpoint", "resource_name": "name",
     "arn_format": ArnFormat.SLASH_RESOURCE_NAME},
    {"service": "events", "resource": "rule"},
    {"service": "ecr", "resource": "repository", "resource_name": "repo", "account": "123456789012"},
]


@pytest.fixture(scope="module")
def stacks():
    app = cdk.App()
    return [cdk.Stack(app, "Agnostic"), cdk.Stack(app, "Explicit", env=cdk.Environment(account="111111111111",
                                                                                       region="eu-west-1"))]


@pytest.mark.parametrize("components", ARNS)
def test_format_arn_is_cdks(stacks, components):
    for stack in stacks:
        construct = cdk.CfnResource(stack, f"R{len(stack.node.children)}", type="Test::Resource")
        assert format_arn(construct, **components) == stack.format_arn(**components)
        assert stack.resolve(format_arn(stack, **components)) == stack.resolve(stack.format_arn(**components))


def test_objects_arn_and_stack_of_are_cdks(stacks):
    bucket = s3.Bucket(stacks[0], "Bucket")
    assert objects_arn(bucket, "runs/*") == bucket.arn_for_objects("runs/*")
    assert bucket_arn(bucket) == bucket.bucket_arn
    assert stack_of(bucket) is stacks[0] and stack_of(stacks[1]) is stacks[1]
    child = cdk.CfnResource(stacks[1], "Child", type="Test::Resource")
    assert stack_of(child, stacks[1]) is stacks[1]


def test_pseudo_parameters_and_durations_are_cdks():
    assert (AWS.ACCOUNT_ID, AWS.PARTITION, AWS.STACK_ID) == (cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION, cdk.Aws.STACK_ID)
    assert Durations.minutes(5) is Durations.minutes(5)
    assert Durations.hours(2).to_seconds() == cdk.Duration.hours(2).to_seconds()
