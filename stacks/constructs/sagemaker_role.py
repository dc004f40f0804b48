"""The role SageMaker jobs run as: this stack's run folders, its images' registries, its job log streams."""
from __future__ import annotations

from typing import Iterable, Mapping

from aws_cdk import ArnFormat
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from contract import run_layout
from stacks.settings.images import FrameworkImage
from stacks.cdk.compliance import INLINE_POLICY_REASON, accept
from stacks.cdk.permissions import allow, default_policy
from stacks.cdk.tokens import AWS, bucket_arn, format_arn, objects_arn, same_stack, stack_of


def allow_log_streams(role: iam.Role, streams: Mapping[str, str], reason: str) -> None:
    """Let SageMaker's containers log as `role`: create each log group (SageMaker names them), and write only the
    streams matching its pattern (group -> stream pattern); `reason` says why the names need wildcards."""
    if not streams:
        return
    stack = stack_of(role)

    def arn(group: str, rest: str) -> str:
        return format_arn(stack, service="logs", resource="log-group", resource_name=f"{group}:{rest}",
                          arn_format=ArnFormat.COLON_RESOURCE_NAME)

    allow(role, ["logs:CreateLogGroup", "logs:DescribeLogStreams"], [arn(group, "*") for group in streams],
          wildcard_reason=reason)
    allow(role, ["logs:CreateLogStream", "logs:PutLogEvents"],
          [arn(group, f"log-stream:{stream}") for group, stream in streams.items()], wildcard_reason=reason)


class SageMakerExecutionRole(Construct):
    """Reads `runs/*/<read>/` (and the user data prefixes `bucket_reads`), writes `runs/*/<write>/`, pulls only the given images, logs only its own jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, reads: Iterable[str],
                 writes: Iterable[str], images: Iterable[FrameworkImage], job_log_groups: Iterable[str],
                 job_name_prefix: str, encryption_key: kms.IKey | None = None,
                 bucket_reads: Iterable[str] = ()) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(self, "Role", description="Assumed by this stack's SageMaker jobs and models",
                             assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions={
                                 "StringEquals": {"aws:SourceAccount": AWS.ACCOUNT_ID}}))
        same_stack(self, scope)
        same_stack(self.role, self)

        run_folders = ("Each execution keeps its data under runs/<execution name>/, a name known only at run "
                       "time; the role reaches only the named folders of runs in this stack's bucket.")
        bucket_reads = sorted(bucket_reads)
        allow(self.role, ["s3:ListBucket"], [bucket_arn(bucket)],
              conditions={"StringLike": {"s3:prefix": [run_layout.glob(), *(f"{p}*" for p in bucket_reads)]}})
        if reads:
            allow(self.role, ["s3:GetObject"], [objects_arn(bucket, run_layout.glob(folder)) for folder in reads],
                  wildcard_reason=run_folders)
        if bucket_reads:
            allow(self.role, ["s3:GetObject"], [objects_arn(bucket, f"{prefix}*") for prefix in bucket_reads],
                  wildcard_reason="Users add data set files of their own naming under these prefixes; the jobs "
                                  "read only them outside the run folders.")
        if writes:
            allow(self.role, ["s3:PutObject", "s3:AbortMultipartUpload"],
                  [objects_arn(bucket, run_layout.glob(folder)) for folder in writes], wildcard_reason=run_folders)
        no_resource_level = ("ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
                             "permissions; PutMetricData is confined to SageMaker's namespaces by condition.")
        images = sorted(set(images), key=lambda i: i.repository)
        if images:  # a workflow may run no SageMaker container at all (S3 and functions only)
            allow(self.role, ["ecr:GetAuthorizationToken"], ["*"], wildcard_reason=no_resource_level)
            allow(self.role, ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                  [image.repository_arn(self) for image in images])
        allow_log_streams(self.role, {group: f"{job_name_prefix}-*" for group in sorted(set(job_log_groups))},
                          f"SageMaker names job log streams <job name>/<host> in its fixed log groups; job names "
                          f"are {job_name_prefix}-<uuid>, made per attempt at run time.")
        allow(self.role, ["cloudwatch:PutMetricData"], ["*"],
              conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
              wildcard_reason=no_resource_level)
        if encryption_key:  # read and write SSE-KMS objects, encrypt job volumes (through grants to AWS resources)
            allow(self.role, ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                  [encryption_key.key_arn])
            allow(self.role, ["kms:CreateGrant"], [encryption_key.key_arn],
                  conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}})
        accept(default_policy(self.role), "inline-policy", INLINE_POLICY_REASON)

    def allow_asset(self, asset: s3_assets.Asset) -> None:
        """Read one CDK asset object; jobs list its key because they fetch it as an S3 prefix."""
        bucket, key = asset.bucket, asset.s3_object_key
        allow(self.role, ["s3:ListBucket"], [bucket_arn(bucket)], conditions={"StringEquals": {"s3:prefix": key}})
        allow(self.role, ["s3:GetObject"], [objects_arn(bucket, key)])
