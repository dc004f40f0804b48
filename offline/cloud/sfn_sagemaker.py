"""Teaches moto's Step Functions interpreter the SageMaker integrations, as AWS presents them.

moto treats SageMaker as unsupported: `.sync` tasks stop the execution, and any SageMaker error becomes
States.Runtime, which no Retry can match. This integration keeps the ASL untouched and gives each task
what Step Functions gives it on AWS: the Create* response (request-response), or the finished job's
full Describe* output (`.sync`); a failed or stopped job fails the task with States.TaskFailed and the
job description as cause; API errors become `SageMaker.<exception>` names that Retry can match.
"""
from __future__ import annotations

import datetime
import json
import threading
import time
import types

from botocore import xform_name
from botocore.exceptions import ClientError
from moto.core.exceptions import AWSError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as callback)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk as aws_sdk
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from offline.services import behaviours
from offline.services.sagemaker_service import JOB_KINDS
from stacks.asl.definition import INTEGRATION_RESOURCE
from stacks.asl.integration_parameters import ACCEPTED_PARAMETERS, NOT_SUPPORTED, api_of
from stacks.asl.task_checks import unsupported_parameter

# .sync task (createTrainingJob, ...) -> job noun, for every job the kit's integrations wait for.
SYNC_JOBS = {f"create{noun}": noun for noun in JOB_KINDS}
# SageMaker error codes with a class of their own; any other is named by the row optimized-sagemaker-error-name.
ERROR_NAMES = {"ResourceLimitExceeded": "SageMaker.ResourceLimitExceededException"}


class JobFailed(Exception):
    """A `.sync` job ended Failed or Stopped; the message is its description as JSON."""


def _json_ready(value):
    """Timestamps as Step Functions shows them in SageMaker task output: epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


class StateTaskServiceSageMaker(callback.StateTaskServiceCallback):
    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.WaitForTaskToken, ResourceCondition.Sync})

    def _validate_service_integration_is_supported(self) -> None:
        pass  # every SageMaker action the workflows use is served by the local SageMaker

    def _client(self, runtime_part, credentials):
        return boto_client_for(service="sagemaker", region=runtime_part.region, state_credentials=credentials)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        client = self._client(resource_runtime_part, state_credentials)
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        env.stack.append(_json_ready(response))

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        noun = SYNC_JOBS[self.resource.api_action]
        name_key, status_key = f"{noun}Name", f"{noun}Status"
        describe = getattr(self._client(resource_runtime_part, state_credentials), f"describe_{xform_name(noun)}")
        name = normalised_parameters[name_key]

        def resolve():
            job = _json_ready(describe(**{name_key: name}))
            if noun == "ProcessingJob" and behaviours.answer("processing-sync-exit-message") == "absent":
                job.pop("ExitMessage", None)
            if job[status_key] == "Completed":
                return job
            if job[status_key] in ("Failed", "Stopped"):
                if behaviours.answer("sync-failure-cause-json") == "text":
                    raise JobFailed(f"{noun} {name} {job[status_key]}: {job.get('FailureReason', '')}")
                raise JobFailed(json.dumps(job, separators=(",", ":")))
            return None  # still running: the interpreter polls again
        return resolve

    def _from_error(self, env, ex) -> FailureEvent:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            error = ERROR_NAMES.get(code) or behaviours.answer("optimized-sagemaker-error-name")
            error_name = CustomErrorName(error)
            cause = f"{ex.response['Error'].get('Message')} (Service: AmazonSageMaker; Error Code: {code})"
        elif isinstance(ex, JobFailed):
            error, cause = "States.TaskFailed", str(ex)
            error_name = StatesErrorName(StatesErrorNameType.StatesTaskFailed)
        else:
            return super()._from_error(env, ex)
        return FailureEvent(
            env=env, error_name=error_name, event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource=self._get_sfn_resource(),
                resourceType=self._get_sfn_resource_type())))


def _sdk_exception_name(norm_service_name: str, ex: Exception) -> str:
    """An aws-sdk task's error name: <Service>.<Exception> (stacks/aws_behaviours.py, aws-sdk-error-names); an
    error SageMaker's model has no class for (ValidationException) is named by describe-missing-endpoint-error."""
    if norm_service_name == "SageMaker" and type(ex).__name__ == "ClientError":
        return behaviours.answer("describe-missing-endpoint-error")
    return _original_exception_name(norm_service_name, ex)


