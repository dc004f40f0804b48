"""What starts a workflow from outside: EventBridge rules and schedules, the role each assumes to start only
that state machine, and the watched dead-letter queues that keep what a rule, a schedule or an asynchronous
function gives up on."""
from __future__ import annotations

from typing import Any, Mapping

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.cdk.compliance import INLINE_POLICY_REASON, accept
from stacks.cdk.permissions import allow, default_policy
from stacks.cdk.tokens import AWS, Durations, format_arn, same_stack


def watched_queue(scope: Construct, construct_id: str, *, holds: str, kept_for: str, encryption_key: kms.IKey | None,
                  topic: sns.ITopic, alarm_name: str, alarm_description: str) -> sqs.Queue:
    """A dead-letter queue keeping `holds` for 14 days, and an alarm notifying `topic` as soon as one arrives:
    nothing the kit's rules, schedules or asynchronous functions give up on is dropped or kept unseen."""
    queue = sqs.Queue(scope, construct_id, enforce_ssl=True, retention_period=Durations.days(14),
                      encryption=sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED,
                      encryption_master_key=encryption_key)
    resource = queue.node.default_child
    accept(resource, "sqs-is-dead-letter-queue",
           f"This queue is itself a dead-letter queue: it keeps {kept_for} for 14 days, to be replayed or "
           "inspected by an operator, and its alarm notifies as soon as one arrives.")
    if not encryption_key:
        accept(resource, "sqs-kms",
               f"SQS encrypts the queue at rest with its own managed keys (SSE-SQS); it holds only {holds}. "
               "encryption=kms switches it to the stack's key.")
    alarm = cloudwatch.Alarm(
        scope, f"{construct_id}Alarm", alarm_name=alarm_name, alarm_description=alarm_description,
        metric=queue.metric_approximate_number_of_messages_visible(period=Durations.minutes(5), statistic="Maximum"),
        threshold=1, evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
    alarm.add_alarm_action(actions.SnsAction(topic))
    return queue


def undelivered_events_queue(scope: Construct, construct_id: str, *, rule_name: str, holds: str,
                             encryption_key: kms.IKey | None, topic: sns.ITopic) -> sqs.Queue:
    """The watched queue of the events EventBridge could not deliver to the target of the rule `rule_name`
    (which must be named, so the key policy can name it without a dependency cycle)."""
    queue = watched_queue(scope, construct_id, holds=holds, kept_for=f"the events of the {rule_name} rule EventBridge "
                          "could not deliver", encryption_key=encryption_key, topic=topic,
                          alarm_name=f"{rule_name}-undelivered",
                          alarm_description=f"EventBridge could not deliver an event of the rule {rule_name} to its "
                                            "target after a day of retries; the event waits in this alarm's queue "
                                            "(the SQS console, or aws sqs receive-message) to be replayed.")
    if encryption_key:  # EventBridge writes undeliverable events into the key-encrypted queue
        encryption_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnEquals": {"aws:SourceArn": format_arn(
                scope, service="events", resource="rule", resource_name=rule_name)}}))
    return queue


def allow_sending(role: iam.IRole, queue: sqs.IQueue, encryption_key: kms.IKey | None) -> None:
    """What a role needs to put messages into the queue: SendMessage, and with SSE-KMS the key through SQS
    (SQS developer guide, key management: a producer needs kms:GenerateDataKey and kms:Decrypt)."""
    allow(role, ["sqs:SendMessage"], [queue.queue_arn])
    if encryption_key:
        allow(role, ["kms:Decrypt", "kms:GenerateDataKey"], [encryption_key.key_arn],
              conditions={"StringEquals": {"kms:ViaService": f"sqs.{AWS.REGION}.amazonaws.com"}})


