"""Accepted findings of the checkers (cdk-nag packs, checkov), each on one resource with its reason."""
from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import jsii
from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct, IValidation

from stacks.cdk.tokens import stack_of

# How CDK encodes a token inside a Python string (its BEGIN_STRING_TOKEN_MARKER): a value without it is plain text.
TOKEN_MARKER = "${Token["
# Packs applied by stacks.app.kit whose wildcard-permission rule needs a per-resource acknowledgement.
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
    "sns-redrive": ("Serverless-SNSRedrivePolicy",),
    # The results site's (stacks/app/results_site.py).
    "s3-server-access-logs": ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled",
                              "HIPAA.Security-S3BucketLoggingEnabled", "CKV_AWS_18"),
    "http-listener": ("NIST.800.53.R5-ELBv2ACMCertificateRequired", "HIPAA.Security-ELBv2ACMCertificateRequired"),
    "alb-waf": ("NIST.800.53.R5-ALBWAFEnabled",),
    "alb-deletion-protection": ("NIST.800.53.R5-ELBDeletionProtectionEnabled",
                                "HIPAA.Security-ELBDeletionProtectionEnabled"),
    "open-to-internet": ("AwsSolutions-EC23", "CKV_AWS_260"),
    "container-insights": ("AwsSolutions-ECS4", "CKV_AWS_65"),
    "container-environment": ("AwsSolutions-ECS2",),
    "cognito-threat-protection": ("AwsSolutions-COG8",),
    "route-to-internet": ("NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW", "HIPAA.Security-VPCNoUnrestrictedRouteToIGW"),
}


def accept(resource: CfnResource, finding: str, reason: str) -> None:
    """Accept one finding on one CloudFormation resource, in every checker that reports it."""
    accept_each(resource, {finding: reason})


# Each call into CDK is a round trip to its Node process, and they add up to most of a stack's synthesis time
# beyond CDK's own work: the helpers here hand CDK what they can in few calls. The acknowledgements on a role's
# policy (and on a managed policy) wait in Python, per stack, until the stack is validated at synthesis: then one
# call resolves every token among their resources and each policy gets its acknowledgements in one call.
_PENDING: "weakref.WeakKeyDictionary[Stack, dict[IConstruct, _Pending]]" = weakref.WeakKeyDictionary()
# Each role's policy resource, found once per role; and the role (or managed policy) a policy resource holds for.
_DEFAULT_POLICIES: "weakref.WeakKeyDictionary[iam.Role, CfnResource]" = weakref.WeakKeyDictionary()
_HOLDERS: "weakref.WeakKeyDictionary[CfnResource, IConstruct]" = weakref.WeakKeyDictionary()
# The checkov skips given to each resource, so adding one needs no call to read the metadata back.
_CHECKOV_SKIPS: "weakref.WeakKeyDictionary[CfnResource, list[dict]]" = weakref.WeakKeyDictionary()


@dataclass
class _Pending:
    """What waits for one policy holder (a role or a managed policy) until its stack is validated."""

    findings: list[tuple[str, str]] = field(default_factory=list)  # (ID, reason), in call order
    # (resource value, reason) for each resource that may be a wildcard: its ID comes from its resolved value.
    # Reason None: it must not be one (a statement given no reason; its actions follow, for the error).
    resources: list[tuple[Any, str | None, list[str] | None]] = field(default_factory=list)
    dependents: list[CfnResource] = field(default_factory=list)  # resources to depend on the policy only


@jsii.implements(IValidation)
class _AtValidation:
    """Runs when CDK validates the stack, after construction and before its template is written."""

    def __init__(self, stack: Stack) -> None:
        self._stack = weakref.ref(stack)

    def validate(self) -> list[str]:
        stack = self._stack()
        return _flush(stack) if stack is not None else []


def _pending(holder: IConstruct) -> _Pending:
    stack = stack_of(holder)
    if stack not in _PENDING:
        _PENDING[stack] = {}
        stack.node.add_validation(_AtValidation(stack))
    return _PENDING[stack].setdefault(holder, _Pending())


def _holder_resource(holder: IConstruct) -> CfnResource:
    return holder.node.default_child if isinstance(holder, iam.ManagedPolicy) else default_policy(holder)


