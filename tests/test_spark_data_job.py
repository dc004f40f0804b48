"""BuildAndRegister's data job on Spark (processing/spark_data_job.py) writes what the one-instance job writes, byte
for byte, for each case of the model contract, and refuses what it refuses with the same message; from
spark_above_mib on, the workflow runs it, and names its refusal as it names the one-instance job's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.bundle import bundle
from offline.cloud.account import LocalCloud
from offline.runtimes.sagemaker_jobs import SPARK, JobRunners
from stacks.settings.config import KitConfig
from stacks.settings.model_contract import ModelContract
from stacks.workflows.workflow_stack import workflow_settings
from tests.conftest import BUCKET, EXTRA_CONFIGURATIONS, ROOT, load_processing_module

importer = load_processing_module("import_dataset")
IMAGE = f"173754725891.dkr.ecr.us-east-1.amazonaws.com/{SPARK.repository}:{SPARK.tag}"
SOURCE = f"s3://{BUCKET}/datasets/case/"
# The model contract's cases (tests/test_model_loop.py), by their data job: the script case imports as the
# multiclass one does.
CASES = {"contract-multiclass": "species.csv", "contract-regression": "listings.csv", "contract-binary": "customers.csv"}
# The binary case also reads each of its files in parts (about 3,000 bytes each; the jobs' default is 64 MiB), as
# both jobs read a large file without quotes.
PARTS = {"contract-binary": ["--part-bytes", "3000"]}


def contract_arguments(case: str) -> list[str]:
    config = KitConfig.from_context(EXTRA_CONFIGURATIONS[case], workflow_settings())
    return ModelContract.from_settings(config.workflow_settings).arguments()


def in_files(text: str, parts: int) -> dict[str, str]:
    """The data set as `parts` files, each with the header: rows dealt out in blocks, in order."""
    header, *rows = text.splitlines(keepends=True)
    size = -(-len(rows) // parts)
    return {f"part-{n}.csv": header + "".join(rows[n * size:(n + 1) * size]) for n in range(parts)}


def spark_job(s3, files: dict[str, str], arguments: list[str]) -> tuple[dict, dict[str, bytes]]:
    """The Spark data job as BuildAndRegister starts it (its code inputs, its arguments), run offline; its
    description and every object it wrote (input/... and processed/...)."""
    for name, text in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"datasets/case/{name}", Body=text.encode())
    for name in ("import_dataset", "features", "spark_data_job"):
        s3.put_object(Bucket=BUCKET, Key=f"code/{name}/{name}.py",
                      Body=bundle(ROOT / "processing" / f"{name}.py").encode())
    inputs = {"data": "datasets/case/", "code": "code/import_dataset/", "features": "code/features/",
              "spark": "code/spark_data_job/"}
    job = {"AppSpecification": {
               "ImageUri": IMAGE, "ContainerEntrypoint": ["smspark-submit", "/opt/ml/processing/spark/spark_data_job.py"],
               "ContainerArguments": [
                   "--input-dir", "/opt/ml/processing/input/data", "--output-dir", "/opt/ml/processing/output",
                   "--message-file", "/opt/ml/output/message", *arguments, "--processed-dir",
                   "/opt/ml/processing/processed", "--features-script", "/opt/ml/processing/features/features.py",
                   "--train-parts", "2", "--import-script", "/opt/ml/processing/code/import_dataset.py"]},
           "Environment": {"IMPORT_SEED": "4", "IMPORT_SOURCE": SOURCE},
           "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large",
                                                     "VolumeSizeInGB": 10}},
           "ProcessingInputs": [{"InputName": name, "S3Input": {
               "S3Uri": f"s3://{BUCKET}/{key}", "LocalPath": f"/opt/ml/processing/{'input/data' if name == 'data' else name}",
               "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
               for name, key in inputs.items()],
           "ProcessingOutputConfig": {"Outputs": [
               {"OutputName": "input", "S3Output": {"S3Uri": f"s3://{BUCKET}/run/input", "LocalPath":
                                                    "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}},
               {"OutputName": "processed", "S3Output": {"S3Uri": f"s3://{BUCKET}/run/processed", "LocalPath":
                                                        "/opt/ml/processing/processed", "S3UploadMode": "EndOfJob"}}]}}
    described = JobRunners(s3, lambda *args: None).processing("data-job", job)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="run/")
            for o in page.get("Contents", [])]
    return described, {key.removeprefix("run/"): s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def one_instance_job(tmp_path: Path, files: dict[str, str], arguments: list[str]) -> tuple[int, str, dict[str, bytes]]:
    """processing/import_dataset.py --processed-dir on the same files: its exit code, message and outputs."""
    (tmp_path / "data").mkdir()
    for name, text in files.items():
        (tmp_path / "data" / name).write_text(text)
    code = importer.main(["--input-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "input"),
                          "--message-file", str(tmp_path / "message"), *arguments, "--processed-dir",
                          str(tmp_path / "processed"), "--features-script", str(ROOT / "processing" / "features.py"),
                          "--train-parts", "2", "--seed", "4", "--source", SOURCE])
    written = {f"{folder}/{path.relative_to(tmp_path / folder).as_posix()}": path.read_bytes()
               for folder in ("input", "processed") for path in sorted((tmp_path / folder).rglob("*")) if path.is_file()}
    return code, (tmp_path / "message").read_text(), written


@pytest.mark.slow  # a Spark application each: about 10 s
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_spark_data_job_writes_what_the_one_instance_job_writes_byte_for_byte(case, s3, tmp_path):
    files = in_files((ROOT / "examples" / CASES[case]).read_text(), 3)
    arguments = contract_arguments(case) + PARTS.get(case, [])
    code, message, expected = one_instance_job(tmp_path, files, arguments)
    assert code == 0, message
    described, written = spark_job(s3, files, arguments)
    assert described == {"ExitMessage": message}  # the summary the workflow plans training from
    assert sorted(written) == sorted(expected) and "processed/preprocessor/model.tar.gz" in written
    for name, body in expected.items():
        assert written[name] == body, name


@pytest.mark.slow  # a Spark application: about 10 s
def test_a_refusal_completes_the_spark_job_with_the_one_instance_jobs_message(s3, tmp_path):
    files = in_files((ROOT / "examples" / "customers.csv").read_text(), 3)
    lines = files["part-1.csv"].splitlines(keepends=True)
    lines[4] = "1e999" + lines[4][lines[4].index(","):]  # tenure_months beyond a 64-bit float, line 5 of part-1
    files["part-1.csv"] = "".join(lines)
    arguments = contract_arguments("contract-binary")
    code, message, _ = one_instance_job(tmp_path, files, arguments)
    assert code == 1 and message.startswith(f"InvalidDataset: {SOURCE}part-1.csv line 5, column 'tenure_months': "
                                            "'1e999', which is beyond a 64-bit float")
    described, written = spark_job(s3, files, arguments)
    assert described == {"ExitMessage": message}  # completed: the image would replace a failed one's message
    assert not written  # nothing for a later job to take


@pytest.mark.slow  # two runs of BuildAndRegister with a Spark data job: about 30 s
def test_from_spark_above_mib_the_workflow_prepares_the_data_with_spark_and_names_its_refusal(synthesized):
    with LocalCloud(synthesized["spark"].outdir) as cloud:
        bucket = cloud.workflows["BuildAndRegister"].data_bucket
        for name, text in in_files((ROOT / "examples" / "customers.csv").read_text(), 2).items():
            cloud.s3.put_object(Bucket=bucket, Key=f"datasets/customers/{name}", Body=text.encode())
            cloud.s3.put_object(Bucket=bucket, Key=f"datasets/broken/{name}",
                                Body=text.replace("\n", "\n,", 1).encode())  # line 2 lacks its first value
        started = [cloud.start("BuildAndRegister", {"dataset_uri": f"s3://{bucket}/datasets/{name}/", "seed": 4}, name)
                   for name in ("customers", "broken")]
        done = cloud.wait(started)
        jobs = cloud.sagemaker.jobs["ProcessingJob"]
    built, broken = (done[arn] for arn in started)
    assert built["status"] == "SUCCEEDED", built.get("cause")
    data_job = jobs[json.loads(built["output"])["data_job"]]
    assert data_job["AppSpecification"]["ImageUri"].endswith(f"/{SPARK.repository}:{SPARK.tag}")
    assert data_job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert broken["status"] == "FAILED" and broken["error"] == "InvalidDataset"
    # As the one-instance job's failure is named: its ExitMessage whole.
    assert broken["cause"] == (f"InvalidDataset: s3://{bucket}/datasets/broken/part-0.csv line 2 has 5 values for the "
                               "4 columns of the header; quote a value that holds a comma")
