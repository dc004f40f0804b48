"""The workflow data bucket and its access-log bucket, protected and retained unless the user opts in."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.cdk.compliance import accept
from stacks.cdk.tokens import Durations, stack_of

REPLICATION_REASON = ("Runs regenerate their data from a seed and hold no unique records; cross-region "
                      "replication would double storage without a recovery need. Add a replication rule if yours "
                      "differs.")


class DataBucket(Construct):
    """Versioned, encrypted, TLS-only bucket holding every run's data under `runs/<execution name>/`."""

    def __init__(self, scope: Construct, construct_id: str, *, destroy_on_delete: bool,
                 noncurrent_version_expiration: Duration, access_log_expiration: Duration,
                 encryption_key: kms.IKey | None = None, replication_reason: str = REPLICATION_REASON) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN
        common = dict(
            enforce_ssl=True,
            versioned=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=removal,
            auto_delete_objects=destroy_on_delete,
        )
        # S3 server access logging can only deliver to a bucket encrypted with SSE-S3.
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=access_log_expiration,
                                              noncurrent_version_expiration=Durations.days(1))],
            **common)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=True if encryption_key else None,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[s3.LifecycleRule(
                noncurrent_version_expiration=noncurrent_version_expiration,
                abort_incomplete_multipart_upload_after=Durations.days(7))],
            **common)

        logs, data = self.access_logs.node.default_child, self.bucket.node.default_child
        accept(logs, "s3-kms", "S3 server access logging delivers only to buckets encrypted with SSE-S3.")
        accept(logs, "s3-access-logging", "This bucket receives the data bucket's access logs; logging it as well "
                                          "would need another log bucket, and so on.")
        accept(logs, "s3-replication", replication_reason)
        accept(data, "s3-replication", replication_reason)
        if not encryption_key:
            accept(data, "s3-kms", "SSE-S3 by default (no key to manage or pay for); deploy with encryption=kms for "
                                   "the stack's customer-managed key.")
        if destroy_on_delete:
            self._accept_auto_delete_handler()

    def _accept_auto_delete_handler(self) -> None:
        """The Lambda CDK adds to empty buckets on deletion (one per stack) gets the same scrutiny as ours."""
        handler = stack_of(self).node.find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider").node \
            .find_child("Handler")
        handler.add_deletion_override("DependsOn")  # it references its role by GetAtt already (cfn-lint W3005)
        accept(handler, "lambda-dead-letter-queue", "CloudFormation invokes CDK's auto-delete handler and waits for "
                                                    "its answer during stack deletion; there is no asynchronous "
                                                    "invocation to catch.")
        accept(handler, "lambda-in-vpc", "CDK's auto-delete handler only calls the S3 API to empty this stack's "
                                         "buckets; it reaches no private resource.")
        accept(handler, "lambda-reserved-concurrency", "CDK's auto-delete handler runs once per bucket when the "
                                                       "stack is deleted; reserving concurrency fails deployment in "
                                                       "new accounts.")
