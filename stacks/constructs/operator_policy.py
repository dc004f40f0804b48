"""A customer-managed policy for the people (or pipelines) who run a stack's workflow: attach it, and they can."""
from __future__ import annotations

from aws_cdk import ArnFormat
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contract import run_layout
from stacks.cdk.compliance import acknowledge_wildcards
from stacks.cdk.tokens import bucket_arn, format_arn, objects_arn, same_stack, stack_of


class OperatorPolicy(Construct):
    """Start, stop and watch this state machine's executions, read run outputs, use the key only through them."""

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine,
                 state_machine_name: str, bucket: s3.IBucket, encryption_key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        executions = format_arn(stack, service="states", resource="execution", resource_name=f"{state_machine_name}:*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
        runs = objects_arn(bucket, run_layout.glob())
        statements = [
            iam.PolicyStatement(actions=["states:StartExecution", "states:DescribeStateMachine",
                                         "states:ListExecutions"], resources=[state_machine.state_machine_arn]),
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:GetExecutionHistory",
                                         "states:StopExecution"], resources=[executions]),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[runs]),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn(bucket)],
                                conditions={"StringLike": {"s3:prefix": [run_layout.glob()]}}),
        ]
        if encryption_key:  # executions and run data are encrypted with the stack's key: usable only through them
            statements.append(iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": [f"states.{stack.region}.amazonaws.com",
                                                                f"s3.{stack.region}.amazonaws.com"]}}))
        self.policy = iam.ManagedPolicy(
            self, "Policy", statements=statements,
            description=f"Run and watch the {state_machine_name} workflow: start, stop and read its executions "
                        "and read its run outputs")
        same_stack(self.policy, stack)
        acknowledge_wildcards(self.policy, [executions],
                              "Operators start executions with names of their own choosing; the pattern covers "
                              "only executions of this one state machine.")
        acknowledge_wildcards(self.policy, [runs],
                              "Run outputs live under runs/<execution name>/, a name chosen at start; read access "
                              "covers only that folder of this stack's bucket.")
