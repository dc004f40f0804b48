"""ASL handling: substitution, Task discovery, IAM derivation and job names valid for any execution."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from aws_cdk import App, Stack

from stacks.settings.config import NAME_PREFIX
from stacks.asl.definition import (PLACEHOLDER, WorkflowDefinitionError, expand, integration_of, load_definition,
                                   substitute, task_states)
from stacks.asl.integrations import SERVICE_INTEGRATIONS
from stacks.asl.shared_asl import SHARED_STATES, shared_asl
from stacks.asl.task_checks import name_length
from stacks.app.kit import WORKFLOWS
from stacks.constructs.workflow import workflow_policy_statements
from tests.conftest import EVERY_INTEGRATION, ROOT

DEFINITIONS = sorted((ROOT / "statemachines").glob("*.asl.json"))
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's rule for job and model names


def test_substitute_replaces_text_and_whole_numbers():
    node = {"a": "s3://${Bucket}/x", "b": ["${Seconds}"], "c": 3}
    assert substitute(node, {"Bucket": "b1", "Seconds": 60}, source="t") == {"a": "s3://b1/x", "b": [60], "c": 3}


def test_substitute_names_missing_placeholders():
    with pytest.raises(WorkflowDefinitionError, match=r"t.asl.json: no value for placeholder\(s\) Missing"):
        substitute({"a": "${Missing}"}, {"Other": "x"}, source="t.asl.json")


def test_numbers_cannot_be_spliced_into_text():
    with pytest.raises(WorkflowDefinitionError, match="must stand alone"):
        substitute({"a": "x${Seconds}"}, {"Seconds": 5}, source="t")


def test_task_states_include_parallel_and_map_states():
    definition = {"States": {
        "A": {"Type": "Task"},
        "P": {"Type": "Parallel", "Branches": [{"States": {"B": {"Type": "Task"}}}]},
        "M": {"Type": "Map", "ItemProcessor": {"States": {"C": {"Type": "Task"}, "D": {"Type": "Pass"}}}},
    }}
    assert [name for name, _ in task_states(definition)] == ["A", "B", "C"]


def derive(definition: dict) -> list:
    stack = Stack(App(), "Probe")
    return workflow_policy_statements(definition, scope=stack, source="probe.asl.json",
                                      job_name_prefix="p-x", sagemaker_role_arn="arn:aws:iam::1:role/r",
                                      table=SERVICE_INTEGRATIONS)


def test_integration_missing_from_the_table_stops_synthesis_with_what_to_add():
    definition = {"States": {"Notify": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage"}}}
    with pytest.raises(WorkflowDefinitionError) as error:
        derive(definition)
    assert str(error.value) == ("probe.asl.json: state 'Notify' uses integration 'sqs:sendMessage', which neither "
                                "the kit's table (stacks/asl/integrations.py) nor the workflow declares; declare it "
                                "in its WorkflowSpec integrations with the IAM actions and the resources it needs")


def test_non_integration_resources_are_rejected():
    with pytest.raises(WorkflowDefinitionError, match="expected a service integration"):
        derive({"States": {"X": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f"}}})


def test_dynamic_function_names_are_rejected():
    definition = {"States": {"X": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                   "Parameters": {"FunctionName.$": "$.fn"}}}}
    with pytest.raises(WorkflowDefinitionError, match="static 'FunctionName'"):
        derive(definition)


def test_sagemaker_tasks_without_isolation_stop_synthesis():
    definition = {"States": {"Process": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "Parameters": {"ProcessingJobName.$": "States.Format('p-x-{}', States.UUID())",
                       "NetworkConfig": {"EnableNetworkIsolation": True}}}}}
    with pytest.raises(WorkflowDefinitionError, match=r"state 'Process' must set "
                                                      r"NetworkConfig.EnableInterContainerTrafficEncryption to true"):
        derive(definition)


def test_sagemaker_names_without_the_prefix_stop_synthesis():
    definition = {"States": {"Train": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {"TrainingJobName.$": "$$.Execution.Name"}}}}
    with pytest.raises(WorkflowDefinitionError, match=r"state 'Train' must name what it creates with "
                                                      r"\"TrainingJobName.\$\""):
        derive(definition)


@pytest.mark.parametrize("error", ["SageMaker.AmazonSageMakerException", "States.ALL", "States.Timeout"])
def test_sync_jobs_retrying_errors_that_can_follow_the_create_stop_synthesis(error):
    definition = {"States": {"Train": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {"TrainingJobName.$": "States.Format('p-x-{}', States.UUID())", "EnableNetworkIsolation": True,
                       "EnableInterContainerTrafficEncryption": True},
        "Retry": [{"ErrorEquals": ["SageMaker.ResourceLimitExceededException", error]}]}}}
    with pytest.raises(WorkflowDefinitionError, match=re.escape(
            f"state 'Train' retries {error}, which can happen after its job was created, and a retry would start a "
            "second job; retry only SageMaker.ResourceLimitExceededException (\"Retry\": \"${SageMakerJobRetry}\")")):
        derive(definition)


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_task_takes_its_retry_policy_from_the_shared_table(path):
    for name, state in task_states(load_definition(path)):
        key = integration_of(name, state, source=path.name)
        expected = ("${LambdaRetry}" if key.startswith("lambda:") else
                    "${SageMakerJobRetry}" if key.endswith(".sync") else
                    "${SageMakerSdkRetry}" if key.startswith("aws-sdk:sagemaker:") else
                    "${SageMakerCallRetry}" if key.startswith("sagemaker:") else None)
        assert state.get("Retry") == expected, name


def test_substitute_inserts_shared_fragments_as_copies():
    policy = [{"ErrorEquals": ["E"], "MaxAttempts": 2}]
    result = substitute({"A": {"Retry": "${Policy}"}, "B": {"Retry": "${Policy}"}}, {"Policy": policy}, source="t")
    assert result == {"A": {"Retry": policy}, "B": {"Retry": policy}}
    assert result["A"]["Retry"] is not result["B"]["Retry"] is not policy


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_sagemaker_name_is_fresh_per_attempt_and_within_its_limit(path):
    created = [(name, state["Parameters"], EVERY_INTEGRATION[key])
               for name, state in task_states(load_definition(path))
               if EVERY_INTEGRATION[key := integration_of(name, state, source=path.name)].name_parameter]
    assert created
    longest = "a" * 12 + "-" + "s" * 6 + "-xx"  # the longest name_prefix, stage and a slug
    for name, parameters, integration in created:
        if not integration.fresh_name and integration.name_parameter in parameters:  # one name per stack
            static = parameters[integration.name_parameter]
            if PLACEHOLDER.fullmatch(static):  # the stack's value: checked at synthesis (task_checks.check_name)
                continue
            assert static.startswith("${JobNamePrefix}-"), name
            assert len(static.replace("${JobNamePrefix}", longest)) <= integration.name_max_length, name
            continue
        expression = parameters[f"{integration.name_parameter}.$"].replace("${JobNamePrefix}", longest)
        length, fresh = name_length(expression, longest)
        assert fresh and length <= integration.name_max_length, name


TUNING = "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync"
FIRST_GROUP = "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0)"
LAST_GROUP = "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 4)"


def tuning(name_expression: str) -> dict:
    return {"States": {"Tune": {"Type": "Task", "Resource": TUNING, "Parameters": {
        "HyperParameterTuningJobName.$": name_expression,
        "TrainingJobDefinition": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}}}}}


def test_a_name_that_can_exceed_the_api_limit_stops_synthesis_with_a_form_that_fits():
    with pytest.raises(WorkflowDefinitionError) as error:
        derive(tuning("States.Format('p-x-{}', States.UUID())"))
    assert str(error.value) == (
        "probe.asl.json: state 'Tune': \"HyperParameterTuningJobName.$\" can be 40 characters long, over the 32 "
        f"SageMaker allows; use \"States.Format('${{JobNamePrefix}}-{{}}', {LAST_GROUP})\"")
    assert derive(tuning(f"States.Format('p-x-{{}}', {LAST_GROUP})"))  # 16 characters: fine


@pytest.mark.parametrize(("expression", "length"), [
    ("States.Format('p-x-{}', States.UUID())", 40),
    (f"States.Format('p-x-{{}}', {FIRST_GROUP})", 12),
    (f"States.Format('p-x-{{}}-{{}}', {FIRST_GROUP}, {LAST_GROUP})", 25),
])
def test_name_lengths_are_bounded_from_the_expression(expression, length):
    assert name_length(expression, "p-x") == (length, True)


@pytest.mark.parametrize("expression", [
    "$$.Execution.Name",  # any execution name: may be invalid or too long for SageMaker
    "States.Format('p-x-{}', $$.Execution.Name)",
    "States.Format('other-{}', States.UUID())",  # outside the prefix the role may create
    "States.Format('p-x_{}', States.UUID())",  # a character SageMaker refuses
    "States.Format('p-x-{}-{}', States.UUID())",  # a {} without its argument
])
def test_names_of_other_forms_are_not_accepted(expression):
    assert name_length(expression, "p-x") is None


def test_longest_possible_job_name_is_valid():
    longest_prefix = "a" + "b" * int(re.search(r"\{1,(\d+)\}", NAME_PREFIX.pattern).group(1))
    assert NAME_PREFIX.fullmatch(longest_prefix) and not NAME_PREFIX.fullmatch(longest_prefix + "c")
    for stack_class in WORKFLOWS.values():
        name = f"{longest_prefix}-{stack_class.spec.slug}-{uuid.uuid4()}"
        assert len(name) <= 63 and JOB_NAME.fullmatch(name), name


def test_shared_asl_expands_nested_placeholders_and_leaves_the_others():
    fragments = shared_asl("ProbeFailed")
    definition = {"States": {"Job": {"Type": "Task", "Catch": "${CatchAll}", "Parameters": {"B": "${DataBucket}"}},
                             "WorkflowFailed": "${WorkflowFailedState}"}}
    expanded = expand(definition, fragments)
    assert expanded["States"]["Job"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "WorkflowFailed"}]
    assert expanded["States"]["WorkflowFailed"] == {"Type": "Fail", "Error": "ProbeFailed",
                                                    "CausePath": "$.error.Cause"}
    assert expanded["States"]["Job"]["Parameters"] == {"B": "${DataBucket}"}
    assert all(state["Type"] != "Task" for state in SHARED_STATES.values())  # task discovery skips them


# States each of the kit's definitions writes out, the same job in each: only these fields are a workflow's own (its
# data, image, model, where it goes next); everything else (timeouts, retries, catches, encryption, resources, result
# shapes) must stay the same in every copy. A state whose copies are identical needs no entry; Summarize and
# ValidateInput describe each workflow's own run and input, so they are its own throughout.
OWN_FIELDS = {
    "SeedDataset": ("Next", "Parameters.Payload.dataset", "ResultPath", "ResultSelector"),
    "TrainModel": ("Comment", "Next", "Parameters.AlgorithmSpecification.TrainingImage", "Parameters.HyperParameters.$",
                   "Parameters.InputDataConfig", "Parameters.ResourceConfig.InstanceCount"),  # (.$ too: BuildAndRegister's plan)
    "SaveModel": ("Comment", "Next", "Parameters.Containers", "Parameters.PrimaryContainer"),
    "Summarize": ("",),
    "ValidateInput": ("",),
}


def _fields(value, path: str = "") -> dict[str, str]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _fields(item, f"{path}.{key}".lstrip(".")).items()}
    if isinstance(value, list) and value:
        return {k: v for index, item in enumerate(value) for k, v in _fields(item, f"{path}[{index}]").items()}
    return {path: json.dumps(value)}


def drift(copies: dict[str, dict], own: tuple[str, ...]) -> list[str]:
    """Fields, outside a state's own, on which its copies (definition -> state) differ."""
    def shared(state: dict) -> dict[str, str]:
        return {path: value for path, value in _fields(state).items()
                if not any(path == field or path.startswith((f"{field}.", f"{field}[")) or field == ""
                           for field in own)}
    fields = {definition: shared(state) for definition, state in copies.items()}
    names = sorted(set().union(*fields.values()))
    return [f"{name}: " + ", ".join(f"{d}={fields[d].get(name, 'absent')}" for d in sorted(fields))
            for name in names if len({fields[d].get(name) for d in fields}) > 1]


