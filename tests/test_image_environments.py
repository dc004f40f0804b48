"""Offline, a framework image's jobs run in an environment of their own with the image's library versions
(offline/image_versions.py): the pins come from the one table, every job runner uses that environment's Python,
and a missing environment refuses the job in one line."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from offline import image_versions
from offline.image_versions import IMAGE_LIBRARIES, OLDEST_WITH_A_WHEEL, differences, requirements
from offline.integrations import UnsupportedIntegration, check_images
from offline.sagemaker_jobs import JobRunners
from offline.serving import ServedModel
from tests.conftest import BUCKET

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
SKLEARN = f"{ACCOUNT}/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = f"{ACCOUNT}/sagemaker-xgboost:1.7-1"
# What a job's own process imports, and the versions it must see there (the images' own, installable here).
IMAGES = {SKLEARN: {"scikit-learn": "1.2.1", "numpy": "1.24.1"}, XGBOOST: {"xgboost": "1.7.4", "numpy": "1.24.1"}}
PRINT_VERSIONS = ("import json, sys, numpy, sklearn\n"
                  "found = {'numpy': numpy.__version__, 'scikit-learn': sklearn.__version__}\n"
                  "try:\n    import xgboost\n    found['xgboost'] = xgboost.__version__\nexcept ImportError:\n    pass\n"
                  "open(sys.argv[1], 'w').write(json.dumps(found))\n")


def test_each_pin_is_the_images_version_or_the_oldest_wheel_for_this_python():
    for repository, libraries in IMAGE_LIBRARIES.items():
        expected = []
        for library, version in libraries.items():
            if library == "python":
                continue
            here = OLDEST_WITH_A_WHEEL.get(library)
            older = here and tuple(map(int, version.split("."))) < tuple(map(int, here.split(".")))
            expected.append(f"{library}=={here if older else version}")
        assert requirements(repository) == expected
    # the libraries that decide results install at the image's own version
    assert "xgboost==1.7.4" in requirements("sagemaker-xgboost")
    assert {"scikit-learn==1.2.1", "numpy==1.24.1"} <= set(requirements("sagemaker-scikit-learn"))


def test_make_builds_each_environment_from_the_printed_requirements():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(PYTHON) -m offline.image_versions --requirements $*" in makefile
    for target in ("run", "test"):
        assert re.search(rf"^{target}: .*\$\(IMAGE_ENVS\)", makefile, re.MULTILINE), target


@pytest.mark.parametrize("image", IMAGES)
def test_a_processing_job_runs_with_the_images_libraries(s3, image):
    """A script that reports its libraries' versions, run by the processing runner as a job of the image."""
    s3.put_object(Bucket=BUCKET, Key="code/versions.py", Body=PRINT_VERSIONS.encode())
    JobRunners(s3, lambda *_: None).processing("versions", {
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/versions.py", "/opt/ml/processing/output/versions.json"]},
        "ProcessingInputs": [{"InputName": "code", "S3Input": {
            "S3Uri": f"s3://{BUCKET}/code/versions.py", "LocalPath": "/opt/ml/processing/input/code"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/out", "LocalPath": "/opt/ml/processing/output"}}]}})
    found = json.loads(s3.get_object(Bucket=BUCKET, Key="out/versions.json")["Body"].read())
    assert {library: found[library] for library in IMAGES[image]} == IMAGES[image]


def test_the_built_in_algorithm_trains_with_the_images_xgboost(s3):
    """xgboost writes its own version into the model it saves."""
    s3.put_object(Bucket=BUCKET, Key="train/rows.csv", Body=b"".join(
        f"{n % 2},{n},{n % 7}\n".encode() for n in range(40)))
    result = JobRunners(s3, lambda *_: None).training("tiny", {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST},
        "HyperParameters": {"objective": "binary:logistic", "num_round": "2"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3Uri": f"s3://{BUCKET}/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"}, "ResourceConfig": {"InstanceCount": 1}})
    key = result["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as tar:
        model = json.loads(tar.extractfile("xgboost-model").read())
    assert model["version"] == [1, 7, 4]


def test_a_models_inference_code_runs_with_the_images_libraries():
    """The scikit-learn container's module answers from a process of the image's environment."""
    module = (b"import json, numpy, sklearn\n"
              b"def model_fn(model_dir):\n    return None\n"
              b"def predict_fn(data, model):\n    return data\n"
              b"def output_fn(prediction, accept):\n"
              b"    return json.dumps([sklearn.__version__, numpy.__version__]), 'application/json'\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(module)
        tar.addfile(info, io.BytesIO(module))
    model = ServedModel({"PrimaryContainer": {"Image": SKLEARN, "ModelDataUrl": "s3://b/model.tar.gz", "Environment": {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}},
        lambda uri: archive.getvalue())
    answer, kind = model(b"1,2\n", "text/csv", "application/json")
    assert (json.loads(answer), kind) == (["1.2.1", "1.24.1"], "application/json")


def test_what_still_differs_is_what_has_no_wheel_here():
    def named(repository):
        return {line.split()[0] for line in differences(repository)}

    assert named("sagemaker-scikit-learn") == {"python", "pandas", "scipy"}
    assert named("sagemaker-xgboost") == {"python", "pandas", "scipy", "scikit-learn"}


def test_a_missing_environment_refuses_the_job_in_one_line(s3, monkeypatch, tmp_path):
    monkeypatch.setattr(image_versions, "ROOT", tmp_path)
    line = ("offline, sagemaker-scikit-learn jobs run in .venv-image-sagemaker-scikit-learn (the image's library "
            "versions), which is missing; run `make image-envs`")
    with pytest.raises(RuntimeError) as refused:
        JobRunners(s3, lambda *_: None).processing("refused", {
            "AppSpecification": {"ImageUri": SKLEARN, "ContainerEntrypoint": ["python3", "-c", "pass"]}})
    assert str(refused.value) == f"ClientError: {line}"
    with pytest.raises(UnsupportedIntegration) as before_the_run:
        check_images("Stack", json.dumps({"Image": SKLEARN}))
    assert str(before_the_run.value) == f"Stack: {line}"
