"""A local account: moto's S3 and Step Functions, the local Lambda and SageMaker, and the workflows."""
from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Callable, Mapping

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from offline.services import behaviours as chosen_behaviours
from offline.cloud import sfn_distributed_map, sfn_sagemaker
from offline.iam import iam
from offline.services.alarms import LocalAlarms
from offline.sources.assembly import ACCOUNT, REGION, LocalWorkflow, load_workflows, queue_url, synthesized_stacks
from offline.services.event_bus import LocalEventBus
from offline.cloud.integrations import check_images, check_supported
from offline.services.lambda_service import LocalLambda
from offline.runtimes.s3_objects import list_keys, split_s3
from offline.services.sagemaker_service import LocalSageMaker
from offline.services.server import LocalEndpoints
from offline.services.service_keys import ServiceKeys

ENVIRONMENT = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
               "AWS_SESSION_TOKEN": "local"}
HISTORY_SECONDS = 0.5  # how often a waited-on execution's progress is read while it runs


class LocalCloud:
    """Use as a context manager; everything it creates lives in this process and ends with it."""

    def __init__(self, assembly: Path | str, retry_time_scale: float = 0.0, stage: str | None = None,
                 behaviours: Mapping[str, str] | None = None) -> None:
        """`behaviours`: row of stacks/aws_behaviours.py -> the alternative this account answers with."""
        assembly = Path(assembly)
        self.workflows: dict[str, LocalWorkflow] = load_workflows(assembly, stage)
        stacks = synthesized_stacks(assembly, stage)  # read once: IAM and the service keys both need them
        self.iam = iam.LocalIam.from_stacks(stacks)
        self.service_keys = ServiceKeys.from_stacks(stacks)
        self.behaviours = dict(behaviours or {})
        self.retry_time_scale = retry_time_scale
        self.machines: dict[str, str] = {}

    def __enter__(self) -> "LocalCloud":
        self._saved_environment = dict(os.environ)
        os.environ.update(ENVIRONMENT)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        chosen_behaviours.choose(self.behaviours)
        sfn_sagemaker.install(retry_time_scale=self.retry_time_scale)
        sfn_distributed_map.install()
        iam.install()  # before any client exists: every client authorizes the calls of whoever acts
        iam.register(self.iam)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.lambda_ = LocalLambda({arn: f for w in self.workflows.values() for arn, f in w.functions.items()},
                                   self.iam)
        self.sagemaker = LocalSageMaker(self.iam)
        self.events = LocalEventBus([rule for w in self.workflows.values() for rule in w.rules], self.lambda_,
                                    self.sfn, self.iam)
        self.alarms = LocalAlarms([alarm for w in self.workflows.values() for alarm in w.alarms], self.cloudwatch,
                                  self.sns, self.events, self.service_keys, self.sqs)
        self.announced: set[str] = set()
        self.sequencer = 0
        self.endpoints = LocalEndpoints(self.lambda_, self.sagemaker, self.sfn)
        # Only the interpreter's Lambda and SageMaker clients go to the loopback endpoints; S3 stays moto's.
        for service in ("LAMBDA", "SAGEMAKER", "SAGEMAKER_RUNTIME"):
            os.environ[f"AWS_ENDPOINT_URL_{service}"] = self.endpoints.url
        self.sagemaker.on_model_package_change = self._announce_model_package
        for workflow in self.workflows.values():
            self._create_bucket(workflow.data_bucket)
            for (bucket, key), path in workflow.file_assets.items():
                self._create_bucket(bucket)
                self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            for topic in workflow.topics:
                self.sns.create_topic(Name=topic)
            for queue in workflow.queues:
                self.sqs.create_queue(QueueName=queue)
            for group in workflow.model_package_groups:
                self.sagemaker.handle("CreateModelPackageGroup", {"ModelPackageGroupName": group})
            for schedule in workflow.schedules:  # moto's EventBridge Scheduler keeps them; nothing fires on time
                self._put_schedule(schedule)
            self.machines[workflow.stack] = self.sfn.create_state_machine(
                name=workflow.state_machine_name, definition=workflow.definition,
                roleArn=workflow.role_arn)["stateMachineArn"]
        return self

    def choose(self, behaviours: Mapping[str, str]) -> None:
        """From now on, answer these rows of stacks/aws_behaviours.py with these alternatives (the others as
        the table says), as a different AWS would."""
        self.behaviours = dict(behaviours)
        chosen_behaviours.choose(self.behaviours)

    def cli_environment(self) -> dict[str, str]:
        """What a shell needs for its AWS CLI commands to reach this account: its Step Functions and STS calls go
        to the loopback endpoint, which answers them from this account (state machines, assumed roles)."""
        return {**ENVIRONMENT, "AWS_REGION": REGION, "AWS_ENDPOINT_URL_SFN": self.endpoints.url,
                "AWS_ENDPOINT_URL_STS": self.endpoints.url, "AWS_EC2_METADATA_DISABLED": "true"}

    def __exit__(self, *exc) -> None:
        self.endpoints.shutdown()
        self.endpoints.server_close()
        iam.unregister(self.iam)
        chosen_behaviours.reset()
        self._mock.stop()
        os.environ.clear()
        os.environ.update(self._saved_environment)

    def _put_schedule(self, schedule: dict) -> None:
        """As CloudFormation would: the schedule with the template's properties (another local account open in
        this process may have made it already: moto's state is per process)."""
        request = {k: schedule[k] for k in ("Name", "ScheduleExpression", "State", "FlexibleTimeWindow", "Target")}
        try:
            self.scheduler.create_schedule(**request)
        except self.scheduler.exceptions.ConflictException:
            self.scheduler.update_schedule(**request)

    def fire_schedule(self, name: str, at: datetime.datetime | None = None) -> dict:
        """What EventBridge Scheduler does when a schedule comes due (nothing fires on time offline): start its
        target as its role with its input (<aws.scheduler.scheduled-time> filled in, ISO 8601 UTC), retried up to
        its RetryPolicy's MaximumRetryAttempts (here without waiting); a start that still fails goes, as the same
        role, to its dead-letter queue (Scheduler user guide, "Configuring a schedule's dead-letter queue": a JSON
        payload with the invocation's details and the target's answer; the kit reads only that one arrived)."""
        (schedule,) = [s for w in self.workflows.values() for s in w.schedules if s["Name"] == name]
        target, at = schedule["Target"], at or datetime.datetime.now(datetime.UTC)
        run_input = target.get("Input", "{}").replace("<aws.scheduler.scheduled-time>",
                                                      at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        attempts = 1 + target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185)
        for _ in range(attempts):
            try:
                with self.iam.acting_as(target["RoleArn"], session=name[:64]):
                    return {"started": self.sfn.start_execution(stateMachineArn=target["Arn"],
                                                                input=run_input)["executionArn"]}
            except ClientError as error:
                failure = error.response["Error"]
        queue = target.get("DeadLetterConfig", {}).get("Arn")
        if queue:
            event = {"scheduleArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}",
                     "targetArn": target["Arn"], "input": run_input, "retryAttempts": attempts - 1,
                     "errorCode": failure.get("Code"), "errorMessage": failure.get("Message")}
            with self.iam.acting_as(target["RoleArn"], session=name[:64]):
                self.sqs.send_message(QueueUrl=queue_url(queue.rsplit(":", 1)[1]), MessageBody=json.dumps(event))
        return {"gave_up": failure, "dead_letter_queue": queue}

    def queued(self, queue: str) -> list[dict]:
        """The messages waiting in one of the stacks' queues, read as an operator would (left in the queue)."""
        answer = self.sqs.receive_message(QueueUrl=queue_url(queue), MaxNumberOfMessages=10,
                                          VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def _create_bucket(self, bucket: str) -> None:
        if bucket not in {b["Name"] for b in self.s3.list_buckets()["Buckets"]}:
            self.s3.create_bucket(Bucket=bucket)

    def check(self, stack: str) -> None:
        """UnsupportedIntegration, in one line, for a workflow this account cannot run as AWS would."""
        check_supported(stack, self.workflows[stack].definition)
        check_images(stack, self.workflows[stack].definition)

    def start(self, stack: str, execution_input: dict | None = None, name: str | None = None) -> str:
        self.check(stack)
        name = name or f"local-{stack.lower()}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
        return self.sfn.start_execution(stateMachineArn=self.machines[stack], name=name,
                                        input=json.dumps(execution_input or {}))["executionArn"]

    def history(self, execution_arn: str) -> list[dict]:
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        return [event for page in pages for event in page["events"]]

    def wait(self, execution_arns: list[str], on_event: Callable[[str, dict], None] | None = None,
             timeout: float = 600) -> dict[str, dict]:
        """Poll until every execution ends, calling on_event(arn, event) for each new history event. moto answers
        GetExecutionHistory with the whole history every time, so a running execution's is read at most every
        HISTORY_SECONDS (and once more at its end), and only for on_event."""
        seen, ended, deadline = dict.fromkeys(execution_arns, 0), {}, time.monotonic() + timeout
        history_due = 0.0
        while len(ended) < len(execution_arns):
            read_history = on_event is not None and time.monotonic() >= history_due
            for arn in execution_arns:
                if arn in ended:
                    continue
                described = self.sfn.describe_execution(executionArn=arn)  # before history: no event missed
                finished = described["status"] != "RUNNING"
                if on_event and (read_history or finished):
                    events = self.history(arn)
                    for event in events[seen[arn]:]:
                        on_event(arn, event)
                    seen[arn] = len(events)
                if finished:
                    ended[arn] = described
                    self._announce_end(described)
            if read_history:
                history_due = time.monotonic() + HISTORY_SECONDS
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions still running after {timeout} s")
            time.sleep(0.05)
        return ended

    def _announce_end(self, described: dict) -> None:
        """Step Functions' status-change event for an execution that ended, once, on the local bus."""
        if described["executionArn"] in self.announced:
            return
        self.announced.add(described["executionArn"])
        millis = lambda moment: int(moment.timestamp() * 1000) if moment else None  # noqa: E731
        detail = {"executionArn": described["executionArn"], "stateMachineArn": described["stateMachineArn"],
                  "name": described["executionArn"].rsplit(":", 1)[1], "status": described["status"],
                  "startDate": millis(described.get("startDate")), "stopDate": millis(described.get("stopDate")),
                  "input": described.get("input"), "output": described.get("output"),
                  "error": described.get("error"), "cause": described.get("cause")}
        self.events.put("aws.states", "Step Functions Execution Status Change", detail, [described["executionArn"]])
        # Step Functions' execution metrics (stacks/aws_behaviours.py, execution-metrics), for the run alarms.
        metric = {"FAILED": "ExecutionsFailed", "TIMED_OUT": "ExecutionsTimedOut", "ABORTED": "ExecutionsAborted",
                  "SUCCEEDED": "ExecutionsSucceeded"}.get(described["status"])
        if metric:
            self.cloudwatch.put_metric_data(Namespace="AWS/States", MetricData=[{
                "MetricName": metric, "Value": 1, "Unit": "Count", "Timestamp": described["stopDate"],
                "Dimensions": [{"Name": "StateMachineArn", "Value": described["stateMachineArn"]}]}])

    def _announce_model_package(self, description: dict) -> None:
        """SageMaker's event for a registered version or a changed approval, on the local bus: the version's
        description, its times in epoch milliseconds (as in AWS's published sample events)."""
        detail = {key: round(value * 1000) if key.endswith("Time") else value for key, value in description.items()}
        self.events.put("aws.sagemaker", "SageMaker Model Package State Change", detail,
                        [description["ModelPackageArn"]])

    def approve(self, model_package_arn: str, status: str = "Approved") -> list[dict]:
        """What an operator does in the registry: approve (or reject) a version; returns what the rules started."""
        before = len(self.events.delivered)
        self.sagemaker.handle("UpdateModelPackage", {"ModelPackageArn": model_package_arn,
                                                     "ModelApprovalStatus": status})
        return self.events.delivered[before:]

    def upload(self, bucket: str, key: str, body: bytes) -> list[dict]:
        """Put an object, as a user would, and announce it as S3 does to EventBridge (for buckets that send
        their events there); returns what the rules' targets answered."""
        etag = self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        self.sequencer += 1  # S3's sequencer orders the changes of a key; it grows with each one
        return self.events.put("aws.s3", "Object Created", {
            "version": "0", "bucket": {"name": bucket}, "object": {
                "key": key, "size": len(body), "etag": etag, "sequencer": f"{self.sequencer:016X}"},
            "reason": "PutObject"}, [f"arn:aws:s3:::{bucket}"])

    def notifications(self) -> list[dict]:
        """Every message published to the local SNS topics: {"topic", "subject", "message"}."""
        from moto.sns.models import sns_backends

        topics = sns_backends[ACCOUNT][REGION].topics
        return [{"topic": arn, "subject": sent[2], "message": sent[1]}
                for arn, topic in topics.items() for sent in topic.sent_notifications]

    def read(self, uri: str) -> bytes:
        bucket, key = split_s3(uri)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return list_keys(self.s3, bucket, prefix)

    def save_s3(self, folder: Path) -> int:
        """Copy every object of every local bucket to folder/<bucket>/<key>; returns the count."""
        count = 0
        for bucket in (b["Name"] for b in self.s3.list_buckets()["Buckets"]):
            for key in self.keys(bucket):
                target = folder / bucket / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(f"s3://{bucket}/{key}"))
                count += 1
        return count
