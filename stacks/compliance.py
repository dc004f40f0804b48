"""Accepted findings of the checkers (cdk-nag packs, checkov), each on one resource with its reason."""
from __future__ import annotations

import re
import weakref
from typing import Any, Iterable, Mapping

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

# How CDK encodes a token inside a Python string (its BEGIN_STRING_TOKEN_MARKER): a value without it is plain text.
TOKEN_MARKER = "${Token["
# Packs applied by stacks.kit whose wildcard-permission rule needs a per-resource acknowledgement.
WILDCARD_RULES = ("AwsSolutions::AwsSolutions-IAM5",)

# The same concern as each checker names it: cdk-nag rule IDs (pack prefix before the first "-") and
# checkov check IDs (CKV_*). One reason covers them all, so the checkers cannot drift apart.
FINDINGS: dict[str, tuple[str, ...]] = {
    "lambda-dead-letter-queue": ("NIST.800.53.R5-LambdaDLQ", "HIPAA.Security-LambdaDLQ", "Serverless-LambdaDLQ",
                                 "CKV_AWS_116"),
    "lambda-in-vpc": ("NIST.800.53.R5-LambdaInsideVPC", "HIPAA.Security-LambdaInsideVPC", "CKV_AWS_117"),
    "lambda-reserved-concurrency": ("NIST.800.53.R5-LambdaConcurrency", "HIPAA.Security-LambdaConcurrency",
                                    "CKV_AWS_115"),
    "lambda-environment-kms": ("CKV_AWS_173",),
    "s3-replication": ("NIST.800.53.R5-S3BucketReplicationEnabled", "HIPAA.Security-S3BucketReplicationEnabled"),
    "s3-kms": ("NIST.800.53.R5-S3DefaultEncryptionKMS", "HIPAA.Security-S3DefaultEncryptionKMS"),
    "s3-access-logging": ("CKV_AWS_18",),
    "logs-kms": ("NIST.800.53.R5-CloudWatchLogGroupEncrypted", "HIPAA.Security-CloudWatchLogGroupEncrypted",
                 "CKV_AWS_158"),
    "sqs-kms": ("CKV_AWS_27",),
    "sqs-is-dead-letter-queue": ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"),
    "codebuild-oauth": ("HIPAA.Security-CodeBuildProjectSourceRepoUrl",),
    "inline-policy": ("NIST.800.53.R5-IAMNoInlinePolicy", "HIPAA.Security-IAMNoInlinePolicy"),
    "alarm-action": ("NIST.800.53.R5-CloudWatchAlarmAction", "HIPAA.Security-CloudWatchAlarmAction"),
}


def accept(resource: CfnResource, finding: str, reason: str) -> None:
    """Accept one finding on one CloudFormation resource, in every checker that reports it."""
    accept_each(resource, {finding: reason})


def accept_each(resource: CfnResource, reasons: Mapping[str, str]) -> None:
    """Accept several findings (finding -> reason) on one resource, handed to CDK in as few calls as possible:
    each call is a round trip to its Node process."""
    rules = [(rule, reason) for finding, reason in reasons.items() for rule in FINDINGS[finding]]
    skips = [{"id": rule, "comment": reason} for rule, reason in rules if rule.startswith("CKV_")]
    acknowledgments = [Acknowledgment(id=f"{rule.split('-')[0]}::{rule}", reason=reason)
                       for rule, reason in rules if not rule.startswith("CKV_")]
    if acknowledgments:
        Validations.of(resource).acknowledge(*acknowledgments)
    if skips:
        existing = resource.get_metadata("checkov") or {"skip": []}
        resource.add_metadata("checkov", {"skip": existing["skip"] + skips})