def _branch_error_name(error_name: str | None):
    if error_name and error_name.startswith("States."):
        return StatesErrorName.from_name(error_name)
    return CustomErrorName(error_name)


_installed = threading.Lock()
_original_factory = state_task_factory.state_task_service_for
_original_validate = StepFunctionsParserBackend._validate_definition
_original_exception_name = aws_sdk.StateTaskServiceAwsSdk._normalise_exception_name
_valid_definitions: set[str] = set()


def _tasks(states: dict, path: str):
    """(JSON pointer, state) for every Task, inside Parallel branches and Map processors too."""
    for name, state in states.get("States", {}).items():
        if not isinstance(state, dict):
            continue
        where = f"{path}/States/{name}"
        if state.get("Type") == "Task":
            yield where, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _tasks(branch, f"{where}/Branches/{index}")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _tasks(state[key], f"{where}/{key}")


def check_parameters(definition: str) -> None:
    """Step Functions refuses, at CreateStateMachine and UpdateStateMachine, an optimized Task whose Parameters
    hold a field it does not pass on; the fields are the ones synthesis checks (stacks/asl/integration_parameters.py).
    The error is InvalidDefinition (an error of both operations in botocore's stepfunctions model); its message
    puts Step Functions' words for the field (data science SDK issue 15) in the SCHEMA_VALIDATION_FAILED form
    public reports show for other refused fields (sam-goodwin/functionless issue 308, floci-io/floci issue 2735)."""
    try:
        parsed = json.loads(definition)
    except ValueError:
        return  # moto's own parse refuses it
    for where, state in _tasks(parsed, ""):
        match = INTEGRATION_RESOURCE.match(str(state.get("Resource", "")))
        key = match and match.group("integration")
        if not key or (not key.startswith("aws-sdk:") and api_of(key) not in ACCEPTED_PARAMETERS):
            continue  # a Lambda ARN, an activity, or an integration the kit does not use
        field = unsupported_parameter(state, key)
        if field:
            # moto's own InvalidDefinition reaches the client with an empty error code, so the code is given here.
            raise AWSError(f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: "
                           f"{NOT_SUPPORTED.format(field=field)} at {where}/Parameters'", "InvalidDefinition")


def _validate_once(definition: str) -> None:
    """moto parses a definition to validate it at CreateStateMachine (about 0.2 s for BuildAndRegister's) and
    again to run it; a definition that passed once passes again, so each local account in this process skips
    that first parse. A definition that failed is parsed (and refused) every time."""
    if definition not in _valid_definitions:
        check_parameters(definition)
        _original_validate(definition)
        _valid_definitions.add(definition)


def install(poll_seconds: float = 0.05, retry_time_scale: float = 0.0, wait_time_scale: float = 0.01) -> None:
    """Route `sagemaker` tasks here; poll jobs every poll_seconds; scale Retry waits (0: no waiting) and Wait
    states (a polling loop's 30 s become 0.3 s: time for the local fleet to change, without the real wait)."""
    with _installed:
        state_task_factory.state_task_service_for = (
            lambda service_name: StateTaskServiceSageMaker() if service_name == "sagemaker"
            else _original_factory(service_name))
        callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = poll_seconds
        # AWS SDK tasks name SageMaker's errors SageMaker.<ExceptionClass> (aws-sdk:sagemaker:...).
        aws_sdk._SERVICE_ERROR_NAMES.update({"sagemaker": "SageMaker", "s3": "S3"})
        aws_sdk.StateTaskServiceAwsSdk._normalise_exception_name = staticmethod(_sdk_exception_name)
        # A Parallel state re-raises its failed branch's error under the same name, as Step Functions does; moto
        # makes every such name a custom one, which a States.* name (States.TaskFailed of a failed job) cannot be.
        branches_decl.CustomErrorName = _branch_error_name
        retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(seconds * retry_time_scale))
        WaitFunction._wait_interval = lambda self, env, wait_seconds: time.sleep(wait_seconds * wait_time_scale)
        StepFunctionsParserBackend._validate_definition = staticmethod(_validate_once)
