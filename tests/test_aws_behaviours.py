"""The AWS behaviours the kit relies on (stacks/aws_behaviours.py): each has a source, the emulator answers from the
table, and every behaviour no AWS page states is survived: the workflows that rely on it, run offline under each
alternative, end in a named outcome that someone is told of, never States.Runtime and never a hang."""
from __future__ import annotations

import datetime
import json
import shutil
import time

import pytest

from offline.services import behaviours
from offline.cloud.account import LocalCloud
from offline.services.sagemaker_service import SageMakerError
from stacks.aws_behaviours import BEHAVIOURS, unverified
from stacks.workflows.workflow_stack import WORKFLOWS
from tests.test_build_and_register import csv_text

BR, TT = "BuildAndRegister", "TrainAndTransform"


def test_every_row_names_its_source_what_relies_on_it_and_what_else_aws_might_do():
    assert len(BEHAVIOURS) >= 15
    for key, row in BEHAVIOURS.items():
        assert row.what and row.source, key
        assert set(row.relied_on_by) <= set(WORKFLOWS), key
        assert row.status in ("stated", "reported", "unverified"), key
        if row.status != "stated":
            assert row.alternatives and row.offline not in row.alternatives, key


def test_the_emulator_answers_as_the_table_says_unless_told_otherwise():
    assert {key: behaviours.answer(key) for key in BEHAVIOURS} == {key: r.offline for key, r in BEHAVIOURS.items()}
    with pytest.raises(ValueError, match="not one of present, absent"):
        behaviours.choose({"processing-sync-exit-message": "sometimes"})
    with pytest.raises(KeyError, match="not a row"):
        behaviours.choose({"no-such-row": "x"})


# -- offline: each unverified row, under its alternatives -----------------------------------------------
def ended(cloud: LocalCloud, stack: str, execution_input: dict, name: str) -> dict:
    arn = cloud.start(stack, execution_input, name)
    return cloud.wait([arn], timeout=300)[arn]


def run_alarm_notification(cloud: LocalCloud, described: dict, slug: str) -> dict:
    """CloudWatch's next evaluation of the workflow's failed-run alarm, and the message it sent to the topic."""
    (change,) = [c for c in cloud.alarms.evaluate(described["stopDate"] + datetime.timedelta(seconds=1))
                 if c["alarm"] == f"mlkit-{slug}-failed"]
    assert change["state"] == "ALARM" and [a["delivered"] for a in change["actions"]] == [True], change
    (sent,) = [n for n in cloud.notifications() if n["subject"] == f'ALARM: "mlkit-{slug}-failed" in us-east-1']
    return json.loads(sent["message"])


def survive(synthesized, chosen: dict, stack: str, execution_input: dict, setup=None) -> tuple[dict, dict]:
    with LocalCloud(synthesized["default"].outdir, behaviours=chosen) as cloud:
        if setup:
            execution_input = setup(cloud, execution_input)
        described = ended(cloud, stack, execution_input, "alternative")
        return described, run_alarm_notification(cloud, described, WORKFLOWS[stack].spec.slug)


def upload(folder: str, body: bytes | None):
    def setup(cloud: LocalCloud, execution_input: dict) -> dict:
        bucket = cloud.workflows[BR].data_bucket
        if body is not None:
            cloud.s3.put_object(Bucket=bucket, Key=f"datasets/{folder}/data.csv", Body=body)
        return {**execution_input, "dataset_uri": f"s3://{bucket}/datasets/{folder}/"}
    return setup


def test_an_import_answer_without_exit_message_ends_in_a_named_failure_that_notifies(synthesized):
    described, alarm = survive(synthesized, {"processing-sync-exit-message": "absent"}, BR, {"rows": 300, "seed": 3})
    assert described["status"] == "FAILED" and described["error"] == "BuildAndRegisterFailed"
    assert "carries no ExitMessage with the summary" in described["cause"]
    assert alarm["NewStateValue"] == "ALARM" and alarm["AlarmName"] == "mlkit-br-failed"


def test_bad_data_is_named_when_a_failed_jobs_cause_is_text_not_json(synthesized):
    bad = csv_text(60, 1).replace(b"\n1,", b"\n,", 1)  # a missing label on a line of its own
    described, _ = survive(synthesized, {"sync-failure-cause-json": "text"}, BR, {},
                           upload("missing-label", bad))
    assert described["status"] == "FAILED" and described["error"] == "InvalidDataset", described.get("cause")
    assert "is a missing label; drop the rows without a label" in described["cause"]


@pytest.mark.parametrize("answer", ["job-failure", "create-time"])
def test_an_empty_data_set_is_invalid_whether_sagemaker_refuses_it_at_create_time_or_fails_the_job(
        synthesized, answer):
    described, _ = survive(synthesized, {"empty-input-processing": answer}, BR, {}, upload("empty", None))
    assert described["status"] == "FAILED" and described["error"] == "InvalidDataset", described.get("cause")
    assert "no file under s3://" in described["cause"]


def test_an_optimized_sagemaker_error_under_another_name_ends_the_run_named_and_notified(synthesized):
    def throttle(cloud: LocalCloud, execution_input: dict) -> dict:
        cloud.sagemaker.inject_error("CreateTrainingJob", "ThrottlingException", "Rate exceeded")
        return execution_input

    described, alarm = survive(synthesized, {"optimized-sagemaker-error-name": "SageMaker.ValidationException"}, TT,
                               {"rows": 300, "seed": 3}, throttle)
    assert described["status"] == "FAILED" and described["error"] == "TrainAndTransformFailed"
    assert "Rate exceeded" in described["cause"] and alarm["AlarmName"] == "mlkit-tt-failed"


