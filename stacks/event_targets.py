"""What every EventBridge rule of the kit gives its target: a dead-letter queue for events it cannot deliver."""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.compliance import accept


def undelivered_events_queue(scope: Construct, construct_id: str, *, rule_name: str, holds: str,
                             encryption_key: kms.IKey | None) -> sqs.Queue:
    """A queue keeping, for 14 days, the events EventBridge could not deliver to the target of the rule
    `rule_name` (which must be named, so the key policy can name it without a dependency cycle)."""
    queue = sqs.Queue(scope, construct_id, enforce_ssl=True, retention_period=Duration.days(14),
                      encryption=sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED,
                      encryption_master_key=encryption_key)
    accept(queue.node.default_child, "sqs-is-dead-letter-queue",
           f"This queue is itself the dead-letter queue of the {rule_name} rule's target: it keeps events "
           "EventBridge could not deliver, for 14 days, to be replayed by an operator.")
    if encryption_key:  # EventBridge writes undeliverable events into the key-encrypted queue
        encryption_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnEquals": {"aws:SourceArn": Stack.of(scope).format_arn(
                service="events", resource="rule", resource_name=rule_name)}}))
    else:
        accept(queue.node.default_child, "sqs-kms",
               f"SQS encrypts the queue at rest with its own managed keys (SSE-SQS); it holds only {holds}. "
               "encryption=kms switches it to the stack's key.")
    return queue
