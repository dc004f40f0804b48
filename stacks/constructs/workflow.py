"""The reusable workflow construct: state machine from an ASL file, its derived least-privilege role, logs, tracing."""
from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from aws_cdk import Arn, ArnFormat, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.asl.definition import (WorkflowDefinitionError, distributed_maps, expand, integration_of, item_readers,
                                   substitute, task_states)
from stacks.cdk.compliance import (INLINE_POLICY_REASON, LOG_DELIVERY_REASON, LOGS_KMS_REASON, accept,
                                   acknowledge_wildcards)
from stacks.cdk.permissions import add_statements, condition_service_grants, default_policy, drop_redundant_dependency
from stacks.asl.integrations import EVENTS_RULE_ACTIONS, S3_KEY_USE, Integration
from stacks.asl.shared_asl import shared_asl
from stacks.asl.task_checks import check_task
from stacks.cdk.tokens import AWS, bucket_arn, format_arn, objects_arn, same_stack, stack_of


def used_integrations(definition: Mapping[str, Any], source: str,
                      table: Mapping[str, Integration]) -> Iterator[tuple[str, dict, Integration]]:
    """(state name, state, integration) for every Task and every Map's ItemReader (named "<map> ItemReader"); an
    integration the table (stacks/asl/integrations.py integration_table) lacks stops synthesis."""
    calls = [*task_states(definition), *((f"{name} ItemReader", reader) for name, reader in item_readers(definition))]
    for name, state in calls:
        key = integration_of(name, state, source=source)
        if key not in table:
            raise WorkflowDefinitionError(
                f"{source}: state {name!r} uses integration {key!r}, which neither the kit's table "
                "(stacks/asl/integrations.py) nor the workflow declares; declare it in its WorkflowSpec "
                "integrations with the IAM actions and the resources it needs")
        yield name, state, table[key]


def sagemaker_arn(stack: Stack, resource_type: str, job_name_prefix: str) -> str:
    """Every SageMaker resource of one type this stack's workflows create (names are <prefix>-...)."""
    return format_arn(stack, service="sagemaker", resource=resource_type, resource_name=f"{job_name_prefix}-*")


def sync_jobs(definition: Mapping[str, Any], *, stack: Stack, source: str, job_name_prefix: str,
              table: Mapping[str, Integration]) -> dict[str, tuple[str, str]]:
    """Each `.sync` SageMaker job integration the definition uses, as Step Functions' history names it
    (e.g. createTrainingJob.sync), with its job noun (TrainingJob) and the ARN pattern of this stack's jobs."""
    jobs = {}
    for name, state, integration in used_integrations(definition, source, table):
        if integration.stoppable_job:
            resource = integration_of(name, state, source=source).split(":", 1)[1]
            jobs[resource] = (integration.stoppable_job,
                              sagemaker_arn(stack, integration.sagemaker_resources[0], job_name_prefix))
    return jobs


def created_endpoint(definition: Mapping[str, Any], *, stack: Stack, source: str, job_name_prefix: str,
                     table: Mapping[str, Integration]) -> str | None:
    """The ARN pattern of this stack's endpoints when the definition creates one (which bills every hour)."""
    creates = any("sagemaker:CreateEndpoint" in i.actions for _, _, i in used_integrations(definition, source, table))
    return sagemaker_arn(stack, "endpoint", job_name_prefix) if creates else None