def test_states_written_out_in_several_definitions_differ_only_in_what_is_each_ones_own():
    by_name: dict[str, dict[str, dict]] = {}
    for path in sorted((ROOT / "statemachines").glob("*.asl.json")):
        for name, state in json.loads(path.read_text())["States"].items():
            by_name.setdefault(name, {})[path.name.removesuffix(".asl.json")] = state
    shared = {name: copies for name, copies in by_name.items() if len(copies) > 1}
    assert {"SeedDataset", "TrainModel", "SaveModel", "BatchTransform", "WorkflowFailed"} <= set(shared)
    for name, copies in shared.items():
        assert drift(copies, OWN_FIELDS.get(name, ())) == [], (
            f"{name} drifted between definitions: make the copies agree, or take a fragment of "
            "stacks/asl/job_states.py, or name the field in OWN_FIELDS when it is each workflow's own")
    assert set(OWN_FIELDS) <= set(shared)  # no entry for a state that is no longer shared


def test_the_drift_check_finds_a_copy_that_changed_a_shared_field():
    copies = {name: json.loads((ROOT / "statemachines" / f"{name}.asl.json").read_text())["States"]["TrainModel"]
              for name in ("train_and_transform", "preprocess_and_train")}
    copies["preprocess_and_train"]["Parameters"]["StoppingCondition"]["MaxRuntimeInSeconds"] = 60
    assert drift(copies, OWN_FIELDS["TrainModel"]) == [
        "Parameters.StoppingCondition.MaxRuntimeInSeconds: preprocess_and_train=60, "
        "train_and_transform=\"${MaxJobRuntimeSeconds}\""]
    copies["preprocess_and_train"]["Parameters"]["StoppingCondition"]["MaxRuntimeInSeconds"] = "${MaxJobRuntimeSeconds}"
    copies["preprocess_and_train"]["Comment"] = "anything"
    assert drift(copies, OWN_FIELDS["TrainModel"]) == []


