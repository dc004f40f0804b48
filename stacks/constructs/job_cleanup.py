"""Stops the SageMaker jobs an execution leaves running, and deletes the endpoint it created, when it ends without
success (failed, timed out, stopped): nothing a run gave up on keeps billing."""
from __future__ import annotations

import json
from typing import Mapping

from aws_cdk import ArnFormat
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.event_claim import allow_releasing_claims
from stacks.constructs.event_targets import invoke_on_event
from stacks.cdk.permissions import add_statements, allow, endpoint_key_statements
from stacks.constructs.functions import KitFunction
from stacks.cdk.tokens import Durations, format_arn, stack_of

# Execution statuses after which nothing of the run may keep billing (every end but success).
GAVE_UP = ["FAILED", "TIMED_OUT", "ABORTED"]


class StrandedJobCleanup(Construct):
    """An EventBridge rule on the state machine's unsuccessful ends, invoking a function that stops its jobs
    and deletes the endpoint the run created."""

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine,
                 state_machine_name: str, sync_jobs: Mapping[str, tuple[str, str]], endpoints: str | None,
                 endpoint_name: str | None, encryption_key: kms.IKey | None, topic: sns.ITopic,
                 claims_bucket: s3.IBucket | None = None, **function_settings) -> None:
        """`sync_jobs` maps each `.sync` integration (e.g. createTrainingJob.sync) to (job noun, ARN pattern);
        `endpoints` is the ARN pattern of the endpoints the workflow creates, if it creates one, and
        `endpoint_name` the one it creates, when it is known at synthesis (named in the alarm); `claims_bucket`
        the bucket whose claims/ the workflow's event-started runs claim, released by a run that did not succeed."""
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        self.function = KitFunction(
            self, "StopRunJobs", folder="stop_run_jobs",
            description="Stops the SageMaker jobs a failed, timed-out or stopped execution left running"
                        + (" and deletes the endpoint it created" if endpoints else ""),
            environment={"SYNC_JOBS": json.dumps({key: noun for key, (noun, _) in sorted(sync_jobs.items())}),
                         **({"DELETES_CREATED_ENDPOINTS": "true"} if endpoints else {}),
                         **({"CLAIMS_BUCKET": claims_bucket.bucket_name} if claims_bucket else {})},
            # An endpoint still being created must settle before it can be deleted: the function waits for it.
            timeout=Durations.minutes(15 if endpoints else 1), encryption_key=encryption_key,
            dead_letter_reason="An invocation that fails after Lambda's two retries goes to the on-failure "
                               "destination GaveUp (an event invoke config, which this check does not read): a "
                               "watched queue whose alarm notifies, naming what may still bill.",
            **function_settings)
        executions = format_arn(stack, service="states", resource="execution",
                                resource_name=f"{state_machine_name}:*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
        role = self.function.role
        allow(role, ["states:GetExecutionHistory"], [executions],
              wildcard_reason="Any execution of this one state machine may end unsuccessfully; its name is known "
                              "only at run time.")
        for noun, arn in sorted(sync_jobs.values()):
            allow(role, [f"sagemaker:Describe{noun}", f"sagemaker:Stop{noun}"], [arn],
                  wildcard_reason="Jobs are named <prefix>-<uuid> per attempt at run time; the prefix confines "
                                  "the function to this stack's jobs.")
        if endpoints:
            allow(role, ["sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"], [endpoints],
                  wildcard_reason="The workflow's endpoint is named <prefix>-...; the prefix confines the function "
                                  "to this stack's endpoints, and it deletes only one its run created.")
            # A run that ends during its shadow test leaves the endpoint on the shadow config: back to production's.
            configs = format_arn(stack, service="sagemaker", resource="endpoint-config",
                                 resource_name=f"{state_machine_name}-*")
            allow(role, ["sagemaker:UpdateEndpoint"], [endpoints, configs],
                  wildcard_reason="The workflow names its endpoint and configs <prefix>-...; the function returns "
                                  "only an endpoint its run left serving a shadow test to the config it served "
                                  "before.")
            if encryption_key:
                add_statements(role, endpoint_key_statements(encryption_key.key_arn))
        if claims_bucket:
            allow_releasing_claims(role, claims_bucket, "the claim in the input of the run that did not succeed")
        if encryption_key:  # the execution history is encrypted with the stack's key
            allow(role, ["kms:Decrypt"], [encryption_key.key_arn], conditions={"StringEquals": {
                "kms:EncryptionContext:aws:states:stateMachineArn": state_machine.state_machine_arn}})
        # An invocation that still fails after Lambda's retries is kept, with its error, in a watched queue: an
        # endpoint the cleanup could not delete bills until someone acts, so the alarm names what may still bill.
        left = " and ".join(
            ([f"the jobs ({', '.join(sorted({noun for noun, _ in sync_jobs.values()}))})"] if sync_jobs else [])
            + ([f"the endpoint {endpoint_name or '(named <prefix>-...)'}"] if endpoints else []))
        # Named after the workflow, so the queue's key policy can name the rule without a dependency cycle.
        self.rule, self.gave_up = invoke_on_event(
            self, "OnExecutionGaveUp", rule_name=f"{state_machine_name}-stop-stranded-jobs",
            description=f"Stops SageMaker jobs left running by {state_machine_name} executions that did not succeed"
                        + (", and deletes the endpoint they created" if endpoints else ""),
            pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": GAVE_UP}),
            function=self.function.function, role=role, holds="execution status events",
            encryption_key=encryption_key, topic=topic, gave_up_alarm=f"{state_machine_name}-cleanup-gave-up",
            gave_up_description=f"The cleanup of a {state_machine_name} run that did not succeed failed after "
                                f"Lambda's retries: {left} it started may still be running and billing. The record "
                                "in this alarm's queue names the execution and the error; stop or delete what it "
                                "names (the SageMaker console), then delete the message.")
