"""Adding a workflow takes its own files only. Two are added to a scratch clone, as a team adds theirs: a copy of the
TrainOnDayFiles example under another name, and ProfileDay (tests/added_workflows/), which runs a PySpark job in
SageMaker's Spark image. Both synthesize and run offline, and every other file and every other workflow's template
stay as they were (but for the two copy-wide resources that list each workflow of the copy, named below)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from offline.cloud.account import LocalCloud
from tests.conftest import ROOT

# Resources that name every workflow of the copy, so they gain a row for any workflow added: the copy's topic key
# (each workflow's alarms may publish) and the copy's dashboard.
COPY_WIDE = {"BuildAndRegister": {"TopicKey"}, "MonitorEndpoint": {"Dashboard"}}


def changed_resources(before: dict, after: dict) -> set[str]:
    return {name for name in {*before["Resources"], *after["Resources"]}
            if before["Resources"].get(name) != after["Resources"].get(name)}


ADDED = ROOT / "tests" / "added_workflows"
# ProfileDay's files -> where a team puts them.
PROFILE_DAY = {"profile_day.py": "stacks/workflows/profile_day.py", "profile_day.asl.json": "statemachines/profile_day.asl.json",
               "profile_day_app.py": "processing/profile_day.py"}


@pytest.fixture(scope="module")
def added(tmp_path_factory, templates):
    """The scratch clone with both workflows added, synthesized once: (its cdk.out, its templates)."""
    tmp_path = tmp_path_factory.mktemp("added")
    scratch = tmp_path / "kit"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(scratch)], check=True)
    module = (ROOT / "stacks/workflows/train_on_day_files.py").read_text()
    copy = (module.replace('@register("TrainOnDayFiles")', '@register("TrainOnDayFilesCopy")')
            .replace('definition="train_on_day_files"', 'definition="train_on_day_files_copy"')
            .replace('slug="df"', 'slug="dc"').replace("class TrainOnDayFilesStack", "class TrainOnDayFilesCopyStack"))
    assert copy.count("Copy") == 2 and 'slug="dc"' in copy
    (scratch / "stacks/workflows/train_on_day_files_copy.py").write_text(copy)
    (scratch / "statemachines/train_on_day_files_copy.asl.json").write_text(
        (ROOT / "statemachines/train_on_day_files.asl.json").read_text())
    for name, target in PROFILE_DAY.items():
        (scratch / target).write_text((ADDED / name).read_text())
    status = subprocess.run(["git", "status", "--porcelain", "-uall"], cwd=scratch, capture_output=True, text=True,
                            check=True)
    assert sorted(status.stdout.splitlines()) == sorted(
        [f"?? {path}" for path in PROFILE_DAY.values()] + ["?? stacks/workflows/train_on_day_files_copy.py",
                                                           "?? statemachines/train_on_day_files_copy.asl.json"])

    outdir = tmp_path / "cdk.out"
    subprocess.run([sys.executable, "-c", "import sys; from stacks.app.kit import build_app, cdk_json_context; "
                                          "build_app(cdk_json_context(), outdir=sys.argv[1]).synth()", str(outdir)],
                   cwd=scratch, env={**os.environ, "PYTHONPATH": str(scratch)}, check=True)
    return outdir, {path.name.removesuffix(".template.json"): json.loads(path.read_text())
                    for path in outdir.glob("*.template.json")}


@pytest.mark.slow
def test_added_workflows_change_no_other_file_or_template(added, templates):
    _, after = added
    assert set(after) == {*templates, "TrainOnDayFilesCopy", "ProfileDay"}
    for stack, template in templates.items():
        assert changed_resources(template, after[stack]) <= {
            name for name in template["Resources"] if any(name.startswith(r) for r in COPY_WIDE.get(stack, ()))}, stack


@pytest.mark.slow
def test_a_copy_of_the_example_runs_offline(added):
    with LocalCloud(added[0]) as cloud:
        arn = cloud.start("TrainOnDayFilesCopy", {"rows": 1000, "seed": 7}, "copied")
        described = cloud.wait([arn])[arn]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert ":model-package/mlkit-dc-models/" in json.loads(described["output"])["model_package_arn"]


def _joined(value) -> str:
    return "".join(_joined(part) for part in value["Fn::Join"][1]) if isinstance(value, dict) and "Fn::Join" in value \
        else value if isinstance(value, str) else "<token>"


@pytest.mark.slow
def test_a_team_workflow_runs_its_pyspark_job_in_the_spark_image_on_aws_and_offline(added):
    outdir, after = added
    template = after["ProfileDay"]
    # On AWS: the Spark image from its own registries, which the job's role alone may pull.
    assert set(template["Mappings"]) == {"SparkImageRegistry"}
    definition = _joined(next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
                         ["Properties"]["DefinitionString"])
    assert ".dkr.ecr.<token>.<token>/sagemaker-spark-processing:3.5-cpu-py312-v1.3" in definition
    pulls = [statement for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
             for statement in r["Properties"]["PolicyDocument"]["Statement"] if "ecr:BatchGetImage" in statement["Action"]]
    assert len(pulls) == 1 and "sagemaker-spark-processing" in json.dumps(pulls[0]["Resource"])

    with LocalCloud(outdir) as cloud:
        bucket = cloud.workflows["ProfileDay"].data_bucket
        for name, body in {"a.csv": "x,label\n1,yes\n2,no\n", "b.csv": "x,label\n3,yes\n4,yes\n5,no\n"}.items():
            cloud.s3.put_object(Bucket=bucket, Key=f"incoming/2026-12-07/{name}", Body=body.encode())
        arn = cloud.start("ProfileDay", {"day": "2026-12-07"}, "spark-day")
        described = cloud.wait([arn])[arn]
        assert described["status"] == "SUCCEEDED", described.get("cause")
        output = json.loads(described["output"])
        assert json.loads(cloud.read(output["profile"])) == {"label": "label", "rows": {"no": 2, "yes": 3}}
        job = cloud.sagemaker.jobs["ProcessingJob"][output["job"]]
        assert job["AppSpecification"]["ContainerEntrypoint"][0] == "smspark-submit"