def job_conditions(integration: Integration, guards: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The IAM condition block for an integration's guarded action: every guard on a key it supports."""
    block: dict[str, dict[str, Any]] = {}
    for key in integration.condition_keys:
        for operator, value in guards.get(key, {}).items():
            block.setdefault(operator, {})[key] = value
    return block


def _target(name: str, state: Mapping[str, Any], parameter: str, source: str) -> str:
    target = state.get("Parameters", {}).get(parameter)
    if not isinstance(target, str):
        raise WorkflowDefinitionError(
            f"{source}: state {name!r} must name its target with a static {parameter!r} parameter so its "
            "permission can be derived")
    return target


def workflow_policy_statements(definition: Mapping[str, Any], *, scope: Construct, source: str,
                               job_name_prefix: str, sagemaker_role_arn: str, table: Mapping[str, Integration],
                               bucket: s3.IBucket | None = None, data_key_arn: str | None = None,
                               guards: Mapping[str, Mapping[str, Any]] | None = None,
                               topic_key_arn: str | None = None) -> list[iam.PolicyStatement]:
    """IAM statements for every Task state (and ItemReader) of a substituted definition, merged by action set.

    `guards` maps a SageMaker condition key to {operator: value}; each integration's guarded action gets the
    guards for the keys it supports (see Integration.condition_keys). Tasks are checked first (stacks.asl.task_checks).
    `table` is the workflow's integrations; `bucket` and `data_key_arn` its data bucket and the bucket's key.
    """
    stack = stack_of(scope)
    # (actions, condition) -> resources, in first-seen order: the same actions under another condition (a key used
    # through S3 and through SNS) are another statement, never a merge that would widen or lose either.
    grants: dict[tuple[tuple[str, ...], str], list[str]] = {}
    conditions: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}

    def grant(actions: tuple[str, ...] | list[str], resources: list[str], condition: dict | None = None) -> None:
        if not actions or not resources:
            return
        key = (tuple(actions), json.dumps(condition, sort_keys=True) if condition else "")
        granted = grants.setdefault(key, [])
        granted.extend(r for r in resources if r not in granted)
        if condition:
            conditions[key] = condition

    listed: dict[tuple[str, ...], list[str]] = {}  # bucket actions -> the key prefixes they are confined to
    for name, state, integration in used_integrations(definition, source, table):
        if state.get("Type") == "Task":  # an ItemReader's Parameters are its S3 request, checked by its grant
            check_task(name, state, integration, prefix=job_name_prefix, source=source,
                       key=integration_of(name, state, source=source))
        if integration.bucket_prefixes or integration.bucket_objects:
            if bucket is None:
                raise WorkflowDefinitionError(f"{source}: state {name!r} reaches the data bucket, which this "
                                              "state machine was not given")
            if integration.bucket_prefixes:
                prefixes = listed.setdefault(integration.actions, [])
                prefixes.extend(f"{p}*" for p in integration.bucket_prefixes if f"{p}*" not in prefixes)
            grant(integration.actions, [objects_arn(bucket, pattern) for pattern in integration.bucket_objects])
            uses = tuple(S3_KEY_USE[a] for a in integration.actions if a in S3_KEY_USE and integration.bucket_objects)
            if data_key_arn and uses:
                grant(uses, [data_key_arn], {"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}})
        resources = [sagemaker_arn(stack, kind, job_name_prefix) for kind in integration.sagemaker_resources]
        resources += [format_arn(stack, service=service, resource=resource)
                      for service, resource in integration.fixed_resources]
        if integration.target_parameter:
            target = _target(name, state, integration.target_parameter, source)
            resources.append(target)
            if integration.execution_actions:
                machine = Arn.split(target, ArnFormat.COLON_RESOURCE_NAME).resource_name
                grant(integration.execution_actions, [format_arn(
                    stack, service="states", resource="execution", resource_name=f"{machine}:*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)])
        guarded = job_conditions(integration, guards or {}) if integration.guarded_action else {}
        if guarded:  # the guarded create action apart, so describe/stop/tag stay usable
            grant((integration.guarded_action,), resources, guarded)
            grant(tuple(a for a in integration.actions if a != integration.guarded_action), resources)
        else:
            grant(integration.actions, resources)
        if integration.events_rule:
            grant(EVENTS_RULE_ACTIONS, [format_arn(
                stack, service="events", resource="rule", resource_name=integration.events_rule)])
        if integration.passes_role:
            grant(("iam:PassRole",), [sagemaker_role_arn],
                  {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
        if integration.kms_via and topic_key_arn:
            grant(("kms:Decrypt", "kms:GenerateDataKey"), [topic_key_arn], {"StringEquals": {
                "kms:ViaService": f"{integration.kms_via}.{stack.region}.amazonaws.com"}})
    for actions, prefixes in listed.items():
        grant(actions, [bucket_arn(bucket)], {"StringLike": {"s3:prefix": prefixes}})
    if distributed_maps(definition):
        # A Distributed Map runs its items as child executions of this state machine (Step Functions developer
        # guide, "IAM policies for using Distributed Map states"): named by the prefix, so no reference to itself.
        grant(("states:StartExecution",), [format_arn(stack, service="states", resource="stateMachine",
                                                      resource_name=job_name_prefix,
                                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)])
        grant(("states:DescribeExecution", "states:StopExecution"), [format_arn(
            stack, service="states", resource="execution", resource_name=f"{job_name_prefix}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)])
    return [iam.PolicyStatement(actions=list(key[0]), resources=resources, conditions=conditions.get(key))
            for key, resources in grants.items()]


class SageMakerWorkflow(Construct):
    """A state machine from an ASL definition, with IAM that follows its Task states."""

    def __init__(self, scope: Construct, construct_id: str, *, definition: Mapping[str, Any], source: str,
                 substitutions: Mapping[str, str | int | None], job_name_prefix: str, sagemaker_role: iam.IRole,
                 timeout: Duration, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy,
                 workflow_error: str, integrations: Mapping[str, Integration], bucket: s3.IBucket,
                 guards: Mapping[str, Mapping[str, Any]] | None = None,
                 encryption_key: kms.IKey | None = None, topic_key: kms.IKey | None = None) -> None:
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        resolved = substitute(expand(definition, shared_asl(workflow_error)), {"Partition": AWS.PARTITION, **substitutions}, source=source)
        resolved["TimeoutSeconds"] = int(timeout.to_seconds())

        self.role = iam.Role(self, "Role", description=f"Runs the {source} state machine",
                             assumed_by=iam.ServicePrincipal("states.amazonaws.com", conditions={
                                 "StringEquals": {"aws:SourceAccount": AWS.ACCOUNT_ID}}))
        same_stack(self.role, stack)
        add_statements(self.role, workflow_policy_statements(
            resolved, scope=stack, source=source, job_name_prefix=job_name_prefix, guards=guards,
            table=integrations, bucket=bucket, data_key_arn=encryption_key.key_arn if encryption_key else None,
            sagemaker_role_arn=sagemaker_role.role_arn, topic_key_arn=topic_key.key_arn if topic_key else None))
        used = [integration for _, _, integration in used_integrations(resolved, source, integrations)]
        acknowledge_wildcards(
            self.role,
            sorted({sagemaker_arn(stack, kind, job_name_prefix) for i in used for kind in i.sagemaker_resources}),
            f"SageMaker job and model names are {job_name_prefix}-<uuid>, made per attempt at run time so any "
            "execution name, retry or redrive gets a valid, unused name; the prefix confines the role to this "
            "stack's SageMaker resources.")
        objects = sorted({objects_arn(bucket, pattern) for i in used for pattern in i.bucket_objects})
        acknowledge_wildcards(self.role, objects, "The workflow declares these key patterns of its own data bucket for "
                                                  "its S3 calls; files arrive there under names the kit cannot know.")
        if distributed_maps(resolved):
            acknowledge_wildcards(self.role, [format_arn(stack, service="states", resource="execution",
                                                         resource_name=f"{job_name_prefix}/*",
                                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)],
                                  "A Distributed Map names its child executions <state machine>/<map run>:<id> at "
                                  "run time; the pattern covers this state machine's own only.")

        # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per log group;
        # the stack's UUID frees the name again when a retained group outlives its stack.
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=removal_policy, encryption_key=encryption_key,
            log_group_name=Fn.join("", [f"/aws/vendedlogs/states/{job_name_prefix}-",
                                        Fn.select(2, Fn.split("/", AWS.STACK_ID))]))
        # Named, so that a customer-managed key's encryption context can name it (and the CLI can find it).
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=job_name_prefix,
            definition_body=sfn.DefinitionBody.from_string(stack.to_json_string(resolved)),
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            encryption_configuration=(sfn.CustomerManagedEncryptionConfiguration(encryption_key)
                                      if encryption_key else None),
        )
        acknowledge_wildcards(self.role, ["*"], LOG_DELIVERY_REASON)
        drop_redundant_dependency(self.state_machine.node.default_child, self.role)
        accept(default_policy(self.role), "inline-policy", INLINE_POLICY_REASON)
        if not encryption_key:
            accept(self.log_group.node.default_child, "logs-kms", LOGS_KMS_REASON)
        else:
            confine_log_delivery(stack, encryption_key)


def confine_log_delivery(stack: Stack, key: kms.IKey) -> None:
    """CDK's StateMachine grants delivery.logs.amazonaws.com kms:Decrypt* on the key with no condition; confine it
    to deliveries for this account's log groups, as CloudWatch Logs' guide to logs vended by AWS services does
    (aws:SourceAccount, and aws:SourceArn on the account's logs ARNs), so no other account's delivery can use it."""
    resource = key.node.default_child
    if isinstance(resource, kms.CfnKey):
        condition_service_grants(resource, "KeyPolicy", stack.resolve(resource.key_policy),
                                 ("delivery.logs.amazonaws.com",),
                                 {"StringEquals": {"aws:SourceAccount": AWS.ACCOUNT_ID},
                                  "ArnLike": {"aws:SourceArn": format_arn(stack, service="logs", resource="*")}})
