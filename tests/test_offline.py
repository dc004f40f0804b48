"""The synthesized state machines, run end to end offline (moto's interpreter, real handlers, local jobs)."""
from __future__ import annotations

import json

import pytest

from offline.cloud.account import LocalCloud
from offline.cli.evaluate import evaluate
from stacks.app.kit import WORKFLOWS

TT, PT = "TrainAndTransform", "PreprocessAndTrain"


def run(cloud: LocalCloud, stack: str, name: str, execution_input: dict | None = None) -> dict:
    arn = cloud.start(stack, execution_input or {"rows": 1000, "seed": 3}, name)
    described = cloud.wait([arn])[arn]
    described["history"] = cloud.history(arn)
    return described


def task_events(described: dict, state: str) -> list[str]:
    """Event types between entering and leaving one state."""
    types, inside = [], False
    for event in described["history"]:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        if event["type"].endswith("StateEntered") and details.get("name") == state:
            inside = True
        elif inside and event["type"].endswith("StateExited"):
            break
        elif inside:
            types.append(event["type"])
    return types


def test_both_workflows_succeed_and_predict_well(cloud):
    arns = {stack: cloud.start(stack, {"seed": 11}, f"both-{stack}") for stack in (TT, PT)}
    ended = cloud.wait(list(arns.values()))
    for stack, arn in arns.items():
        assert ended[arn]["status"] == "SUCCEEDED", ended[arn].get("cause")
        output = json.loads(ended[arn]["output"])
        quality = evaluate(cloud, output)
        assert quality["test_rows"] == 1000 and quality["accuracy"] > 0.9, (stack, quality)
        assert output["run_prefix"] == f"runs/both-{stack}/"
    pt = json.loads(ended[arns[PT]]["output"])
    preprocessing = json.loads(cloud.read(pt["preprocessing"]))
    assert preprocessing["fitted_on"] == "train" and preprocessing["numeric"]["y"]["std"] > 1000


def test_every_workflow_runs_offline_with_its_sample_input(cloud, workflow_id):
    spec = WORKFLOWS[workflow_id].spec
    if cloud.workflows[workflow_id].starts_on_model_approval:
        # Its sample: a version the workflow it reads from registers, approved as a person would.
        built = run(cloud, spec.reads_from[0], f"sample-for-{workflow_id.lower()}",
                    dict(WORKFLOWS[spec.reads_from[0]].spec.sample_input))
        (delivery,) = cloud.approve(json.loads(built["output"])["model_package_arn"])
        described, name = cloud.wait([delivery["result"]])[delivery["result"]], delivery["result"].rsplit(":", 1)[1]
    else:
        name = f"sample-{workflow_id.lower()}"
        described = run(cloud, workflow_id, name, dict(spec.sample_input) or None)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["run_prefix"] == f"runs/{name}/"
    if "predictions" in output:
        assert evaluate(cloud, output)["accuracy"] > 0.9


def test_training_reads_this_runs_processed_data(cloud):
    described = run(cloud, PT, "processed-lineage")
    output = json.loads(described["output"])
    prefix = f"s3://{output['processed_data'].removeprefix('s3://').split('/')[0]}/runs/processed-lineage/processed/"
    reads = [uri for job, kind, uri in cloud.sagemaker.s3_access if job == output["training_job"] and kind == "read"]
    assert reads and all(uri.startswith(prefix) for uri in reads)
    assert {uri.removeprefix(prefix).split("/")[0] for uri in reads} == {"train", "validation"}


@pytest.mark.parametrize(("operation", "code", "state", "error"), [
    ("CreateModel", "ThrottlingException", "SaveModel", "SageMaker.AmazonSageMakerException"),
    ("CreateTrainingJob", "ResourceLimitExceeded", "TrainModel", "SageMaker.ResourceLimitExceededException"),
], ids=["throttled-model", "job-quota"])
def test_errors_before_anything_exists_are_retried(cloud, operation, code, state, error):
    cloud.sagemaker.inject_error(operation, code, "Rate exceeded or limit reached")
    described = run(cloud, TT, f"retried-{code}")
    assert described["status"] == "SUCCEEDED"
    events = task_events(described, state)
    assert events.count("TaskScheduled") == 2 and events.count("TaskSucceeded") == 1
    failed = next(e for e in described["history"] if e["type"] == "TaskFailed")
    assert failed["taskFailedEventDetails"]["error"] == error
    assert code in failed["taskFailedEventDetails"]["cause"]


