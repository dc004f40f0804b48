"""`make run` itself: synthesizes, runs, prints progress and a summary, writes the summary JSON."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from offline.cli.run import main
from stacks.constructs.job_script import job_script
from tests.conftest import ROOT


def test_run_one_workflow_with_input_name_settings_and_kept_s3(tmp_path, capsys):
    """make run's own synthesis, with CDK_ARGS settings reaching it as they reach `cdk synth`."""
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "TrainAndTransform", "--input", '{"rows": 500, "seed": 5}', "--name", "cli-run",
                 "--keep-s3", str(tmp_path / "s3"), "--summary", str(summary), "--assembly", str(tmp_path / "out"),
                 "--log", str(tmp_path / "run.log"),
                 "--cdk-args", "-c name_prefix=teamx --context max_job_runtime_minutes=30"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "[TrainAndTransform] -> TrainModel" in printed and "TrainAndTransform: SUCCEEDED" in printed
    assert re.search(r"\nIAM: [1-9]\d* authorizations against the synthesized policies of the calling roles, 0 refused\n",
                     printed)
    result = json.loads(summary.read_text())["TrainAndTransform"]
    assert result["status"] == "SUCCEEDED" and result["states_executed"] == 7
    assert result["output"]["run_prefix"] == "runs/cli-run/"
    assert result["execution"].endswith(":execution:teamx-tt:cli-run")
    assert "/teamx-tt-" in result["output"]["model_artifacts"]
    assert result["quality"]["test_rows"] == 100 and result["quality"]["accuracy"] > 0.9
    kept = sorted(p.relative_to(tmp_path / "s3").as_posix() for p in (tmp_path / "s3").rglob("*.out"))
    assert kept == [f"{result['output']['predictions'].removeprefix('s3://')}test.csv.out"]


