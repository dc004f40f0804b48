"""The role a delivery's check assumes in the stage it checks: it may start and watch runs of that stage's
workflows and nothing else, and only the pipeline's check (a role of a fixed name in the pipeline's account) may
assume it. The permissions live with what they reach, in the stage's account, so a stage in another account
trusts one named role, not the pipeline's account."""
from __future__ import annotations

from typing import Mapping

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.cdk.compliance import INLINE_POLICY_REASON, accept, acknowledge_wildcards
from stacks.cdk.permissions import allow, default_policy
from stacks.workflows.workflow_stack import SageMakerWorkflowStack
from stacks.cdk.tokens import format_arn

RUN_NAME = "pipeline-check-"  # the check names each run pipeline-check-<build number>


def check_role_name(name_prefix: str, stage: str) -> str:
    return f"{name_prefix}-{stage}-delivery-check"


class DeliveryCheckStack(Stack):
    """One role, after every workflow stack of the stage (it names their state machines)."""

    def __init__(self, scope: Construct, construct_id: str, *, workflows: Mapping[str, SageMakerWorkflowStack],
                 trusted_role_arn: str, role_name: str, **kwargs) -> None:
        super().__init__(scope, construct_id, description="The role the delivery pipeline checks this stage with",
                         **kwargs)
        self.role = iam.Role(self, "Role", role_name=role_name, assumed_by=iam.ArnPrincipal(trusted_role_arn),
                             description="Lets the delivery pipeline's check start and watch this stage's workflows")
        names = [stack.job_name_prefix for stack in workflows.values()]
        machines = [format_arn(self, service="states", resource="stateMachine", resource_name=name,
                               arn_format=ArnFormat.COLON_RESOURCE_NAME) for name in names]
        runs = [format_arn(self, service="states", resource="execution", resource_name=f"{name}:{RUN_NAME}*",
                           arn_format=ArnFormat.COLON_RESOURCE_NAME) for name in names]
        allow(self.role, ["states:StartExecution"], machines)
        allow(self.role, ["states:DescribeExecution"], runs,
              wildcard_reason=f"The check names its runs {RUN_NAME}<build number>; it may watch only those runs of "
                              "this stage's state machines.")
        if any(stack.key for stack in workflows.values()):  # executions are encrypted with each stack's key
            keys = [format_arn(self, service="kms", resource="key", resource_name="*")]
            allow(self.role, ["kms:Decrypt", "kms:GenerateDataKey"], keys, conditions={
                "StringEquals": {"kms:ViaService": f"states.{self.region}.amazonaws.com"},
                "ForAnyValue:StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": machines}},
                wildcard_reason="The workflow stacks create their keys, whose IDs this stack does not reference "
                                "(no cross-stack export); the check may use a key only through Step Functions "
                                "(kms:ViaService) for executions of this stage's state machines.")
        accept(default_policy(self.role), "inline-policy", INLINE_POLICY_REASON)
        for stack in workflows.values():
            self.add_stack_dependency(stack, "the check runs the stage's workflows")
