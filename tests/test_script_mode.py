"""A team's own model: a scikit-learn script in script mode, run offline as SageMaker's toolkit runs it, served by
its own inference functions; what SageMaker or CDK would refuse is refused here first."""
from __future__ import annotations

import io
import json
import shutil
import tarfile

import joblib
import numpy as np
import pytest

from offline.cloud.account import LocalCloud
from offline.cloud.integrations import UnsupportedIntegration
from offline.runtimes.script_mode import _arguments, run_script
from stacks.asl.definition import WorkflowDefinitionError
from stacks.constructs.source_archive import pack, source_archive
from tests.conftest import ROOT

ST = "ScriptTrainAndTransform"
SOURCE = ROOT / "training" / "sklearn_linear"


def run(cloud: LocalCloud, name: str, execution_input: dict | None = None) -> dict:
    arn = cloud.start(ST, execution_input or {"rows": 500, "seed": 4}, name)
    described = cloud.wait([arn])[arn]
    return {**described, "output": json.loads(described.get("output") or "null")}


def test_the_script_trains_and_its_own_inference_functions_predict(cloud, tmp_path):
    described = run(cloud, "own-script", {"rows": 500, "seed": 4, "hyperparameters": {"max_iter": 300}})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = described["output"]
    with tarfile.open(fileobj=io.BytesIO(cloud.read(output["model_artifacts"]))) as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model.joblib", "task.json"]  # what train.py saved
        archive.extractall(tmp_path, filter="data")
    assert (tmp_path / "code" / "inference.py").read_bytes() == (SOURCE / "inference.py").read_bytes()
    model = joblib.load(tmp_path / "model.joblib")
    assert model.named_steps["logisticregression"].max_iter == 300  # the hyperparameter reached the script
    test = np.loadtxt(io.StringIO(cloud.read(output["data"]["test"] + "test.csv").decode()), delimiter=",", ndmin=2)
    served = [float(v) for v in cloud.read(output["predictions"] + "test.csv.out").split()]
    np.testing.assert_array_equal(served, model.predict_proba(test)[:, 1])  # inference.py's predict_fn answered
    job = cloud.sagemaker.jobs["TrainingJob"][output["training_job"]]
    assert job["HyperParameters"]["sagemaker_program"] == "train.py"
    assert job["HyperParameters"]["sagemaker_submit_directory"].startswith("/opt/ml/input/data/code/")
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation", "code"]
    assert any(m["MetricName"] == "validation:accuracy" and m["Value"] > 0.9 for m in job["FinalMetricDataList"])


def test_a_script_with_a_syntax_error_fails_the_job_with_its_error_line(cloud, synthesized, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    (source / "train.py").write_text("def main(:\n    pass\n")
    bucket, key = next(k for k in cloud.workflows[ST].file_assets if k[1].endswith(".gz"))  # CDK keeps the last extension
    original = cloud.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    cloud.s3.put_object(Bucket=bucket, Key=key, Body=pack(source))
    try:
        described = run(cloud, "syntax-error")
    finally:
        cloud.s3.put_object(Bucket=bucket, Key=key, Body=original)
    assert described["status"] == "FAILED"
    reason = json.loads(described["cause"])["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage \"SyntaxError: ")
    assert reason.endswith('Command "python train.py --inverse_regularization 1.0 --max_iter 200"')


def test_an_image_without_a_runner_is_refused_before_the_run(synthesized, tmp_path):
    assembly = tmp_path / "assembly"
    shutil.copytree(synthesized["default"].outdir, assembly)
    template = assembly / f"{ST}.template.json"
    template.write_text(template.read_text().replace("/sagemaker-scikit-learn:", "/my-team-image:"))
    with LocalCloud(assembly) as local:
        before = local.sfn.list_executions(stateMachineArn=local.machines[ST])["executions"]
        with pytest.raises(UnsupportedIntegration, match=r"ScriptTrainAndTransform: image \d{12}\.dkr\.ecr\."
                                                         r"us-east-1\.amazonaws\.com/my-team-image:1\.2-1-cpu-py3 has "
                                                         r"no offline runner; register one in stacks/settings/image_table\.py IMAGE_TABLE"):
            local.start(ST, {"rows": 100})
        assert local.sfn.list_executions(stateMachineArn=local.machines[ST])["executions"] == before


def job(hyperparameters: dict, isolated: bool = True) -> dict:
    return {"HyperParameters": hyperparameters, "EnableNetworkIsolation": isolated,
            "InputDataConfig": [{"ChannelName": "code"}]}


def test_what_network_isolation_forbids_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="must be downloaded, which network isolation forbids"):
        run_script(job({"sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://b/sourcedir.tar.gz"}),
                   {}, 60)
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    (source / "requirements.txt").write_text("lightgbm\n")
    with pytest.raises(RuntimeError, match="has a requirements.txt, which the toolkit installs from PyPI"):
        run_script(job({"sagemaker_program": "train.py",
                        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz"}),
                   {"code": [("sourcedir.tar.gz", pack(source))]}, 60)


def test_hyperparameters_become_the_toolkits_arguments():
    assert _arguments({"sagemaker_program": "train.py", "max_iter": "200", "C": "0.5", "tags": '{"b": 2, "a": 1}'}) \
        == ["-C", "0.5", "--max_iter", "200", "--tags", "a=1,b=2"]


def test_a_source_folder_packs_to_the_same_bytes_and_a_folder_asset_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(SOURCE, copy)
    for path in copy.rglob("*"):
        path.touch()  # other times, same content
    assert pack(copy) == pack(SOURCE) and source_archive(SOURCE).read_bytes() == pack(SOURCE)
    with tarfile.open(source_archive(SOURCE)) as archive:
        assert sorted(archive.getnames()) == [*(f"contract/{p.name}" for p in sorted((ROOT / "contract").glob("*.py"))),
                                              "inference.py", "model.json", "train.py"]  # the linked contract too

    from stacks.app.kit import build_app, cdk_json_context
    from stacks.workflows.script_train_and_transform import ScriptTrainAndTransformStack

    spec = ScriptTrainAndTransformStack.spec
    monkeypatch.setattr(ScriptTrainAndTransformStack, "spec", type(spec)(
        **{**spec.__dict__, "assets": {"TrainingSource": "training/sklearn_linear"}, "source_dirs": {}}))
    with pytest.raises(WorkflowDefinitionError, match="assets TrainingSource='training/sklearn_linear' is not a "
                                                      "file; CDK uploads a folder as a .zip"):
        build_app(cdk_json_context(), outdir=str(tmp_path / "out"))
