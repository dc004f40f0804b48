"""What starts a workflow from outside: EventBridge rules and schedules, the role each assumes to start only
that state machine, and a dead-letter queue for the events a rule cannot deliver."""
from __future__ import annotations

from typing import Any, Mapping

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.cdk.compliance import INLINE_POLICY_REASON, accept
from stacks.cdk.permissions import allow, default_policy
from stacks.cdk.tokens import AWS, Durations, format_arn, same_stack


def undelivered_events_queue(scope: Construct, construct_id: str, *, rule_name: str, holds: str,
                             encryption_key: kms.IKey | None) -> sqs.Queue:
    """A queue keeping, for 14 days, the events EventBridge could not deliver to the target of the rule
    `rule_name` (which must be named, so the key policy can name it without a dependency cycle)."""
    queue = sqs.Queue(scope, construct_id, enforce_ssl=True, retention_period=Durations.days(14),
                      encryption=sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED,
                      encryption_master_key=encryption_key)
    resource = queue.node.default_child
    accept(resource, "sqs-is-dead-letter-queue",
           f"This queue is itself the dead-letter queue of the {rule_name} rule's target: it keeps events "
           "EventBridge could not deliver, for 14 days, to be replayed by an operator.")
    if encryption_key:  # EventBridge writes undeliverable events into the key-encrypted queue
        encryption_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnEquals": {"aws:SourceArn": format_arn(
                scope, service="events", resource="rule", resource_name=rule_name)}}))
    else:
        accept(resource, "sqs-kms",
               f"SQS encrypts the queue at rest with its own managed keys (SSE-SQS); it holds only {holds}. "
               "encryption=kms switches it to the stack's key.")
    return queue


def starter_role(scope: Construct, *, service: str, who: str, state_machine: sfn.StateMachine,
                 state_machine_name: str, encryption_key: kms.IKey | None) -> iam.Role:
    """A role `service` (events, scheduler) assumes to start one state machine and nothing else; with a
    customer-managed key, it may use the key only for that state machine's execution data."""
    role = iam.Role(scope, f"StartedBy{service.split('.')[0].capitalize()}",
                    description=f"Lets {who} start {state_machine_name}",
                    assumed_by=iam.ServicePrincipal(service, conditions={
                        "StringEquals": {"aws:SourceAccount": AWS.ACCOUNT_ID}}))
    same_stack(role, scope)
    allow(role, ["states:StartExecution"], [state_machine.state_machine_arn])
    accept(default_policy(role), "inline-policy", INLINE_POLICY_REASON)
    if encryption_key:
        allow(role, ["kms:GenerateDataKey"], [encryption_key.key_arn], conditions={"StringEquals": {
            "kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn}})
    return role


def start_on_event(scope: Construct, construct_id: str, *, rule_name: str, description: str,
                   pattern: events.EventPattern, run_input: Mapping[str, Any], holds: str, role: iam.IRole,
                   state_machine: sfn.StateMachine, encryption_key: kms.IKey | None) -> events.Rule:
    """A rule starting `state_machine` with `run_input` (which may hold events.EventField values) on each
    matching event; EventBridge retries for a day, then keeps the event in a dead-letter queue."""
    return events.Rule(scope, construct_id, rule_name=rule_name, description=description, event_pattern=pattern,
                       targets=[targets.SfnStateMachine(
                           state_machine, input=events.RuleTargetInput.from_object(dict(run_input)), role=role,
                           retry_attempts=185, max_event_age=Durations.hours(24),
                           dead_letter_queue=undelivered_events_queue(
                               scope, f"Undelivered{construct_id.removeprefix('On')}", rule_name=rule_name,
                               holds=holds, encryption_key=encryption_key))])