def invoke_on_event(scope: Construct, construct_id: str, *, rule_name: str, description: str,
                    pattern: events.EventPattern, function: lambda_.IFunction, role: iam.IRole, holds: str,
                    encryption_key: kms.IKey | None, topic: sns.ITopic, gave_up_alarm: str,
                    gave_up_description: str) -> tuple[events.Rule, sqs.Queue]:
    """A rule invoking `function` (asynchronously, as EventBridge does) on each matching event, with nothing lost
    on the way: EventBridge retries delivery for a day, then keeps the event (`<rule>-undelivered`); Lambda retries
    a failed invocation twice, then sends its invocation record, error included, to the queue `gave_up_alarm`
    watches, as the function's role (Lambda developer guide, "Capturing records of asynchronous invocations").
    `scope` is the construct of this one use (its queues are GaveUp and Undelivered)."""
    gave_up = watched_queue(scope, "GaveUp", holds=f"Lambda's records of failed {holds} handling",
                            kept_for="the records of invocations that failed after Lambda's retries (the event, "
                                     "and the function's error)",
                            encryption_key=encryption_key, topic=topic, alarm_name=gave_up_alarm,
                            alarm_description=gave_up_description)
    allow_sending(role, gave_up, encryption_key)
    lambda_.CfnEventInvokeConfig(
        scope, "Async", function_name=function.function_name, qualifier="$LATEST",
        maximum_retry_attempts=2, maximum_event_age_in_seconds=6 * 3600,
        destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
            on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=gave_up.queue_arn)))
    undelivered = undelivered_events_queue(scope, "Undelivered", rule_name=rule_name, holds=holds,
                                           encryption_key=encryption_key, topic=topic)
    rule = events.Rule(scope, construct_id, rule_name=rule_name, description=description, event_pattern=pattern,
                       targets=[targets.LambdaFunction(function, retry_attempts=185, max_event_age=Durations.hours(24),
                                                       dead_letter_queue=undelivered)])
    return rule, gave_up


def dead_lettered_schedule(scope: Construct, construct_id: str, *, name: str | None, schedule_expression: str,
                           description: str, state_machine: sfn.StateMachine, role: iam.Role, run_input: str,
                           encryption_key: kms.IKey | None, topic: sns.ITopic,
                           alarm_prefix: str) -> scheduler.CfnSchedule:
    """An EventBridge Scheduler schedule starting `state_machine` as `role`, retried 3 times; a start that still
    fails goes to a watched dead-letter queue, which the schedule's role writes to (Scheduler user guide,
    "Configuring a schedule's dead-letter queue": the execution role needs sqs:SendMessage). `alarm_prefix` is the
    state machine's name, which its alarms start with (the topic key names them so)."""
    queue = watched_queue(scope, f"{construct_id}Missed", holds="EventBridge Scheduler's dead-letter events",
                          kept_for=f"the starts of the {construct_id} schedule that failed after their retries",
                          encryption_key=encryption_key, topic=topic, alarm_name=f"{alarm_prefix}-missed",
                          alarm_description=f"The {construct_id} schedule could not start {alarm_prefix} after 3 "
                                            "retries; the dead-letter event in this alarm's queue says why.")
    allow_sending(role, queue, encryption_key)
    return scheduler.CfnSchedule(
        scope, construct_id, name=name, state="ENABLED", schedule_expression=schedule_expression,
        description=description, flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        target=scheduler.CfnSchedule.TargetProperty(
            arn=state_machine.state_machine_arn, role_arn=role.role_arn, input=run_input,
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=queue.queue_arn)))


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
                   state_machine: sfn.StateMachine, encryption_key: kms.IKey | None, topic: sns.ITopic) -> events.Rule:
    """A rule starting `state_machine` with `run_input` (which may hold events.EventField values) on each
    matching event; EventBridge retries for a day, then keeps the event in a dead-letter queue."""
    return events.Rule(scope, construct_id, rule_name=rule_name, description=description, event_pattern=pattern,
                       targets=[targets.SfnStateMachine(
                           state_machine, input=events.RuleTargetInput.from_object(dict(run_input)), role=role,
                           retry_attempts=185, max_event_age=Durations.hours(24),
                           dead_letter_queue=undelivered_events_queue(
                               scope, f"Undelivered{construct_id.removeprefix('On')}", rule_name=rule_name,
                               holds=holds, encryption_key=encryption_key, topic=topic))])
