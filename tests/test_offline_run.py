"""`make run` itself: synthesizes, runs, prints progress and a summary, writes the summary JSON."""
from __future__ import annotations

import json
import re

import pytest

from offline.run import main


def test_run_one_workflow_with_input_name_and_kept_s3(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "TrainAndTransform", "--input", '{"rows": 500, "seed": 5}', "--name", "cli-run",
                 "--keep-s3", str(tmp_path / "s3"), "--summary", str(summary), "--assembly", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "[TrainAndTransform] -> TrainModel" in printed and "TrainAndTransform: SUCCEEDED" in printed
    assert re.search(r"\nIAM: [1-9]\d* authorizations against the synthesized policies of the calling roles, 0 refused\n",
                     printed)
    result = json.loads(summary.read_text())["TrainAndTransform"]
    assert result["status"] == "SUCCEEDED" and result["states_executed"] == 7
    assert result["output"]["run_prefix"] == "runs/cli-run/"
    assert result["quality"]["test_rows"] == 100 and result["quality"]["accuracy"] > 0.9
    kept = sorted(p.relative_to(tmp_path / "s3").as_posix() for p in (tmp_path / "s3").rglob("*.out"))
    assert kept == [f"{result['output']['predictions'].removeprefix('s3://')}test.csv.out"]


def test_failed_run_exits_non_zero_and_reports_the_error(tmp_path, capsys, synthesized):
    code = main(["--workflow", "PreprocessAndTrain", "--input", '{"rows": "lots"}', "--summary",
                 str(tmp_path / "s.json"), "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert code == 1
    assert "error: InvalidExecutionInput" in capsys.readouterr().out


def test_kms_configuration_runs_too(synthesized, tmp_path):
    """The encryption=kms definitions (volume and output keys, isolation flags) pass SageMaker's request rules."""
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "PreprocessAndTrain", "--input", '{"rows": 300, "seed": 2}', "--summary", str(summary),
                 "--assembly", str(synthesized["kms"].outdir), "--no-synth"])
    assert code == 0
    assert json.loads(summary.read_text())["PreprocessAndTrain"]["quality"]["accuracy"] > 0.9


def test_a_stage_runs_offline_from_its_staged_assembly(tmp_path):
    summary = tmp_path / "summary.json"
    code = main(["--stage", "dev", "--workflow", "TrainAndTransform", "--input", '{"rows": 300, "seed": 2}',
                 "--summary", str(summary), "--assembly", str(tmp_path / "out")])
    assert code == 0
    result = json.loads(summary.read_text())["TrainAndTransform"]
    assert ":stateMachine:mlkit-dev-tt" in result["execution"].replace(":execution:", ":stateMachine:")
    assert "/mlkit-dev-tt-" in result["output"]["model_artifacts"]


def test_a_staged_assembly_needs_its_stage_named(tmp_path, capsys):
    main(["--stage", "dev", "--workflow", "TrainAndTransform", "--summary", str(tmp_path / "s.json"),
          "--assembly", str(tmp_path / "out"), "--input", '{"rows": 100}'])
    with pytest.raises(SystemExit):
        main(["--no-synth", "--assembly", str(tmp_path / "out"), "--summary", str(tmp_path / "t.json")])
    assert "holds stages (dev); choose one (--stage)" in capsys.readouterr().err


def test_a_local_csv_is_uploaded_and_trained_on(synthesized, tmp_path, capsys):
    from tests.test_build_and_register import csv_text

    dataset = tmp_path / "churn.csv"
    dataset.write_bytes(csv_text(400, 9))
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "BuildAndRegister", "--dataset", str(dataset), "--summary", str(summary),
                 "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert code == 0
    output = json.loads(summary.read_text())["BuildAndRegister"]["output"]
    assert output["data"].endswith("/datasets/churn/churn.csv")
    printed = capsys.readouterr().out
    assert "registered:  arn:aws:sagemaker:" in printed and "--model-approval-status Approved" in printed


def test_approve_runs_the_whole_loop_build_register_approve_deploy(synthesized, tmp_path, capsys):
    summary = tmp_path / "summary.json"
    code = main(["--workflow", "BuildAndRegister", "--approve", "--input", '{"rows": 1000, "seed": 4}', "--summary",
                 str(summary), "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads(summary.read_text())
    assert result["DeployApproved"]["status"] == "SUCCEEDED"
    assert result["DeployApproved"]["output"]["model_package_arn"] == result["BuildAndRegister"]["output"][
        "model_package_arn"]
    assert "approving arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models/" in printed
    assert "(Approved)" in printed and "smoke test:  Smoke test passed" in printed


def test_a_workflow_started_by_approval_is_not_run_on_its_own(synthesized, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--workflow", "DeployApproved", "--summary", str(tmp_path / "s.json"),
              "--assembly", str(synthesized["default"].outdir), "--no-synth"])
    assert exited.value.code == 2
    assert "DeployApproved starts when a model version is approved" in capsys.readouterr().err
