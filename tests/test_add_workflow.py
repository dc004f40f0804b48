"""Adding a workflow takes its own files only: a copy of the TrainOnDayFiles example under another name, added to a
scratch clone, synthesizes and runs offline, and leaves every other file and every other workflow's template as it
was (but for the two copy-wide resources that list each workflow of the copy, named below)."""
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


@pytest.mark.slow
def test_a_copy_of_the_example_adds_only_its_own_files_and_runs_offline(tmp_path, templates):
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
    status = subprocess.run(["git", "status", "--porcelain"], cwd=scratch, capture_output=True, text=True, check=True)
    assert sorted(status.stdout.splitlines()) == ["?? stacks/workflows/train_on_day_files_copy.py",
                                                  "?? statemachines/train_on_day_files_copy.asl.json"]

    outdir = tmp_path / "cdk.out"
    subprocess.run([sys.executable, "-c", "import sys; from stacks.app.kit import build_app, cdk_json_context; "
                                          "build_app(cdk_json_context(), outdir=sys.argv[1]).synth()", str(outdir)],
                   cwd=scratch, env={**os.environ, "PYTHONPATH": str(scratch)}, check=True)
    after = {path.name.removesuffix(".template.json"): json.loads(path.read_text())
             for path in outdir.glob("*.template.json")}
    assert set(after) == {*templates, "TrainOnDayFilesCopy"}
    for stack, template in templates.items():
        assert changed_resources(template, after[stack]) <= {
            name for name in template["Resources"] if any(name.startswith(r) for r in COPY_WIDE.get(stack, ()))}, stack

    with LocalCloud(outdir) as cloud:
        arn = cloud.start("TrainOnDayFilesCopy", {"rows": 1000, "seed": 7}, "copied")
        described = cloud.wait([arn])[arn]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert ":model-package/mlkit-dc-models/" in json.loads(described["output"])["model_package_arn"]