@pytest.mark.parametrize("answer", ["create-time", "job-failure"])
def test_an_empty_training_input_is_refused_at_create_time_or_fails_the_job(synthesized, answer):
    """No workflow gives a training, transform or tuning job an input it did not write itself, so the row is
    checked on the local API alone: either answer stops the job before it trains."""
    request = {"TrainingJobName": "mlkit-tt-empty", "RoleArn": None,
               "AlgorithmSpecification": {"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                           "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
               "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                   "S3DataType": "S3Prefix", "S3Uri": "s3://{bucket}/runs/r/train/"}}}],
               "OutputDataConfig": {"S3OutputPath": "s3://{bucket}/runs/r/model/"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    with LocalCloud(synthesized["default"].outdir, behaviours={"empty-input-training-transform-tuning": answer}) as cloud:
        bucket = cloud.workflows[TT].data_bucket
        (role,) = [arn for arn in cloud.iam.roles if "/trainandtransform-sagemakerrole" in arn]
        request = json.loads(json.dumps(request).replace("{bucket}", bucket))
        request["RoleArn"] = role
        if answer == "create-time":
            with pytest.raises(SageMakerError, match="No S3 objects found under S3 URL"):
                cloud.sagemaker.handle("CreateTrainingJob", request)
            return
        cloud.sagemaker.handle("CreateTrainingJob", request)
        for _ in range(200):  # the job runs in a thread of its own
            job = cloud.sagemaker.handle("DescribeTrainingJob", {"TrainingJobName": "mlkit-tt-empty"})
            if job["TrainingJobStatus"] != "InProgress":
                break
            time.sleep(0.05)
        assert job["TrainingJobStatus"] == "Failed" and "No S3 objects found under S3 URL" in job["FailureReason"]


def test_every_unverified_row_is_rehearsed_by_a_test():
    """A row added without a rehearsal fails here: its key must appear in a test of this suite."""
    from pathlib import Path

    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    assert [key for key in unverified() if f'"{key}"' not in tests] == []


# -- keys: who may publish to a topic ----------------------------------------------------------------------
def test_a_failed_run_of_a_workflow_deployed_alone_notifies_its_own_topic(synthesized):
    with LocalCloud(synthesized["default"].outdir) as cloud:
        described = ended(cloud, TT, {"rows": 5}, "too-few")  # refused by the input check
        assert described["status"] == "FAILED" and described["error"] == "InvalidExecutionInput"
        alarm = run_alarm_notification(cloud, described, "tt")
        (sent,) = [n for n in cloud.notifications() if n["subject"].startswith('ALARM: "mlkit-tt-failed"')]
        assert sent["topic"].rsplit(":", 1)[1] in cloud.workflows[TT].topics  # the stack's own topic
        assert alarm["Trigger"]["MetricName"] == "ExecutionsFailed"


def test_cloudwatch_cannot_publish_to_a_topic_under_the_aws_managed_key(synthesized, tmp_path):
    """The kit's old default: the topic under alias/aws/sns. On AWS the alarm's action fails and nothing is
    delivered; offline too, and the change records the failed action as the alarm's history shows it."""
    assembly = tmp_path / "assembly"
    shutil.copytree(synthesized["default"].outdir, assembly)
    path = assembly / f"{TT}.template.json"
    template = json.loads(path.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SNS::Topic":
            resource["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
    path.write_text(json.dumps(template))
    with LocalCloud(assembly) as cloud:
        described = ended(cloud, TT, {"rows": 5}, "too-few")
        (change,) = [c for c in cloud.alarms.evaluate(described["stopDate"] + datetime.timedelta(seconds=1))
                     if c["alarm"] == "mlkit-tt-failed"]
        assert change["state"] == "ALARM"
        (action,) = change["actions"]
        assert not action["delivered"] and "AWS managed key alias/aws/sns" in action["error"]
        assert not [n for n in cloud.notifications() if "mlkit-tt-failed" in n["subject"]]


# -- make preflight -------------------------------------------------------------------------------------
def test_preflight_lists_what_the_app_relies_on_and_refuses_a_field_step_functions_would(synthesized, tmp_path,
                                                                                          capsys):
    from operations.preflight import main

    assert main(["--assembly", str(synthesized["default"].outdir)]) == 0
    printed = capsys.readouterr().out
    for key, row in unverified().items():
        assert f"[{row.status}] {key} (" in printed, key
    assert "source: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html" in printed
    assert printed.index("[unverified]") < printed.index("[stated]")
    # A field the optimized createModel does not take, planted in the synthesized definition.
    assembly = tmp_path / "planted"
    shutil.copytree(synthesized["default"].outdir, assembly)
    path = assembly / "DeployApproved.template.json"
    text = path.read_text()
    planted = text.replace('\\"ExecutionRoleArn\\":', '\\"InferenceExecutionConfig\\":{\\"Mode\\":\\"Serial\\"},'
                                                     '\\"ExecutionRoleArn\\":', 1)
    assert planted != text
    path.write_text(planted)
    assert main(["--assembly", str(assembly)]) == 1
    assert ('error: DeployApproved: state \'CreateModel\' passes InferenceExecutionConfig to sagemaker:createModel, '
            'which Step Functions refuses when it creates the state machine (The field "InferenceExecutionConfig" is '
            'not supported by Step Functions)') in capsys.readouterr().err
