"""Helpers to read synthesized CloudFormation the way the tests state expectations."""
from __future__ import annotations

from typing import Any

PARTITION = {"Ref": "AWS::Partition"}
REGION = {"Ref": "AWS::Region"}
ACCOUNT = {"Ref": "AWS::AccountId"}


def join(*parts: Any) -> dict:
    return {"Fn::Join": ["", list(parts)]}


def arn(service: str, resource: str, account: Any = ACCOUNT) -> dict:
    """An ARN in this region and account, as CDK's format_arn renders it."""
    return join("arn:", PARTITION, f":{service}:", REGION, ":", account, f":{resource}")


def logical_id(template: dict, path: str) -> str:
    """Logical ID of the resource the construct at `path` (below the stack) created."""
    for logical, resource in template["Resources"].items():
        if resource.get("Metadata", {}).get("aws:cdk:path", "").split("/", 1)[-1] == path:
            return logical
    raise KeyError(path)


def resource(template: dict, path: str) -> dict:
    return template["Resources"][logical_id(template, path)]


def get_att(template: dict, path: str, attribute: str = "Arn") -> dict:
    return {"Fn::GetAtt": [logical_id(template, path), attribute]}


def ref(template: dict, path: str) -> dict:
    return {"Ref": logical_id(template, path)}


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}
