"""A workflow's model package group: the versions it registers for approval, kept when the stack goes unless the
user opted in to deleting data (then a custom resource empties the group first, since SageMaker deletes no group
that still holds versions)."""
from __future__ import annotations

from aws_cdk import CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker

from stacks.cdk.permissions import allow
from stacks.cdk.tokens import Durations, format_arn
from stacks.constructs.functions import KitFunction


def model_package_group_name(prefix: str) -> str:
    return f"{prefix}-models"


def model_package_versions(scope, prefix: str) -> str:
    """The ARNs of every version of the group `<prefix>-models` (SageMaker numbers them)."""
    return format_arn(scope, service="sagemaker", resource="model-package",
                      resource_name=f"{model_package_group_name(prefix)}/*")


def model_package_group(stack: Stack, *, prefix: str, destroy_on_delete: bool, removal_policy: RemovalPolicy,
                        log_retention: logs.RetentionDays,
                        encryption_key: kms.IKey | None) -> sagemaker.CfnModelPackageGroup:
    """The group `<prefix>-models`, made in `stack` (its construct ids are the stack's, so they never move)."""
    group = sagemaker.CfnModelPackageGroup(
        stack, "ModelPackageGroup", model_package_group_name=model_package_group_name(prefix),
        model_package_group_description=f"Models the {stack.stack_name} workflow registered for approval")
    group.apply_removal_policy(removal_policy)  # kept by default, with the registered versions
    if not destroy_on_delete:
        return group
    cleanup = KitFunction(
        stack, "EmptyModelPackageGroup", folder="empty_model_package_group",
        description="Deletes the model package group's versions when the stack is deleted, so the group can go too",
        environment={}, log_retention=log_retention, removal_policy=removal_policy,
        timeout=Durations.minutes(5), encryption_key=encryption_key,
        dead_letter_reason="CloudFormation invokes this function for its custom resource and waits for the "
                           "answer on the request's response URL, which the function sends even when it "
                           "fails; a queue of failed invocations would hold nothing CloudFormation reads.")
    allow(cleanup.role, ["sagemaker:DeleteModelPackage", "sagemaker:ListModelPackages"],
          [model_package_versions(stack, prefix)],
          wildcard_reason="SageMaker numbers the versions of this stack's group; the function lists and deletes "
                          "the versions of that one group only.")
    versions = CustomResource(stack, "EmptyModelPackageGroupOnDelete", service_token=cleanup.function.function_arn,
                              resource_type="Custom::EmptyModelPackageGroup",
                              properties={"ModelPackageGroupName": group.model_package_group_name})
    versions.node.add_dependency(group)
    return group
