"""Python Lambda functions of the kit: code from `lambda/<folder>`, own role, log group and tracing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from aws_cdk import CfnCondition, CfnResource, Duration, Fn, RemovalPolicy, Stack, SymlinkFollowMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.cdk.compliance import (INLINE_POLICY_REASON, LOGS_KMS_REASON, XRAY_REASON, accept, accept_each,
                                   acknowledge_wildcards, remember_default_policy)
from stacks.cdk.permissions import default_policy, drop_redundant_dependency
from stacks.cdk.tokens import AWS, Durations, same_stack, stack_of
from stacks.settings.regions import partitions_without

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
# Newest Python runtime this CDK release knows; cdk-nag's AwsSolutions-L1 checks against it.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64  # read once: each read of it is a call into CDK
SYNCHRONOUS_INVOCATION_REASON = ("Step Functions invokes this function synchronously and handles its errors with "
                                 "Retry and Catch; a dead-letter queue only receives failed asynchronous invocations.")


def tracing_mode(scope: Construct) -> object:
    """Active tracing, or, when a page says some partition's Lambda has no X-Ray integration (China), Active only
    where the stack's partition is not one of those (one condition per stack)."""
    lacking = [Fn.condition_equals(AWS.PARTITION, p) for p in partitions_without("lambda X-Ray tracing")]
    if not lacking:
        return "Active"
    stack: Stack = stack_of(scope)
    condition = stack.node.try_find_child("LambdaTracingAvailable") or CfnCondition(
        stack, "LambdaTracingAvailable",
        expression=Fn.condition_not(lacking[0] if len(lacking) == 1 else Fn.condition_or(*lacking)))
    return Fn.condition_if(condition.logical_id, "Active", "PassThrough")


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of a workflow, from lambda/<folder>/handler.py; the ASL gets ${<Id>FunctionArn}.

    `reads`/`writes` are the run folders (runs/<run>/<folder>/) it reads and writes: its S3 (and KMS)
    permissions follow from them. `environment` values may be `${Name}` placeholders of the stack
    (DataBucket, AllowedInstanceTypes, or what add_resources returned)."""

    folder: str
    description: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    # Prefixes of the data bucket outside runs/ it reads (user data sets): GetObject, and ListBucket on them.
    bucket_reads: tuple[str, ...] = ()
    # Prefixes of the data bucket outside runs/ whose keys and sizes it lists, without reading the objects.
    bucket_lists: tuple[str, ...] = ()
    # Prefixes outside runs/ where it creates objects that must not exist yet: PutObject only with If-None-Match: *
    # (a conditional write, which S3 refuses once the key exists), so it can never overwrite one.
    bucket_creates: tuple[str, ...] = ()
    memory_size: int = 256
    timeout_seconds: int = 30


class KitFunction(Construct):
    """A standard-library + boto3 handler (no bundling, so synthesis needs no Docker)."""

    def __init__(self, scope: Construct, construct_id: str, *, folder: str, description: str,
                 environment: Mapping[str, str], log_retention: logs.RetentionDays,
                 removal_policy: RemovalPolicy, memory_size: int = 256,
                 timeout: Duration = Durations.seconds(30), encryption_key: kms.IKey | None = None,
                 dead_letter_reason: str = SYNCHRONOUS_INVOCATION_REASON) -> None:
        super().__init__(scope, construct_id)
        same_stack(self, scope)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy,
                                       encryption_key=encryption_key)
        self.role = iam.Role(self, "Role", description=f"Runs the {folder} function",
                             assumed_by=iam.ServicePrincipal("lambda.amazonaws.com", conditions={
                                 "StringEquals": {"aws:SourceAccount": AWS.ACCOUNT_ID}}))
        same_stack(self.role, self)
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.handler",
            # Tests import the handlers, so keep bytecode caches out of the asset (and its hash). A module shared
            # with a processing job is a symlink to it (lambda/smoke_test/metrics.py): EXTERNAL copies its target.
            code=lambda_.Code.from_asset(str(LAMBDA_DIR / folder), exclude=["__pycache__", "*.pyc"],
                                         follow_symlinks=SymlinkFollowMode.EXTERNAL),
            role=self.role,
            environment=dict(environment),
            environment_encryption=encryption_key,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
        )
        # The CloudFormation resources to acknowledge findings on, found in one call rather than two per resource.
        resources = [c for c in self.node.find_all() if isinstance(c, CfnResource)]

        def only(kind: type) -> CfnResource:
            [resource] = [r for r in resources if isinstance(r, kind)]
            return resource

        function, log_group, policy = (only(kind) for kind in (lambda_.CfnFunction, logs.CfnLogGroup, iam.CfnPolicy))
        # Active tracing where Lambda has it; PassThrough in the partitions whose pages say it has not (China).
        function.add_property_override("TracingConfig.Mode", tracing_mode(self))
        remember_default_policy(self.role, policy)
        acknowledge_wildcards(self.role, ["*"], XRAY_REASON)
        drop_redundant_dependency(function, self.role)
        accept(default_policy(self.role), "inline-policy", INLINE_POLICY_REASON)
        reasons = {
            "lambda-dead-letter-queue": dead_letter_reason,
            "lambda-in-vpc": "The function reaches no private network resource, only S3 through its public endpoint "
                             "over TLS (or nothing); a VPC would add NAT or endpoints without narrowing access.",
            "lambda-reserved-concurrency": "Only this stack's workflow (its state machine or its EventBridge rule) "
                                           "invokes the function, about once per execution; reserving concurrency "
                                           "fails deployment in new accounts whose unreserved concurrency is at the "
                                           "minimum of 10.",
        }
        if not encryption_key:
            reasons["lambda-environment-kms"] = (
                "The environment holds only a bucket name, instance types, job kinds or sizes, no secret; Lambda "
                "encrypts it at rest with an AWS managed key. encryption=kms switches to the stack's key.")
            accept(log_group, "logs-kms", LOGS_KMS_REASON)
        accept_each(function, reasons)