def _flush(stack: Stack) -> list[str]:
    """Hands CDK what waits for `stack`; returns the errors (wildcards nobody gave a reason for)."""
    waiting = list(_PENDING.get(stack, {}).items())
    _PENDING.get(stack, {}).clear()
    tokens = list(dict.fromkeys(value for _, pending in waiting for value, _, _ in pending.resources
                                if isinstance(value, str) and TOKEN_MARKER in value))
    resolved = dict(zip(tokens, stack.resolve(tokens) if tokens else []))
    errors = []
    for holder, pending in waiting:
        resource = _holder_resource(holder)
        # Wildcards keep their call order: acknowledged twice, an ID keeps the later reason, as before.
        acknowledgments = [Acknowledgment(id=finding, reason=reason) for finding, reason in pending.findings]
        for value, reason, actions in pending.resources:
            value = resolved.get(value, value) if isinstance(value, str) else value
            if "*" not in json.dumps(value):
                continue
            if reason is None:
                errors.append(f"wildcard resource {_render(value)} for {actions} needs a reason")
                continue
            acknowledgments += [Acknowledgment(id=f"{rule}[Resource::{_render(value)}]", reason=reason)
                                for rule in WILDCARD_RULES]
        if acknowledgments:
            Validations.of(resource).acknowledge(*acknowledgments)
        if pending.dependents:
            logical_id = stack.get_logical_id(resource)
            for dependent in pending.dependents:
                dependent.add_override("DependsOn", [logical_id])
    return errors


def accept_each(resource: CfnResource, reasons: Mapping[str, str]) -> None:
    """Accept several findings (finding -> reason) on one resource, handed to CDK in as few calls as possible."""
    rules = [(rule, reason) for finding, reason in reasons.items() for rule in FINDINGS[finding]]
    skips = [{"id": rule, "comment": reason} for rule, reason in rules if rule.startswith("CKV_")]
    acknowledgments = [(f"{rule.split('-')[0]}::{rule}", reason) for rule, reason in rules if not rule.startswith("CKV_")]
    if acknowledgments and resource in _HOLDERS:  # a policy whose acknowledgements wait for its stack's validation
        _pending(_HOLDERS[resource]).findings.extend(acknowledgments)
    elif acknowledgments:
        Validations.of(resource).acknowledge(*(Acknowledgment(id=rule, reason=reason) for rule, reason in acknowledgments))
    if skips:
        given = _CHECKOV_SKIPS.setdefault(resource, [])
        given.extend(skips)
        resource.add_metadata("checkov", {"skip": list(given)})


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
    on that policy only. Resources may hold tokens: they are resolved, with the stack's others, at validation."""
    _pending(holder).resources.extend((resource, reason, None) for resource in resources)


def check_wildcards(role: iam.Role, actions: list[str], resources: list[str], reason: str | None) -> None:
    """A statement's resources: acknowledge each wildcard with `reason`, or, without one, refuse any wildcard
    (one in plain text at once; one a token hides when the stack is validated)."""
    if not reason:
        if any("*" in resource for resource in resources):
            raise ValueError(f"{role.node.path}: wildcard resources for {actions} need a reason")
        resources = [resource for resource in resources if TOKEN_MARKER in resource]
        if not resources:
            return
    _pending(role).resources.extend((resource, reason, actions) for resource in resources)


def default_policy(role: iam.Role) -> CfnResource:
    """The CloudFormation policy resource that holds a role's statements (its only CfnPolicy)."""
    if role not in _DEFAULT_POLICIES:
        found = [c for c in role.node.find_all() if isinstance(c, iam.CfnPolicy)]
        if len(found) != 1:
            raise ValueError(f"{role.node.path}: expected one policy resource (its DefaultPolicy), found {len(found)}")
        remember_default_policy(role, found[0])
    return _DEFAULT_POLICIES[role]


def remember_default_policy(role: iam.Role, policy: CfnResource) -> None:
    """Record a role's policy resource found by the caller (e.g. among a construct's children)."""
    _DEFAULT_POLICIES[role] = policy
    _HOLDERS[policy] = role


def depend_on_policy_only(resource: CfnResource, role: iam.Role) -> None:
    """Make `resource` depend on the role's policy only (set when the stack is validated)."""
    _pending(role).dependents.append(resource)


def acknowledge_resolved_wildcards(holder: iam.Role | iam.ManagedPolicy, resources: Iterable[Any],
                                   reason: str) -> None:
    """As acknowledge_wildcards, for resources already resolved (CloudFormation values)."""
    _pending(holder).resources.extend((resource, reason, None) for resource in resources)


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
        acknowledgments = []
        for finding in wildcard_ids(stack_of(construct).resolve(construct.policy_document)):
            reason = next((r for pattern, r in reasons if pattern.search(finding)), None)
            if reason is None:
                raise ValueError(f"{construct.node.path}: no reason given for the wildcard {finding}")
            acknowledgments += [Acknowledgment(id=f"{rule}[{finding}]", reason=reason) for rule in WILDCARD_RULES]
        if acknowledgments:
            Validations.of(construct).acknowledge(*acknowledgments)
