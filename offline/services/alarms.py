"""CloudWatch alarms, evaluated locally: the stacks' alarms (from the templates) against moto's metric data.

CloudWatch evaluates an alarm every period; offline, `evaluate(at)` is one evaluation at a moment of the caller's
choosing (a monitor run's window end). An alarm that changes state does what CloudWatch does: its actions get the
alarm's message on their SNS topics, and the default bus gets a "CloudWatch Alarm State Change" event (which
rules, such as retrain_on_drift's, match). An action whose topic's key CloudWatch may not use fails as it does on AWS:
nothing is published, and the change records the failed action as the alarm's history shows it. Alarms on metrics
nothing publishes offline (AWS/SageMaker) keep their state; the kit's own metrics and Step Functions' execution
metrics (offline/cloud/account.py publishes them as executions end) can fire here.
"""
from __future__ import annotations

import datetime
import json
from typing import Any

from offline.sources.assembly import ACCOUNT, REGION
from offline.services.service_keys import ServiceKeys

# AWS namespaces something publishes to offline: Step Functions' (offline/cloud/account.py) and SQS's queue depth,
# which CloudWatch reads from SQS every minute (SQS developer guide, "Available CloudWatch metrics for Amazon SQS")
# and an evaluation here reads from the local queue at its moment.
PUBLISHED_OFFLINE = ("AWS/States", "AWS/SQS")
QUEUE_DEPTH = {"ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages"}  # metric -> queue attribute

COMPARE = {"GreaterThanOrEqualToThreshold": lambda v, t: v >= t, "GreaterThanThreshold": lambda v, t: v > t,
           "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}


class LocalAlarms:
    def __init__(self, alarms: list[dict], cloudwatch: Any, sns: Any, events: Any, keys: ServiceKeys,
                 sqs: Any = None) -> None:
        self.alarms = {alarm["AlarmName"]: alarm for alarm in alarms}
        self.cloudwatch, self.sns, self.events, self.keys, self.sqs = cloudwatch, sns, events, keys, sqs
        self.states = dict.fromkeys(self.alarms, "INSUFFICIENT_DATA")
        self.changes: list[dict] = []  # every state change, in order

    def _value(self, alarm: dict, at: datetime.datetime) -> float | None:
        """The alarm's statistic over its evaluation periods ending at `at`; None without data."""
        if alarm.get("ExtendedStatistic"):
            raise ValueError(f"{alarm['AlarmName']}: percentile statistics are not evaluated offline")
        period = alarm["Period"] * alarm.get("EvaluationPeriods", 1)
        answer = self.cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
            StartTime=at - datetime.timedelta(seconds=period), EndTime=at + datetime.timedelta(seconds=1),
            Period=period, Statistics=[alarm["Statistic"]])
        points = [p[alarm["Statistic"]] for p in answer["Datapoints"]]
        return max(points) if points else None

    def evaluate(self, at: datetime.datetime) -> list[dict]:
        """One evaluation of every alarm on the kit's own metrics; returns the state changes it made."""
        made = []
        for name, alarm in self.alarms.items():
            if alarm["Namespace"].startswith("AWS/") and alarm["Namespace"] not in PUBLISHED_OFFLINE:
                continue
            if alarm["Namespace"] == "AWS/SQS":
                self._publish_queue_depth(alarm, at)
            value = self._value(alarm, at)
            if value is None:
                breached = alarm.get("TreatMissingData") == "breaching"
            else:
                breached = COMPARE[alarm["ComparisonOperator"]](value, alarm["Threshold"])
            state = "ALARM" if breached else "OK"
            if state != self.states[name]:
                made.append(self._change(alarm, state, value, at))
        self.changes += made
        return made

    def _publish_queue_depth(self, alarm: dict, at: datetime.datetime) -> None:
        if alarm["MetricName"] not in QUEUE_DEPTH:
            raise ValueError(f"{alarm['AlarmName']}: SQS metric {alarm['MetricName']} is not published offline; add "
                             "it to offline/services/alarms.py QUEUE_DEPTH")
        (queue,) = [d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "QueueName"]
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attribute = QUEUE_DEPTH[alarm["MetricName"]]
        depth = int(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])["Attributes"][attribute])
        self.cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=[{
            "MetricName": alarm["MetricName"], "Dimensions": [{"Name": "QueueName", "Value": queue}],
            "Value": depth, "Unit": "Count", "Timestamp": at}])

    def _change(self, alarm: dict, state: str, value: float | None, at: datetime.datetime) -> dict:
        previous, self.states[alarm["AlarmName"]] = self.states[alarm["AlarmName"]], state
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm['AlarmName']}"
        reason = (f"Threshold Crossed: datapoint [{value}] was {'' if state == 'ALARM' else 'not '}"
                  f"{alarm['ComparisonOperator']} the threshold ({alarm['Threshold']})")
        when = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        actions: list[dict] = []
        if state == "ALARM":  # CloudWatch's SNS message for an alarm action
            message = {"AlarmName": alarm["AlarmName"], "AlarmDescription": alarm.get("AlarmDescription"),
                       "AWSAccountId": ACCOUNT, "NewStateValue": state, "NewStateReason": reason,
                       "StateChangeTime": when, "Region": REGION, "AlarmArn": arn, "OldStateValue": previous,
                       "Trigger": {k: alarm.get(k) for k in ("MetricName", "Namespace", "Statistic", "Period",
                                                             "Threshold", "ComparisonOperator")}}
            for topic in alarm.get("AlarmActions", []):
                refused = self.keys.publish_refusal("cloudwatch.amazonaws.com", topic, {"aws:SourceArn": arn})
                if refused:  # the alarm's history: "Failed to execute action <topic>. Received error: ..."
                    actions.append({"action": topic, "delivered": False, "error": refused})
                    continue
                self.sns.publish(TopicArn=topic, Subject=f'ALARM: "{alarm["AlarmName"]}" in {REGION}',
                                 Message=json.dumps(message))
                actions.append({"action": topic, "delivered": True})
        detail = {"alarmName": alarm["AlarmName"], "state": {"value": state, "reason": reason, "timestamp": when},
                  "previousState": {"value": previous}, "configuration": {"description": alarm.get("AlarmDescription")}}
        delivered = self.events.put("aws.cloudwatch", "CloudWatch Alarm State Change", detail, [arn])
        return {"alarm": alarm["AlarmName"], "state": state, "previous": previous, "value": value,
                "delivered": delivered, "actions": actions}
