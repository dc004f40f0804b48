"""S3 helpers shared by the local account and the local SageMaker jobs."""
from __future__ import annotations


def split_s3(uri: str) -> tuple[str, str]:
    """("bucket", "key/or/prefix") of an s3:// URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def list_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    """Every key under a prefix, sorted, across result pages."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
