"""A local EventBridge default bus: the stacks' rules, matched with moto's event-pattern engine, delivered locally.

Rules and targets come from the synthesized templates. Lambda targets run the real handler with the event, if
the function's resource policy lets the rule invoke it; state machine targets start an execution with the event
as input, as the rule's role. Events reach targets synchronously, so a
test sees a rule's effect as soon as `put` returns.

EventBridge invokes a function asynchronously, so a handler's error is Lambda's to handle, as the Lambda developer
guide says ("How Lambda handles errors and retries with asynchronous invocation"; "Capturing records of Lambda
asynchronous invocations"): the invocation runs again, up to the function's MaximumRetryAttempts (2 unless its event
invoke config says otherwise), here without the one- and two-minute waits; then the invocation record goes to the
on-failure destination (an SQS queue, sent with the function's role, so offline IAM checks it), or the event is
discarded. Either way `put` returns; `gave_up` keeps each record.
"""
from __future__ import annotations

import datetime
import json
import re
import uuid
from typing import Any

import boto3
from moto.events.models import EventPattern

from offline.sources.assembly import ACCOUNT, REGION, LocalFunction, LocalRule, LocalTarget, queue_url
from offline.iam.iam import LocalIam
from offline.services.lambda_service import LocalLambda


class UnsupportedTarget(RuntimeError):
    """A rule targets a service the local bus cannot deliver to."""


class LocalEventBus:
    def __init__(self, rules: list[LocalRule], lambda_: LocalLambda, sfn: Any, iam: LocalIam) -> None:
        self.rules = [(rule, EventPattern.load(json.dumps(rule.pattern))) for rule in rules]
        self.lambda_, self.sfn, self.iam = lambda_, sfn, iam
        self.delivered: list[dict] = []  # {"rule", "target", "event", "result"} in delivery order
        self.gave_up: list[dict] = []  # the invocation records of asynchronous invocations that failed every attempt

    def put(self, source: str, detail_type: str, detail: dict, resources: list[str]) -> list[dict]:
        """Publish one event on the default bus; returns what each matching target answered."""
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
                 "account": ACCOUNT, "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "region": REGION, "resources": resources, "detail": detail}
        deliveries = []
        for rule, pattern in self.rules:
            if pattern.matches_event(event):
                for target in rule.targets:
                    deliveries.append({"rule": rule.name, "target": target.arn, "event": event,
                                       "result": self._deliver(rule, target, transform(target, event))})
        self.delivered += deliveries
        return deliveries

    def _deliver(self, rule: LocalRule, local_target: LocalTarget, event: dict | str) -> Any:
        target, rule_arn = local_target.arn, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.name}"
        service = target.split(":")[2]
        if service == "lambda":
            if not self.iam.invocation_allowed(target, "events.amazonaws.com", rule_arn):
                raise PermissionError(f"{rule_arn} cannot invoke {target}: no statement of the function's resource "
                                      "policy (AWS::Lambda::Permission) allows events.amazonaws.com for this rule")
            function = self.lambda_.find(target)
            for _ in range(1 + function.retries):
                payload, raised = self.lambda_.invoke(function, _text(event).encode())
                result = json.loads(payload)
                if not raised:
                    return result
            return self._give_up(target, function, event, result, 1 + function.retries)
        if service == "states":
            if local_target.role_arn is None:
                raise UnsupportedTarget(f"{rule_arn} targets {target} without a role; EventBridge needs one")
            with self.iam.acting_as(local_target.role_arn, session=rule.name):
                # EventBridge names no execution; Step Functions then names it with a UUID.
                return self.sfn.start_execution(stateMachineArn=target, name=str(uuid.uuid4()),
                                                input=_text(event))["executionArn"]
        raise UnsupportedTarget(f"a rule targets {target}; offline/services/event_bus.py LocalEventBus._deliver "
                                "delivers only to Lambda functions and state machines: add the service there")


    def _give_up(self, target: str, function: LocalFunction, event: dict | str, error: dict, attempts: int) -> dict:
        """Lambda's invocation record of an asynchronous invocation whose every attempt failed, sent to the
        function's on-failure destination (an SQS queue) as the function's role; without one, it is discarded."""
        record = {"version": "1.0", "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                  "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{target}:$LATEST",
                                     "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
                  "requestPayload": json.loads(_text(event)),
                  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                  "responsePayload": error}
        destination = function.on_failure
        if destination:
            if destination.split(":")[2] != "sqs":
                raise UnsupportedTarget(f"{function.name}'s on-failure destination {destination} is not an SQS queue; "
                                        "offline/services/event_bus.py sends records to queues only: add the service")
            name = destination.rsplit(":", 1)[1]
            with self.iam.acting_as(function.role_arn, session=function.name):
                boto3.client("sqs", region_name=REGION).send_message(
                    QueueUrl=queue_url(name), MessageBody=json.dumps(record))
        self.gave_up.append({**record, "destination": destination})
        return {"gave_up": record, "destination": destination}


def _text(event: dict | str) -> str:
    return event if isinstance(event, str) else json.dumps(event)


def transform(target: LocalTarget, event: dict) -> dict | str:
    """What the target receives: the event, or its InputTransformer's template filled from the event's paths
    (`<name>` placeholders, values from simple `$.a.b` paths), as EventBridge does: in a JSON template, a
    placeholder outside quotes becomes the value as JSON, one inside a string its text, escaped."""
    if target.input is not None:
        return target.input
    if not target.input_template:
        return event
    values = {}
    for name, path in (target.input_paths or {}).items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[name] = value
    template, parts, quoted, position = target.input_template, [], False, 0
    json_template = template.lstrip()[:1] in ("{", "[")
    for match in re.finditer(r'\\.|"|<([\w.-]+)>', template):
        if match.group(0) == '"':
            quoted = not quoted
        elif match.group(1) in values:
            value = values[match.group(1)]
            text = value if isinstance(value, str) else json.dumps(value)
            if json_template:
                text = json.dumps(text)[1:-1] if quoted else json.dumps(value)
            parts += [template[position:match.start()], text]
            position = match.end()
    return "".join(parts) + template[position:]