def test_shared_job_states_are_written_once_and_taken_by_placeholder():
    """The batch transform several workflows run is stacks/asl/job_states.py's fragment: each ASL names it by
    placeholder (a copy written out again could drift), and every workflow that does gives its test data path."""
    from stacks.asl.job_states import BATCH_TRANSFORM

    takers = []
    for path in sorted((ROOT / "statemachines").glob("*.asl.json")):
        state = json.loads(path.read_text())["States"].get("BatchTransform")
        if state is not None:
            assert state == "${BatchTransformState}", f"{path.name} writes BatchTransform out; name the fragment"
            takers.append(path.name.removesuffix(".asl.json"))
    by_definition = {cls.spec.definition: cls for cls in WORKFLOWS.values()}
    assert len(takers) >= 2
    for definition in takers:
        fragments = by_definition[definition].spec.fragments
        assert fragments["BatchTransformState"] is BATCH_TRANSFORM and fragments["TestDataPath"].startswith(("$.", "States."))


def test_job_startups_in_a_row_follow_the_longest_path_and_count_a_loop_once():
    from stacks.asl.definition import job_startups_in_a_row

    job = lambda after: {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",  # noqa
                         **({"Next": after} if after else {"End": True})}
    definition = {"StartAt": "A", "States": {
        "A": job("Pick"),
        "Pick": {"Type": "Choice", "Choices": [{"Next": "Both"}], "Default": "Done"},
        "Both": {"Type": "Parallel", "Next": "Again", "Branches": [
            {"StartAt": "B", "States": {"B": job("C"), "C": job(None)}},
            {"StartAt": "D", "States": {"D": job(None)}}]},
        "Again": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel", "Next": "A",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Cleanup"}]},
        "Cleanup": job("Done"),  # reached by a catch only: not the way a run goes on
        "Done": {"Type": "Succeed"}}}
    assert job_startups_in_a_row(definition) == 3  # A, then the longer branch (B, C); A again is the loop
