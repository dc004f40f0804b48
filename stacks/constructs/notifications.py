"""A workflow's notification topic, under a customer-managed key CloudWatch alarms can use, and the alarms on the
workflow's own failed and timed-out runs: every stack, deployed alone, tells someone when a run gives up."""
from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn

from stacks.cdk.compliance import accept
from stacks.cdk.tokens import Durations, format_arn

# Step Functions' execution metrics an alarm watches per state machine (Step Functions developer guide,
# "Monitoring Step Functions metrics using CloudWatch": namespace AWS/States, dimension StateMachineArn).
RUN_ALARMS = {"failed": "ExecutionsFailed", "timed-out": "ExecutionsTimedOut"}


def topic_key(stack: Stack, key: kms.IKey | None, alarm_names: list[str]) -> kms.IKey:
    """The key of a topic CloudWatch alarms publish to: the stack's own (encryption=kms) or one for the topic only.

    CloudWatch cannot publish to a topic under the AWS managed key alias/aws/sns: the SNS developer guide ("Enable
    compatibility between event sources from AWS services and encrypted topics") asks for a customer managed key
    whose policy lets the service principal decrypt and generate data keys. aws:SourceArn and aws:SourceAccount
    (which that page's example uses for CloudWatch) confine it to this copy's alarms, `alarm_names` (one pattern per
    workflow of the copy, `<prefix>-<slug>-*`: a copy-wide `<prefix>-*` of the copy without a stage would also
    match every staged copy's `<prefix>-<stage>-...` alarms). No EventBridge rule of the kit targets a topic, so
    events.amazonaws.com gets nothing here."""
    if key is None:
        # Messages are not kept under this key (SNS holds a message only until delivered), so it goes with the
        # stack: nothing retained needs it.
        key = kms.Key(stack, "TopicKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                      pending_window=Durations.days(7),
                      description=f"Encrypts the {stack.stack_name} notification topic, which its alarms publish to")
    sources = [format_arn(stack, service="cloudwatch", resource="alarm", resource_name=names,
                          arn_format=ArnFormat.COLON_RESOURCE_NAME) for names in alarm_names]
    key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],  # in a key policy: this key
        conditions={"ArnLike": {"aws:SourceArn": sources if len(sources) > 1 else sources[0]},
                    "StringEquals": {"aws:SourceAccount": stack.account}}))
    return key


def notification_topic(stack: Stack, key: kms.IKey, display_name: str, email: str | None) -> sns.Topic:
    topic = sns.Topic(stack, "Notifications", enforce_ssl=True, display_name=display_name, master_key=key)
    if email:
        subscription = topic.add_subscription(subscriptions.EmailSubscription(email))
        accept(subscription.node.default_child, "sns-redrive",
               "An email subscription's failed deliveries are retried by SNS and reported on the topic's delivery "
               "metrics; a dead-letter queue would only hold copies of notification emails.")
    return topic


def alarm_on_failed_runs(stack: Stack, state_machine: sfn.IStateMachine, machine_name: str,
                         topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
    """An alarm per RUN_ALARMS on this state machine, named <machine>-<suffix>, notifying the topic."""
    machine = format_arn(stack, service="states", resource="stateMachine", resource_name=machine_name,
                         arn_format=ArnFormat.COLON_RESOURCE_NAME)
    alarms = {}
    for suffix, metric in RUN_ALARMS.items():
        alarm = cloudwatch.Alarm(
            stack, f"Runs{suffix.title().replace('-', '')}", alarm_name=f"{machine_name}-{suffix}",
            alarm_description=f"An execution of {machine_name} {suffix.replace('-', ' ')} (see its history in the "
                              "Step Functions console)",
            metric=cloudwatch.Metric(namespace="AWS/States", metric_name=metric, statistic="Sum",
                                     dimensions_map={"StateMachineArn": machine}, period=Durations.minutes(5)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarms[suffix] = alarm
    return alarms
