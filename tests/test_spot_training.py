"""spot_training: every training job of every workflow (a tuning job's too) runs as managed spot training, with
a capacity wait and checkpoints in the run's folder; offline the jobs run and keep their checkpoints."""
from __future__ import annotations

import json

import pytest

from offline.cloud.account import LocalCloud
from offline.sources.request_validation import RequestRefused as SageMakerError, validate
from stacks.settings.config import ConfigError, KitConfig
from stacks.asl.definition import task_states
from tests.cfn import resource
from tests.conftest import TRAINING_WORKFLOW_IDS
from tests.test_resources import inline_definition

TRAINING = ("createTrainingJob", "createHyperParameterTuningJob")


def training_definitions(template: dict) -> list[dict]:
    """The training job definition of every training and tuning task of a workflow."""
    found = []
    for _, state in task_states(inline_definition(template)):
        if state["Resource"].split(":::sagemaker:")[-1].split(".")[0] in TRAINING:
            found.append(state["Parameters"].get("TrainingJobDefinition", state["Parameters"]))
    return found


@pytest.mark.parametrize("stack", TRAINING_WORKFLOW_IDS)
def test_every_training_job_runs_on_spot_with_a_wait_and_checkpoints(synthesized, stack):
    template = synthesized["spot"].templates[stack]
    definitions = training_definitions(template)
    assert definitions
    for definition in definitions:
        assert definition["EnableManagedSpotTraining"] is True
        assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
        assert definition["CheckpointConfig"] == {
            "S3Uri.$": "States.Format('s3://<token>/{}checkpoints/', $.settings.run_prefix)"}
    statements = resource(template, "SageMakerRole/Role/DefaultPolicy/Resource")["Properties"]["PolicyDocument"][
        "Statement"]
    for action in ("s3:GetObject", "s3:PutObject"):
        (granted,) = [s for s in statements if action in json.dumps(s["Action"])]
        assert "/runs/*/checkpoints/*" in json.dumps(granted["Resource"]), action


@pytest.mark.parametrize("stack", TRAINING_WORKFLOW_IDS)
def test_without_the_setting_no_training_job_asks_for_spot(templates, stack):
    for definition in training_definitions(templates[stack]):
        assert "EnableManagedSpotTraining" not in definition and "CheckpointConfig" not in definition
        assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_spot_needs_room_in_the_workflow_timeout():
    with pytest.raises(ConfigError, match=r"invalid setting workflow_timeout_minutes=200: expected at least 4 x "
                                          r"max_job_runtime_minutes \(240\) with spot_training"):
        KitConfig.from_context({"spot_training": "true", "workflow_timeout_minutes": "200"})


def test_offline_sagemaker_refuses_spot_without_a_long_enough_wait():
    request = {"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    with pytest.raises(SageMakerError, match="must be set and at least MaxRuntimeInSeconds"):
        validate("sagemaker", "CreateTrainingJob", {
            **request, "TrainingJobName": "a", "RoleArn": "arn:aws:iam::123456789012:role/r",
            "AlgorithmSpecification": {"TrainingInputMode": "File"}, "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}})


@pytest.mark.parametrize("stack", ["TrainAndTransform", "TuneAndTransform"])
def test_spot_workflows_run_offline_and_keep_checkpoints_in_the_run(synthesized, stack):
    with LocalCloud(synthesized["spot"].outdir) as cloud:
        arn = cloud.start(stack, {"rows": 500, "seed": 4}, "spot")
        described = cloud.wait([arn])[arn]
        assert described["status"] == "SUCCEEDED", described.get("cause")
        checkpoints = cloud.keys(cloud.workflows[stack].data_bucket, "runs/spot/checkpoints/")
        assert checkpoints and all("xgboost-checkpoint." in key for key in checkpoints)
