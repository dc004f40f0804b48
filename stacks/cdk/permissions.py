"""IAM helpers: a statement on a role with the reason for any wildcard, a resource waiting for a role's policy."""
from __future__ import annotations

from aws_cdk import CfnResource
from aws_cdk import aws_iam as iam

from stacks.cdk.compliance import check_wildcards, default_policy, depend_on_policy_only

__all__ = ["add_statements", "allow", "condition_service_grants", "default_policy", "drop_redundant_dependency",
           "endpoint_key_statements"]


def allow(role: iam.Role, actions: list[str], resources: list[str], *, conditions: dict | None = None,
          wildcard_reason: str | None = None) -> None:
    """Add a statement to the role; wildcard resources must come with the reason they cannot be narrower.

    Two calls into CDK: the statement, and adding it (add_to_policy: add_to_principal_policy's result would cost
    two more to read). The wildcards are found and acknowledged without resolving anything now
    (stacks.cdk.compliance)."""
    if not resources:  # CDK refuses it at synthesis only when the minimizePolicies flag is off
        raise ValueError(f"{role.node.path}: a statement for {actions} needs resources")
    check_wildcards(role, actions, resources, wildcard_reason)
    role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))


def add_statements(role: iam.Role, statements: list[iam.PolicyStatement]) -> None:
    """role.add_to_policy for each statement, in order, in at most four calls: the first statement makes the role's
    default policy (an iam.Policy), which takes the rest in one call, as Role.addToPrincipalPolicy adds each."""
    if not statements:
        return
    first, *rest = statements
    role.add_to_policy(first)  # add_to_principal_policy: two more calls to read its result
    policy = role.node.try_find_child("DefaultPolicy") if len(rest) > 2 else None
    if isinstance(policy, iam.Policy):
        policy.add_statements(*rest)
    else:
        for statement in rest:
            role.add_to_policy(statement)


def endpoint_key_statements(key_arn: str) -> list[iam.PolicyStatement]:
    """What the caller of CreateEndpoint or UpdateEndpoint needs of the key the endpoint config's volumes use:
    SageMaker describes it and takes a grant on it for the caller (the grant is for an AWS resource)."""
    return [iam.PolicyStatement(actions=["kms:CreateGrant"], resources=[key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key_arn])]


def condition_service_grants(resource: CfnResource, path: str, document: dict, services: tuple[str, ...],
                             condition: dict) -> None:
    """Give `condition` to each statement of the resource's policy `document` (resolved; the property at `path`:
    AssumeRolePolicyDocument, KeyPolicy) whose principal is one of `services` and that has none: a grant CDK
    generates for a service (a trust, a key policy statement) without the account conditions the kit's own carry."""
    for index, statement in enumerate(document.get("Statement", [])):
        if statement.get("Principal", {}).get("Service") in services and "Condition" not in statement:
            resource.add_property_override(f"{path}.Statement.{index}.Condition", condition)


def drop_redundant_dependency(resource: CfnResource, role: iam.Role) -> None:
    """CDK makes a resource depend on the role it already references by GetAtt (cfn-lint W3005) as well as
    on the role's policy; keep only the policy, which must exist before the resource first runs."""
    depend_on_policy_only(resource, role)
