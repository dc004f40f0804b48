"""IAM helpers: a statement on a role with the reason for any wildcard, the policy resource behind a role."""
from __future__ import annotations

import json

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from stacks.compliance import acknowledge_wildcards


def default_policy(role: iam.Role) -> IConstruct:
    """The CloudFormation policy resource that holds a role's statements."""
    return role.node.find_child("DefaultPolicy").node.default_child


def allow(role: iam.Role, actions: list[str], resources: list[str], *, conditions: dict | None = None,
          wildcard_reason: str | None = None) -> None:
    """Add a statement to the role; wildcard resources must come with the reason they cannot be narrower."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
    wildcards = [r for r in resources if "*" in json.dumps(Stack.of(role).resolve(r))]
    if wildcards:
        if not wildcard_reason:
            raise ValueError(f"{role.node.path}: wildcard resources for {actions} need a reason")
        acknowledge_wildcards(role, wildcards, wildcard_reason)


def drop_redundant_dependency(resource: CfnResource, role: iam.Role) -> None:
    """CDK makes a resource depend on the role it already references by GetAtt (cfn-lint W3005) as well as
    on the role's policy; keep only the policy, which must exist before the resource first runs."""
    resource.add_override("DependsOn", [Stack.of(role).get_logical_id(default_policy(role))])