def scheduled_job_names(described: dict, state: str) -> list[str]:
    scheduled = [e["taskScheduledEventDetails"]["parameters"] for e in described["history"]
                 if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"].startswith(state)]
    return [value for p in scheduled for key, value in json.loads(p).items() if key.endswith("JobName")]


def test_job_created_then_task_failing_is_not_retried_and_the_job_is_stopped(cloud):
    """The create succeeds, then the task fails (here: the status check is denied): no second job, none left running."""
    cloud.sagemaker.hang_next_job("TrainingJob")  # still running when the task gives up
    cloud.sagemaker.inject_error("DescribeTrainingJob", "AccessDeniedException", "not authorized: sagemaker:ListTags")
    described = run(cloud, TT, "fails-after-create")
    assert described["status"] == "FAILED" and described["error"] == "TrainAndTransformFailed"
    assert task_events(described, "TrainModel").count("TaskScheduled") == 1
    (job,) = [n for n in scheduled_job_names(described, "createTrainingJob") if n in cloud.sagemaker.jobs["TrainingJob"]]
    assert cloud.sagemaker.jobs["TrainingJob"][job]["TrainingJobStatus"] == "Stopped"
    assert cloud.sagemaker.in_progress() == []
    (delivery,) = [d for d in cloud.events.delivered if d["event"]["detail"].get("name") == "fails-after-create"]
    assert delivery["result"]["stopped"] == [job]


def test_transform_job_hanging_past_the_task_timeout_is_stopped(synthesized):
    with LocalCloud(synthesized["default"].outdir) as local:
        workflow = local.workflows[TT]
        definition = json.loads(workflow.definition)
        definition["States"]["BatchTransform"]["TimeoutSeconds"] = 2  # the deployed cap is max_job_runtime_minutes
        local.sfn.update_state_machine(stateMachineArn=local.machines[TT], definition=json.dumps(definition))
        local.sagemaker.hang_next_job("TransformJob")
        described = run(local, TT, "hangs")
        assert described["status"] == "FAILED", described.get("cause")
        timed_out = [e for e in described["history"] if e["type"] == "TaskTimedOut"]
        assert timed_out and timed_out[0]["taskTimedOutEventDetails"]["error"] == "States.Timeout"
        (job,) = local.sagemaker.jobs["TransformJob"]
        assert local.sagemaker.jobs["TransformJob"][job]["TransformJobStatus"] == "Stopped"
        assert local.sagemaker.in_progress() == []


def test_failed_training_ends_in_the_named_failure_and_leaves_later_runs_alone(cloud):
    cloud.sagemaker.fail_next_job("TrainingJob", "AlgorithmError: simulated out of memory")
    failed = run(cloud, TT, "fails")
    assert failed["status"] == "FAILED"
    assert failed["error"] == "TrainAndTransformFailed"
    job = json.loads(failed["cause"])  # the failed job's description, as Step Functions reports it
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"] == "AlgorithmError: simulated out of memory"
    assert "SaveModel" not in json.dumps(failed["history"], default=str)

    later = run(cloud, TT, "after-failure")
    assert later["status"] == "SUCCEEDED"
    bucket = cloud.workflows[TT].data_bucket
    assert all(key.startswith("runs/after-failure/") for key in cloud.keys(bucket, "runs/after-failure"))
    assert not [key for key in cloud.keys(bucket, "runs/fails/") if "/model/" in key or "/predictions/" in key]


def test_concurrent_executions_never_touch_each_others_objects(cloud):
    names = ["parallel-a", "parallel-b"]
    arns = [cloud.start(TT, {"rows": 1000, "seed": i}, name) for i, name in enumerate(names)]
    ended = cloud.wait(arns)
    bucket = cloud.workflows[TT].data_bucket
    for arn, name in zip(arns, names):
        failures = [e for e in cloud.history(arn) if e["type"].endswith("Failed")]
        assert ended[arn]["status"] == "SUCCEEDED", json.dumps(failures, default=str)
        output = json.loads(ended[arn]["output"])
        jobs = {output["training_job"], output["transform_job"]}
        touched = [uri for job, _, uri in cloud.sagemaker.s3_access if job in jobs]
        assert touched and all(uri.startswith(f"s3://{bucket}/runs/{name}/") for uri in touched)
        keys = cloud.keys(bucket, f"runs/{name}/")
        assert {"input/train/train.csv", "predictions/test.csv.out"} <= {k.split("/", 2)[2] for k in keys}
    a, b = (set(cloud.keys(bucket, f"runs/{name}/")) for name in names)
    assert not a & b


@pytest.mark.parametrize("name", ["with_underscore.and.dots", "Übung-ñandú-日本", "n" * 80])
def test_execution_names_sagemaker_would_reject_still_run(cloud, name):
    described = run(cloud, TT, name)
    failures = [e for e in described["history"] if e["type"].endswith("Failed")]
    assert described["status"] == "SUCCEEDED", json.dumps(failures, default=str)
    output = json.loads(described["output"])
    assert output["run_prefix"] == f"runs/{name}/"
    assert all(len(output[key]) <= 63 for key in ("training_job", "model_name", "transform_job"))


@pytest.mark.parametrize(("execution_input", "message"), [
    ({"hyperparameters": {"num_round": "many"}}, "hyperparameters.num_round must be a whole number"),
    ({"training_instance_type": "ml.p4d.24xlarge"}, "training_instance_type must be one of"),
    ({"rows": -5}, "rows must be a whole number from 100"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_bad_input_fails_fast_before_any_job(cloud, execution_input, message, request):
    calls, name = len(cloud.sagemaker.calls), f"bad-{request.node.callspec.id}"
    described = run(cloud, PT, name, execution_input)
    assert described["status"] == "FAILED" and described["error"] == "InvalidExecutionInput"
    assert message in described["cause"]
    assert len(cloud.sagemaker.calls) == calls
    assert cloud.keys(cloud.workflows[PT].data_bucket, f"runs/{name}/") == []
