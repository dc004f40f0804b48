"""The workflow data bucket and its access-log bucket, protected and retained unless the user opts in."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


class DataBucket(Construct):
    """Versioned, encrypted, TLS-only bucket holding every run's data under `runs/<execution name>/`."""

    def __init__(self, scope: Construct, construct_id: str, *, destroy_on_delete: bool,
                 noncurrent_version_expiration: Duration, access_log_expiration: Duration) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN
        common = dict(
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=removal,
            auto_delete_objects=destroy_on_delete,
        )
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=access_log_expiration)],
            **common)
        self.bucket = s3.Bucket(
            self, "Bucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[s3.LifecycleRule(
                noncurrent_version_expiration=noncurrent_version_expiration,
                abort_incomplete_multipart_upload_after=Duration.days(7))],
            **common)
