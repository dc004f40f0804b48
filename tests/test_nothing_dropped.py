"""Nothing the kit gives up on is dropped silently: what a rule cannot deliver, what a schedule cannot start and a
cleanup that fails after Lambda's retries each wait in a queue whose alarm notifies the copy's topic, and offline
they land there as on AWS."""
from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest

from offline.cloud.account import LocalCloud
from tests.cfn import of_type, resource

FAILED = "Step Functions Execution Status Change"


@pytest.mark.parametrize("configuration", ["default", "kms"])
def test_every_queue_has_an_alarm_on_its_depth_that_notifies_a_topic(synthesized, configuration):
    for stack, template in synthesized[configuration].templates.items():
        queues = set(of_type(template, "AWS::SQS::Queue"))
        alarms = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
                  if a["Properties"].get("Namespace") == "AWS/SQS"]
        watched = {d["Value"]["Fn::GetAtt"][0] for a in alarms for d in a["Dimensions"] if d["Name"] == "QueueName"}
        assert queues == watched, stack
        for alarm in alarms:
            assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", alarm["AlarmName"]
            (action,) = alarm["AlarmActions"]
            assert "notification" in json.dumps(action).lower(), (stack, action)  # its own or the copy's topic


def test_each_schedule_keeps_its_failed_starts_and_its_role_may_write_them(synthesized):
    template = synthesized["retrain"].templates["BuildAndRegister"]
    monitor = synthesized["default"].templates["MonitorEndpoint"]
    for stack_template in (template, monitor):
        for schedule in of_type(stack_template, "AWS::Scheduler::Schedule").values():
            target = schedule["Properties"]["Target"]
            assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3}
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][1] == "Arn"


def _copy(synthesized, tmp_path: Path, configuration: str = "default") -> Path:
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized[configuration].outdir, copy)
    return copy


def _failed(machine: str, name: str = "gone") -> dict:
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}"
    return {"executionArn": arn.replace(":stateMachine:", ":execution:") + f":{name}", "stateMachineArn": arn,
            "name": name, "status": "FAILED"}


@pytest.mark.slow  # each runs a local account (seconds); the template checks above stay in the quick loop
@pytest.mark.parametrize("configuration", ["default", "kms"])
def test_a_cleanup_that_fails_every_attempt_lands_in_its_queue_and_its_alarm_names_the_endpoint(
        synthesized, configuration):
    """DeployApproved's cleanup is told of a failed run whose history it cannot read: Lambda runs it three times
    (two retries), sends its record, with the error, to the GaveUp queue as the function's role (under kms, with
    the stack's key through SQS), and the queue's alarm tells the copy's topic which endpoint may still bill."""
    failed = _failed("mlkit-da")
    with LocalCloud(synthesized[configuration].outdir) as cloud:
        (delivery,) = cloud.events.put("aws.states", FAILED, failed, [failed["executionArn"]])
        cleanup = [name for name, _ in cloud.lambda_.invocations if "stoprunjobs" in name]
        assert len(cleanup) == 3  # the first attempt and Lambda's two retries
        record = delivery["result"]["gave_up"]
        assert record["requestContext"]["condition"] == "RetriesExhausted" and record["requestPayload"]["detail"] == failed
        assert "ExecutionDoesNotExist" in record["responsePayload"]["errorMessage"]
        queue = delivery["result"]["destination"].rsplit(":", 1)[1]
        (kept,) = cloud.queued(queue)
        assert kept["responsePayload"] == record["responsePayload"]
        changes = cloud.alarms.evaluate(datetime.datetime.now(datetime.UTC))
        assert [c["alarm"] for c in changes if c["state"] == "ALARM"] == ["mlkit-da-cleanup-gave-up"]
        (sent,) = [n for n in cloud.notifications() if "mlkit-da-cleanup-gave-up" in n["subject"]]
        assert "the endpoint mlkit-da-endpoint it started may still be running and billing" in sent["message"]
        assert not [d for d in cloud.iam.denials() if d.action.startswith(("sqs:", "kms:"))]


def test_an_endpoint_the_cleanup_cannot_delete_is_named_in_the_error_it_keeps():
    from tests.conftest import load_lambda_module

    handler = load_lambda_module("stop_run_jobs", "handler")

    class Refusing:
        def describe_endpoint(self, EndpointName):
            return {"EndpointConfigName": "cfg-1", "EndpointStatus": "InService"}

        def delete_endpoint(self, EndpointName):
            raise RuntimeError("AccessDenied: not authorized to perform sagemaker:DeleteEndpoint")

    with pytest.raises(handler.EndpointLeftRunning, match=r"endpoint mlkit-da-endpoint \(config cfg-1\), created by "
                                                          r"arn:x, may still be running and billing: AccessDenied"):
        handler._deleted(Refusing(), "mlkit-da-endpoint", "cfg-1", lambda: 600, "arn:x")


@pytest.mark.slow
def test_a_schedule_starts_its_run_with_the_time_it_came_due(synthesized):
    with LocalCloud(synthesized["default"].outdir) as cloud:
        (schedule,) = cloud.workflows["MonitorEndpoint"].schedules
        at = datetime.datetime(2026, 12, 7, 10, 5, tzinfo=datetime.UTC)
        started = cloud.fire_schedule(schedule["Name"], at)["started"]
        described = cloud.wait([started])[started]  # nothing deployed yet: the run says so and ends
        assert json.loads(described["input"]) == {"window_end": "2026-12-07T10:05:00Z"}


@pytest.mark.slow
def test_a_schedule_whose_start_is_refused_lands_in_its_dead_letter_queue_and_notifies(synthesized, tmp_path):
    """The monitor's schedule role loses states:StartExecution: Scheduler tries four times (three retries), then
    puts the dead-letter event in the schedule's queue as that role, and the queue's alarm notifies."""
    copy = _copy(synthesized, tmp_path)
    path = copy / "MonitorEndpoint.template.json"
    template = json.loads(path.read_text())
    policy = resource(template, "StartedByScheduler/DefaultPolicy/Resource")["Properties"]["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != "states:StartExecution"]
    path.write_text(json.dumps(template))
    with LocalCloud(copy) as cloud:
        (schedule,) = cloud.workflows["MonitorEndpoint"].schedules
        outcome = cloud.fire_schedule(schedule["Name"])
        assert outcome["gave_up"]["Code"] == "AccessDeniedException"
        (event,) = cloud.queued(outcome["dead_letter_queue"].rsplit(":", 1)[1])
        assert event["retryAttempts"] == 3 and "states:StartExecution" in event["errorMessage"]
        changes = cloud.alarms.evaluate(datetime.datetime.now(datetime.UTC))
        assert [c["alarm"] for c in changes if c["state"] == "ALARM"] == ["mlkit-mon-missed"]
        (sent,) = [n for n in cloud.notifications() if "mlkit-mon-missed" in n["subject"]]
        assert "could not start mlkit-mon after 3 retries" in sent["message"]
