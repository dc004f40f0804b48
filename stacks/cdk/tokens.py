"""Values CDK would hand back from its Node process, computed or kept in Python: each call into CDK is a round
trip, and a stack's ARNs, durations and pseudo parameters would cost hundreds of them.

Each helper gives exactly the string or object CDK would, so templates do not change:
- format_arn is CDK's Arn.format, from the stack's partition, region and account (tokens, or literals for a stack
  with an explicit environment), read once per stack;
- objects_arn is CDK's bucket.arn_for_objects, `${bucketArn}/${pattern}`, from bucket_arn: the ARN read once per
  bucket;
- AWS.<name> is Aws.<name> (ACCOUNT_ID, REGION, ...), a constant token string, read once per process;
- Durations.<unit>(amount) is Duration.<unit>(amount), made once per amount per process (a Duration never
  changes).
"""
from __future__ import annotations

import functools
import weakref

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

__all__ = ["AWS", "Durations", "bucket_arn", "format_arn", "objects_arn", "same_stack", "stack_of"]

_STACKS: "weakref.WeakKeyDictionary[IConstruct, Stack]" = weakref.WeakKeyDictionary()
_ENVIRONMENTS: "weakref.WeakKeyDictionary[Stack, tuple[str, str, str]]" = weakref.WeakKeyDictionary()
_BUCKET_ARNS: "weakref.WeakKeyDictionary[s3.IBucket, str]" = weakref.WeakKeyDictionary()


def stack_of(construct: IConstruct, scope: IConstruct | None = None) -> Stack:
    """Stack.of, asked once per construct (a stack is its own, as in CDK). Given `scope`, a construct of the same
    stack (the one `construct` was just made in), it is scope's stack: known without asking when scope is a
    stack or was given its own."""
    if isinstance(construct, Stack):
        return construct
    if construct not in _STACKS:
        _STACKS[construct] = Stack.of(construct) if scope is None else stack_of(scope)
    return _STACKS[construct]


def same_stack(construct: IConstruct, scope: IConstruct) -> None:
    """Record that `construct`, just made in `scope`, is in scope's stack, so stack_of(construct) asks CDK nothing
    later (the acknowledgements of a role's policy look its stack up)."""
    stack_of(construct, scope)


def format_arn(scope: IConstruct, *, service: str, resource: str, resource_name: str | None = None,
               arn_format: ArnFormat | None = None, account: str | None = None) -> str:
    """Stack.of(scope).format_arn(...) for the formats the kit uses (a resource name after "/" or ":")."""
    if arn_format not in (None, ArnFormat.SLASH_RESOURCE_NAME, ArnFormat.COLON_RESOURCE_NAME):
        raise ValueError(f"format_arn does not build {arn_format}")
    stack = stack_of(scope)
    if stack not in _ENVIRONMENTS:
        _ENVIRONMENTS[stack] = (stack.partition, stack.region, stack.account)
    partition, region, stack_account = _ENVIRONMENTS[stack]
    arn = f"arn:{partition}:{service}:{region}:{stack_account if account is None else account}:{resource}"
    if resource_name is None:
        return arn
    return f"{arn}{':' if arn_format == ArnFormat.COLON_RESOURCE_NAME else '/'}{resource_name}"


def bucket_arn(bucket: s3.IBucket) -> str:
    """bucket.bucket_arn, asked once per bucket."""
    if bucket not in _BUCKET_ARNS:
        _BUCKET_ARNS[bucket] = bucket.bucket_arn
    return _BUCKET_ARNS[bucket]


def objects_arn(bucket: s3.IBucket, key_pattern: str) -> str:
    """bucket.arn_for_objects(key_pattern)."""
    return f"{bucket_arn(bucket)}/{key_pattern}"


class _Pseudo:
    """Aws.<name>, read on first use and kept."""

    def __getattr__(self, name: str) -> str:
        value = getattr(Aws, name)
        setattr(self, name, value)
        return value


AWS = _Pseudo()


class Durations:
    """Duration.seconds/minutes/hours/days, one per amount per process."""

    seconds = staticmethod(functools.cache(Duration.seconds))
    minutes = staticmethod(functools.cache(Duration.minutes))
    hours = staticmethod(functools.cache(Duration.hours))
    days = staticmethod(functools.cache(Duration.days))