def test_a_model_registered_without_an_evaluation_is_summarized(synthesized, tmp_path, capsys):
    """TrainOnDayFiles registers its model for approval without a gate: make run names the model and the version."""
    code = main(["--workflow", "TrainOnDayFiles", "--summary", str(tmp_path / "summary.json"), "--assembly",
                 str(synthesized["default"].outdir), "--no-synth", "--log", str(tmp_path / "run.log")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    output = json.loads((tmp_path / "summary.json").read_text())["TrainOnDayFiles"]["output"]
    assert f"  registered:  {output['model_package_arn']} (PendingManualApproval)\n" in printed
    assert "  model:       s3://" in printed


def test_failed_run_exits_non_zero_and_reports_the_error(tmp_path, capsys, synthesized):
    code = main(["--workflow", "PreprocessAndTrain", "--input", '{"rows": "lots"}', "--summary",
                 str(tmp_path / "s.json"), "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "error: InvalidExecutionInput" in printed
    # CloudWatch's evaluation after the run: the workflow's own failed-run alarm notified its own topic.
    assert re.search(r"alarm mlkit-pt-failed: INSUFFICIENT_DATA -> ALARM \(arn:aws:sns:us-east-1:123456789012:"
                     r"preprocessandtrain-notifications[0-9a-f]*\)", printed), printed


def test_kms_configuration_runs_too(synthesized, tmp_path):
    """The encryption=kms definitions (volume and output keys, isolation flags) pass SageMaker's request rules."""
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "PreprocessAndTrain", "--input", '{"rows": 300, "seed": 2}', "--summary", str(summary),
                 "--assembly", str(synthesized["kms"].outdir), "--no-synth"])
    assert code == 0
    assert json.loads(summary.read_text())["PreprocessAndTrain"]["quality"]["accuracy"] > 0.9


def test_a_stage_runs_offline_from_its_staged_assembly(synthesized, tmp_path):
    summary = tmp_path / "summary.json"
    code = main(["--stage", "dev", "--workflow", "TrainAndTransform", "--input", '{"rows": 300, "seed": 2}',
                 "--summary", str(summary), "--assembly", str(synthesized["stage-dev"].outdir), "--no-synth"])
    assert code == 0
    result = json.loads(summary.read_text())["TrainAndTransform"]
    assert ":stateMachine:mlkit-dev-tt" in result["execution"].replace(":execution:", ":stateMachine:")
    assert "/mlkit-dev-tt-" in result["output"]["model_artifacts"]


def test_a_staged_assembly_needs_its_stage_named(synthesized, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--no-synth", "--assembly", str(synthesized["stage-dev"].outdir), "--summary", str(tmp_path / "t.json")])
    assert "holds stages (dev); choose one (--stage)" in capsys.readouterr().err


def test_a_workflow_started_by_approval_is_not_run_on_its_own(synthesized, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--workflow", "DeployApproved", "--summary", str(tmp_path / "s.json"),
              "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert exited.value.code == 2
    assert "DeployApproved starts when a model version is approved" in capsys.readouterr().err


@pytest.mark.slow  # the whole loop: upload, build, register, approve, deploy
def test_a_data_set_alone_runs_the_workflows_that_take_one_and_the_deployment_its_approval_starts(
        synthesized, tmp_path, capsys):
    """A local file is uploaded and trained on; --approve approves what registered, which deploys it."""
    from tests.test_build_and_register import csv_text

    dataset = tmp_path / "points.csv"
    dataset.write_bytes(csv_text(500, 4))
    summary, kept = tmp_path / "summary.json", tmp_path / "s3"
    code = main(["--dataset", str(dataset), "--approve", "--summary", str(summary), "--keep-s3", str(kept),
                 "--log", str(tmp_path / "run.log"), "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads(summary.read_text())
    assert sorted(k for k in result if k not in ("local_s3", "monitoring")) == ["BuildAndRegister", "DeployApproved"]
    output = result["BuildAndRegister"]["output"]
    assert output["data"].endswith("/datasets/points/points.csv")
    assert result["DeployApproved"]["status"] == "SUCCEEDED"
    assert result["DeployApproved"]["output"]["model_package_arn"] == output["model_package_arn"]
    assert f"approving {output['model_package_arn']}" in printed and "--model-approval-status Approved" in printed
    assert f"registered:  {output['model_package_arn']} (Approved)" in printed
    assert "smoke test:  Smoke test passed" in printed
    # Every s3:// path printed resolves in the kept folder, and the figures are the evaluation's own.
    for uri in (output["model_artifacts"], output["evaluation"], output["test_data"]):
        assert (kept / uri.removeprefix("s3://")).is_file() and f"({kept / uri.removeprefix('s3://')})" in printed
    metrics = json.loads((kept / output["evaluation"].removeprefix("s3://")).read_text())[
        "binary_classification_metrics"]
    shown = f"binary: accuracy {metrics['accuracy']['value']}, auc {metrics['auc']['value']}"
    assert shown in printed and f"scored auc {metrics['auc']['value']} on the test set" in printed
    matrix = metrics["confusion_matrix"]
    assert (f"confusion:   true 0: {matrix['0']['0']} predicted 0, {matrix['0']['1']} predicted 1; "
            f"true 1: {matrix['1']['0']} predicted 0, {matrix['1']['1']} predicted 1") in printed


def test_a_data_set_for_a_workflow_that_takes_none_is_refused_in_one_line(synthesized, tmp_path, capsys):
    dataset = tmp_path / "points.csv"
    dataset.write_text("label,x\n1,2\n")
    with pytest.raises(SystemExit) as exited:
        main(["--workflow", "TrainAndTransform", "--dataset", str(dataset), "--summary", str(tmp_path / "s.json"),
              "--log", str(tmp_path / "run.log"), "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert exited.value.code == 2
    assert "TrainAndTransform takes no data set (no dataset_uri); --dataset is for BuildAndRegister" in \
        capsys.readouterr().err


def test_cdk_args_other_than_settings_are_refused_and_bad_settings_fail_the_synthesis(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    with pytest.raises(SystemExit) as exited:
        main(["--cdk-args=--force", "--summary", str(summary), "--assembly", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "CDK_ARGS: make run takes only settings (-c key=value); '--force' means nothing offline" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--cdk-args", "-c max_job_runtime_minutes=0", "--summary", str(summary),
              "--assembly", str(tmp_path / "out")])
    assert "invalid setting max_job_runtime_minutes='0'" in capsys.readouterr().err


def test_a_failed_job_shows_its_own_reason_on_one_line_and_internals_go_to_the_log(synthesized, tmp_path, capsys):
    """The processing script of a copy of the assembly fails as a user's script would: the console and the
    summary show its last error line; the interpreter's dumps and the full cause go to the log file only."""
    assembly = tmp_path / "assembly"
    shutil.copytree(synthesized["default"].outdir, assembly)
    script = job_script(ROOT / "processing" / "features.py").read_bytes()
    (planted,) = [p for p in assembly.rglob("*.py") if p.read_bytes() == script and "PreprocessAndTrain" in
                  json.dumps(json.loads((assembly / "PreprocessAndTrain.assets.json").read_text())) and
                  p.name in (assembly / "PreprocessAndTrain.assets.json").read_text()]
    planted.write_text("import sys\nprint('loading', file=sys.stderr)\n"
                       "raise SystemExit('features: column y holds text')\n")
    log = tmp_path / "run.log"
    code = main(["--workflow", "PreprocessAndTrain", "--input", '{"rows": 300}', "--summary",
                 str(tmp_path / "s.json"), "--log", str(log), "--assembly", str(assembly), "--no-synth"])
    out, err = capsys.readouterr()
    assert code == 1
    line = "AlgorithmError: exit code 1: features: column y holds text"
    (failure,) = [row for row in out.splitlines() if "!! TaskFailed" in row]
    assert failure.endswith(line) and failure.startswith("[PreprocessAndTrain] !! TaskFailed: ")
    (summarized,) = [row for row in out.splitlines() if row.startswith("  error: PreprocessAndTrainFailed: ")]
    assert summarized.endswith(line)
    result = json.loads((tmp_path / "s.json").read_text())["PreprocessAndTrain"]
    assert result["reason"].endswith(line)
    assert "Traceback" not in out + err and "FailureEventException" not in out + err
    assert "FailureEventException" in log.read_text() and '\\"FailureReason\\"' in log.read_text()


def test_a_refusal_names_its_class_once(capsys):
    """The Fail state's error is the class the job's message starts with (the workflow classifies by it): shown
    once, whichever the cause's shape."""
    import datetime

    from offline.cli.console import Progress, failure

    cause = "InvalidDataset: s3://b/datasets/x/data.csv line 9, column 'label': '' is a missing label"
    Progress({"arn": "BuildAndRegister"})("arn", {
        "type": "ExecutionFailed", "timestamp": datetime.datetime.now(),
        "executionFailedEventDetails": {"error": "InvalidDataset", "cause": cause}})
    assert capsys.readouterr().out == f"[BuildAndRegister] !! ExecutionFailed: {cause}\n"
    job = json.dumps({"ProcessingJobName": "j", "FailureReason": "AlgorithmError: exit code 1: boom"})
    assert failure("WorkflowFailed", job) == "WorkflowFailed: j failed: AlgorithmError: exit code 1: boom"


def test_the_demonstrated_traffic_is_a_stated_sample_of_a_large_test_set():
    """make run sends at most HOURLY_ROWS rows an hour, in the test set's order, the same sample every run."""
    from offline.cli.monitor_loop import HOURLY_ROWS, sample

    rows = [[str(i)] for i in range(HOURLY_ROWS * 3)]
    picked = sample(rows)
    assert len(picked) == HOURLY_ROWS and picked == sorted(picked, key=lambda r: int(r[0])) and picked == sample(rows)
    assert len({r[0] for r in picked}) == HOURLY_ROWS and int(picked[-1][0]) > HOURLY_ROWS  # spread, not a prefix
    small = rows[:10]
    assert sample(small) is small


@pytest.mark.slow  # make in a new shell, then Streamlit's start
def test_make_site_serves_what_make_run_kept_in_a_new_shell(tmp_path):
    """`make site` as the README shows it, in a shell with only the system PATH; SITE_ARGS from the environment
    points it at a kept run of no models (make run's own keep is tested with the loop, tests/test_monitoring.py)."""
    (tmp_path / "s3").mkdir()
    (tmp_path / "site.json").write_text(json.dumps({
        "s3": str(tmp_path / "s3"), "model_packages": [], "alarms": [], "objects": {},
        "names": {"BUILD_BUCKET": "b", "DEPLOY_BUCKET": "d", "MONITOR_BUCKET": "m", "MODEL_PACKAGE_GROUP": "g",
                  "ALARM_PREFIX": "a-"}}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                   "SITE_ARGS": f"--snapshot {tmp_path / 'site.json'} --port {port}"}
    shell = subprocess.Popen(["bash", "-c", "exec make site"], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        printed = ""
        while "results site:" not in printed:
            line = shell.stdout.readline()
            assert line, printed
            printed += line
        assert f"results site: http://localhost:{port} (the last make run's results; Ctrl-C stops it)" in printed
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as answer:
                    assert answer.read() == b"ok"
                    break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("the site never answered its health check")
    finally:
        os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C, as a user stops it: the server goes with it
        shell.wait(timeout=20)
    assert "Traceback" not in shell.stdout.read()
