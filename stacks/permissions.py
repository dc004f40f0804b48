"""IAM helpers: a statement on a role with the reason for any wildcard, a resource waiting for a role's policy."""
from __future__ import annotations

import json

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam

from stacks.compliance import acknowledge_resolved_wildcards, default_policy


def allow(role: iam.Role, actions: list[str], resources: list[str], *, conditions: dict | None = None,
          wildcard_reason: str | None = None) -> None:
    """Add a statement to the role; wildcard resources must come with the reason they cannot be narrower."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
    wildcards = [value for value in Stack.of(role).resolve(resources) if "*" in json.dumps(value)]
    if wildcards:
        if not wildcard_reason:
            raise ValueError(f"{role.node.path}: wildcard resources for {actions} need a reason")
        acknowledge_resolved_wildcards(role, wildcards, wildcard_reason)


def drop_redundant_dependency(resource: CfnResource, role: iam.Role) -> None:
    """CDK makes a resource depend on the role it already references by GetAtt (cfn-lint W3005) as well as
    on the role's policy; keep only the policy, which must exist before the resource first runs."""
    resource.add_override("DependsOn", [Stack.of(role).get_logical_id(default_policy(role))])
