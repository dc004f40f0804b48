"""Optimized integrations take only the request fields Step Functions lists for them: synthesis and the offline
CreateStateMachine refuse any other, from the one table in stacks/asl/integration_parameters.py."""
from __future__ import annotations

import json

import boto3
import pytest
from aws_cdk import App, Stack
from botocore.exceptions import ClientError
from moto import mock_aws

from offline.cloud import sfn_sagemaker
from stacks.asl.definition import WorkflowDefinitionError, integration_of, task_states
from stacks.asl.integration_parameters import ACCEPTED_PARAMETERS, api_of
from stacks.asl.integrations import SERVICE_INTEGRATIONS
from stacks.app.kit import WORKFLOWS
from stacks.asl.task_checks import unsupported_parameter
from stacks.constructs.workflow import workflow_policy_statements
from tests.conftest import WORKFLOW_IDS, expanded_definition

MODEL = {"ModelName.$": "States.Format('p-x-{}', States.UUID())", "EnableNetworkIsolation": True,
         "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r", "PrimaryContainer": {"Image": "i"}}


def create_model(**extra) -> dict:
    return {"StartAt": "Model", "States": {"Model": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel", "Parameters": {**MODEL, **extra},
        "End": True}}}


def derive(definition: dict) -> list:
    return workflow_policy_statements(definition, scope=Stack(App(), "Probe"), source="probe.asl.json",
                                      job_name_prefix="p-x", sagemaker_role_arn="arn:aws:iam::1:role/r",
                                      table=SERVICE_INTEGRATIONS)


def test_every_optimized_integration_of_the_table_has_its_accepted_fields():
    optimized = [key for key in SERVICE_INTEGRATIONS if not key.startswith("aws-sdk:")]
    assert optimized
    assert sorted(key for key in optimized if api_of(key) not in ACCEPTED_PARAMETERS) == []


def test_every_list_names_fields_of_its_api_once():
    for api, fields in ACCEPTED_PARAMETERS.items():
        assert len(set(fields)) == len(fields) and all(f[:1].isupper() for f in fields), api


@pytest.mark.parametrize("field", ["InferenceExecutionConfig", "InferenceExecutionConfig.$"])
def test_a_field_outside_the_list_stops_synthesis_with_the_fix(field):
    with pytest.raises(WorkflowDefinitionError) as error:
        derive(create_model(**{field: {"Mode": "Serial"} if not field.endswith(".$") else "$.config"}))
    assert str(error.value) == (
        "probe.asl.json: state 'Model' passes InferenceExecutionConfig to sagemaker:createModel, which Step "
        "Functions refuses when it creates the state machine (The field \"InferenceExecutionConfig\" is not "
        "supported by Step Functions); remove it, or call arn:${Partition}:states:::aws-sdk:sagemaker:createModel, "
        "which takes the API's whole request")


def test_the_listed_fields_and_the_aws_sdk_integration_pass():
    assert derive(create_model(Tags=[{"Key": "k", "Value": "v"}]))
    sdk = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sagemaker:createEndpointConfig",
           "Parameters": {"DataCaptureConfig": {}}}
    assert unsupported_parameter(sdk, "aws-sdk:sagemaker:createEndpointConfig") is None
    job = {"Parameters": {"TrainingJobName.$": "$.name", "DebugHookConfig": {}}}
    assert unsupported_parameter(job, "sagemaker:createTrainingJob.sync") == "DebugHookConfig"


@pytest.mark.parametrize("stack", WORKFLOW_IDS)
def test_every_task_of_every_workflow_passes_only_accepted_fields(stack):
    definition = expanded_definition(WORKFLOWS[stack])
    refused = [(name, unsupported_parameter(state, integration_of(name, state, source=stack)))
               for name, state in task_states(definition)]
    assert [(name, field) for name, field in refused if field] == []


@pytest.fixture
def local_sfn(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
                       "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn_sagemaker.install()
        yield boto3.client("stepfunctions", region_name="us-east-1")


def test_offline_create_state_machine_refuses_the_field_as_step_functions_does(local_sfn):
    role = "arn:aws:iam::123456789012:role/r"
    nested = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True,
                                               "Branches": [create_model(InferenceExecutionConfig={})]}}}
    with pytest.raises(ClientError) as error:
        local_sfn.create_state_machine(name="m", definition=json.dumps(nested), roleArn=role)
    assert error.value.response["Error"]["Code"] == "InvalidDefinition"
    assert error.value.response["Error"]["Message"] == (
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field \"InferenceExecutionConfig\" is "
        "not supported by Step Functions at /States/P/Branches/0/States/Model/Parameters'")
    arn = local_sfn.create_state_machine(name="m", definition=json.dumps(create_model()), roleArn=role)[
        "stateMachineArn"]
    with pytest.raises(ClientError, match="The field \"Mode\" is not supported by Step Functions"):
        local_sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(create_model(Mode="Serial")))