def _render(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in finding IDs (<Logical.Attr>, <AWS::Region>)."""
    if isinstance(node, str):
        return node
    if "Ref" in node:
        return f"<{node['Ref']}>"
    if "Fn::GetAtt" in node:
        return "<{}.{}>".format(*node["Fn::GetAtt"])
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([\w:]+)\}", r"<\1>", node["Fn::Sub"])
    raise ValueError(f"cannot name {node!r} in a cdk-nag finding")


def acknowledge_wildcards(holder: iam.Role | iam.ManagedPolicy, resources: Iterable[str], reason: str) -> None:
    """Acknowledge the IAM5 finding for each wildcard resource of a role's policy (or of a managed policy),
    on that policy only."""
    resources = list(resources)
    # Only values holding tokens need CDK to resolve them, all in one call; plain text ("*") names itself.
    tokens = [r for r in resources if TOKEN_MARKER in r]
    resolved = dict(zip(tokens, Stack.of(holder).resolve(tokens) if tokens else []))
    acknowledge_resolved_wildcards(holder, [resolved.get(r, r) for r in resources], reason)


# Each role's policy resource, found once per role: a lookup is four calls to CDK's Node process.
_DEFAULT_POLICIES: "weakref.WeakKeyDictionary[iam.Role, CfnResource]" = weakref.WeakKeyDictionary()


def default_policy(role: iam.Role) -> CfnResource:
    """The CloudFormation policy resource that holds a role's statements."""
    if role not in _DEFAULT_POLICIES:
        _DEFAULT_POLICIES[role] = role.node.find_child("DefaultPolicy").node.default_child
    return _DEFAULT_POLICIES[role]


def acknowledge_resolved_wildcards(holder: iam.Role | iam.ManagedPolicy, resources: Iterable[Any],
                                   reason: str) -> None:
    """As acknowledge_wildcards, for resources already resolved (CloudFormation values)."""
    policy = holder.node.default_child if isinstance(holder, iam.ManagedPolicy) else default_policy(holder)
    acknowledgments = [Acknowledgment(id=f"{rule}[Resource::{_render(resource)}]", reason=reason)
                       for resource in resources for rule in WILDCARD_RULES]
    if acknowledgments:
        Validations.of(policy).acknowledge(*acknowledgments)


INLINE_POLICY_REASON = ("This policy belongs to exactly one role, is created and deleted with it and is "
                        "derived per stack; a customer-managed policy would add a shared, separately versioned "
                        "object without narrowing any permission.")
LOGS_KMS_REASON = ("CloudWatch Logs encrypts every log group at rest with a service key; the default "
                   "encryption=sse-s3 avoids a customer-managed key, and encryption=kms uses the stack's key here.")
XRAY_REASON = ("X-Ray trace and sampling actions have no resource-level permissions; AWS requires "
               "Resource '*' for them.")
LOG_DELIVERY_REASON = ("Step Functions log delivery actions (logs:*LogDelivery, DescribeLogGroups, "
                       "DescribeResourcePolicies, PutResourcePolicy) and X-Ray actions have no resource-level "
                       "permissions; AWS requires Resource '*' for them.")


def wildcard_ids(document: dict) -> list[str]:
    """The IAM5 finding IDs cdk-nag gives a resolved policy document: each wildcard action and resource."""
    ids = []
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        ids += [f"Action::{a}" for a in (actions if isinstance(actions, list) else [actions]) if "*" in a]
        ids += [f"Resource::{name}" for name in map(_render, resources if isinstance(resources, list) else [resources])
                if "*" in name]
    return list(dict.fromkeys(ids))


def acknowledge_generated_policies(scope: IConstruct, reasons: Iterable[tuple[str, str]]) -> None:
    """For policies a library generates (CDK Pipelines): acknowledge each wildcard on the policy that has it,
    with the reason whose pattern matches its ID; a wildcard no reason covers stops synthesis."""
    reasons = [(re.compile(pattern), reason) for pattern, reason in reasons]
    for construct in scope.node.find_all():
        if not isinstance(construct, iam.CfnPolicy):
            continue
        for finding in wildcard_ids(Stack.of(construct).resolve(construct.policy_document)):
            reason = next((r for pattern, r in reasons if pattern.search(finding)), None)
            if reason is None:
                raise ValueError(f"{construct.node.path}: no reason given for the wildcard {finding}")
            for rule in WILDCARD_RULES:
                Validations.of(construct).acknowledge(Acknowledgment(id=f"{rule}[{finding}]", reason=reason))
