"""Whether an AWS service may use a topic's KMS key on its own behalf (a CloudWatch alarm publishing to an encrypted
topic): the key policies of the templates, evaluated for the service principal, and what AWS managed keys allow.

SNS encrypts a published message with the topic's key under the publisher's identity; for an alarm action the
publisher is the CloudWatch service principal, which needs kms:GenerateDataKey* and kms:Decrypt in the key's policy
(SNS developer guide, "Enable compatibility between event sources from AWS services and encrypted topics"). An AWS
managed key's policy cannot be changed and lets only the service it belongs to use it for the account
(stacks/aws_behaviours.py, row `managed-key-services`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from offline.sources.assembly import ACCOUNT, SynthesizedStack
from offline.iam.iam_policy import Statement, decide, parse_policy
from stacks.aws_behaviours import MANAGED_KEY_SERVICES

ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")  # what SNS asks KMS for on the publisher's behalf


@dataclass
class ServiceKeys:
    topic_keys: Mapping[str, str] = field(default_factory=dict)  # topic ARN -> its KmsMasterKeyId, as resolved
    key_policies: Mapping[str, list[tuple[tuple[str, ...], Statement]]] = field(default_factory=dict)

    @classmethod
    def from_stacks(cls, stacks: list[SynthesizedStack]) -> "ServiceKeys":
        topics, policies = {}, {}
        for stack in stacks:
            resolve = stack.resolver.resolve
            for logical_id, resource in stack.template["Resources"].items():
                props = resource.get("Properties", {})
                if resource["Type"] == "AWS::SNS::Topic" and props.get("KmsMasterKeyId"):
                    topics[stack.resolver.arn(logical_id)] = resolve(props["KmsMasterKeyId"])
                elif resource["Type"] == "AWS::KMS::Key":
                    document = resolve(props["KeyPolicy"])
                    where = f"{stack.name} {logical_id} key policy"
                    policies[stack.resolver.arn(logical_id)] = [
                        (_services(raw), parse_policy({"Statement": [_without_principal(raw)]}, where)[0])
                        for raw in document.get("Statement", [])]
        return cls(topics, policies)

    def publish_refusal(self, service: str, topic_arn: str, context: Mapping[str, str]) -> str | None:
        """Why `service` (cloudwatch.amazonaws.com) cannot publish to the topic, or None when it can."""
        key = self.topic_keys.get(topic_arn)
        if key is None:
            return None  # an unencrypted topic
        if key.startswith("alias/aws/"):
            owner = key.removeprefix("alias/aws/")
            if service not in MANAGED_KEY_SERVICES.get(owner, ()):
                return (f"{topic_arn} is encrypted with the AWS managed key {key}, which {service} cannot use; "
                        "give the topic a customer managed key whose policy allows the service")
            return None
        statements = self.key_policies.get(key)
        if statements is None:
            return f"{topic_arn} is encrypted with {key}, a key no template of this app defines"
        mine = [statement for services, statement in statements if service in services]
        for action in ACTIONS:
            if decide(mine, action, key, {**context, "aws:SourceAccount": ACCOUNT}) != "Allow":
                return (f"the key policy of {key} (the key of {topic_arn}) does not allow {service} {action} "
                        f"for {context.get('aws:SourceArn')}")
        return None


def _services(raw: Mapping) -> tuple[str, ...]:
    services = raw.get("Principal", {}).get("Service", ()) if isinstance(raw.get("Principal"), dict) else ()
    return (services,) if isinstance(services, str) else tuple(services)


def _without_principal(raw: Mapping) -> dict:
    return {k: v for k, v in raw.items() if k != "Principal"}
