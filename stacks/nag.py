"""cdk-nag acknowledgements, always scoped to one policy and one finding, each with its reason."""
from __future__ import annotations

import json
from typing import Any, Iterable

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

# Packs applied by stacks.kit; an IAM5 wildcard finding is acknowledged in each of them.
WILDCARD_RULES = ("AwsSolutions::AwsSolutions-IAM5",)


def _render(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in finding IDs (<Logical.Attr>, <AWS::Region>)."""
    if isinstance(node, str):
        return node
    if "Ref" in node:
        return f"<{node['Ref']}>"
    if "Fn::GetAtt" in node:
        return "<{}.{}>".format(*node["Fn::GetAtt"])
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise ValueError(f"cannot name {node!r} in a cdk-nag finding")


def default_policy(role: iam.Role) -> IConstruct:
    """The CloudFormation policy resource that holds a role's statements."""
    return role.node.find_child("DefaultPolicy").node.default_child


def acknowledge_wildcards(role: iam.Role, resources: Iterable[str], reason: str) -> None:
    """Acknowledge the IAM5 finding for each wildcard resource of the role's policy, on that policy only."""
    policy = default_policy(role)
    for resource in resources:
        name = _render(Stack.of(role).resolve(resource))
        for rule in WILDCARD_RULES:
            Validations.of(policy).acknowledge(Acknowledgment(id=f"{rule}[Resource::{name}]", reason=reason))


XRAY_REASON = ("X-Ray trace and sampling actions have no resource-level permissions; AWS requires "
               "Resource '*' for them.")
LOG_DELIVERY_REASON = ("Step Functions log delivery actions (logs:*LogDelivery, DescribeLogGroups, "
                       "DescribeResourcePolicies, PutResourcePolicy) and X-Ray actions have no resource-level "
                       "permissions; AWS requires Resource '*' for them.")


def allow(role: iam.Role, actions: list[str], resources: list[str], *, conditions: dict | None = None,
          wildcard_reason: str | None = None) -> None:
    """Add a statement to the role; wildcard resources must come with the reason they cannot be narrower."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
    wildcards = [r for r in resources if "*" in json.dumps(Stack.of(role).resolve(r))]
    if wildcards:
        if not wildcard_reason:
            raise ValueError(f"{role.node.path}: wildcard resources for {actions} need a reason")
        acknowledge_wildcards(role, wildcards, wildcard_reason)
