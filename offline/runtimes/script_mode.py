"""Script mode, offline: a framework image's training job runs the user's own entry point, as SageMaker's training
toolkit (sagemaker-training) runs it in the container, in a folder laid out like /opt/ml.

The toolkit's contract, as its sources state it: the source archive named by `sagemaker_submit_directory` is
unpacked into the code folder; the entry point `sagemaker_program` runs there as `python <program> --<name>
<value> ...` (every hyperparameter but the toolkit's own `sagemaker_*`); the script finds its folders in SM_*
variables (SM_MODEL_DIR, SM_CHANNEL_<NAME>, SM_OUTPUT_DATA_DIR, ...) and /opt/ml/input/config/*.json; what it
leaves in the model folder becomes model.tar.gz; a non-zero exit fails the job with AlgorithmError and the
script's last error line. Offline the folders lie under a temporary root: a script that reads its paths from
the SM_* variables (as the toolkit documents) runs unchanged.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NETWORK_ISOLATION_CODE = "/opt/ml/input/data/code/"  # where the SDK points sagemaker_submit_directory then

def _archive(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()

def _arguments(hyperparameters: dict[str, str]) -> list[str]:
    """The command-line arguments the toolkit makes of the hyperparameters (sagemaker-training mapping.py
    to_cmd_args): sorted, `--name value`, `-n value` for a one-letter name, its own sagemaker_* left out; each
    value as JSON reads it (read_hyperparameters), an object as k=v,k2=v2."""
    def text(value: str) -> str:
        try:
            value = json.loads(value)
        except (TypeError, ValueError):
            return str(value)
        if isinstance(value, dict):
            return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        return str(value)

    return [part for name, value in sorted(hyperparameters.items()) if not name.startswith("sagemaker_")
            for part in (f"-{name}" if len(name) == 1 else f"--{name}", text(value))]

def run_script(job: dict, channels: dict[str, list[tuple[str, bytes]]], timeout: int) -> tuple[bytes, list[dict]]:
    """(model.tar.gz, metrics) of a script-mode training job, given its channels' files (relative path, body).
    Raises RuntimeError with SageMaker's FailureReason when the job would fail."""
    hyperparameters = job.get("HyperParameters", {})
    program, source = hyperparameters.get("sagemaker_program"), hyperparameters.get("sagemaker_submit_directory")
    if not program or not source:
        raise RuntimeError("ClientError: a framework image trains a script: set the hyperparameters "
                           "sagemaker_program and sagemaker_submit_directory")
    if source.startswith("s3://") and job.get("EnableNetworkIsolation"):
        raise RuntimeError(f"ClientError: sagemaker_submit_directory {source} must be downloaded, which network "
                           f"isolation forbids; pass the source as the 'code' channel ({NETWORK_ISOLATION_CODE}...)")
    with tempfile.TemporaryDirectory(prefix="opt-ml-") as temporary:
        root = Path(temporary)
        folders = {name: root / path for name, path in (
            ("model", "model"), ("output", "output"), ("data", "output/data"), ("config", "input/config"),
            ("channels", "input/data"), ("code", "code"))}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for channel, files in channels.items():
            for relative, body in files:
                (folders["channels"] / channel / relative).parent.mkdir(parents=True, exist_ok=True)
                (folders["channels"] / channel / relative).write_bytes(body)
        archive = Path(source.replace("/opt/ml/", f"{root}/", 1)) if source.startswith("/opt/ml/") else None
        if archive is None or not archive.is_file():
            raise RuntimeError(f"ClientError: sagemaker_submit_directory {source} is not a file the job has; "
                               "under network isolation it is the code channel's sourcedir.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(folders["code"], filter="data")
        if (folders["code"] / "requirements.txt").is_file() and job.get("EnableNetworkIsolation"):
            raise RuntimeError("AlgorithmError: the source has a requirements.txt, which the toolkit installs from "
                               "PyPI; network isolation forbids that: ship the packages in the source folder")
        if not (folders["code"] / program).is_file():
            raise RuntimeError(f"AlgorithmError: the source archive has no entry point {program}")
        names = sorted(channels)
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))},  # no credentials
            "SM_MODEL_DIR": str(folders["model"]), "SM_OUTPUT_DIR": str(folders["output"]),
            "SM_OUTPUT_DATA_DIR": str(folders["data"]), "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_CONFIG_DIR": str(folders["config"]), "SM_CHANNELS": json.dumps(names),
            "SM_HPS": json.dumps({k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}),
            "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": json.dumps(["algo-1"]), "SM_NUM_CPUS": str(os.cpu_count()),
            "SM_NUM_GPUS": "0", "SM_MODULE_DIR": source, "SM_USER_ENTRY_POINT": program,
            **{f"SM_CHANNEL_{name.upper()}": str(folders["channels"] / name) for name in names},
            **{f"SM_HP_{k.upper()}": str(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")},
        }
        (folders["config"] / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (folders["config"] / "inputdataconfig.json").write_text(json.dumps(
            {c["ChannelName"]: {k: v for k, v in c.items() if k != "ChannelName"} for c in job["InputDataConfig"]}))
        (folders["config"] / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1",
                                                                          "hosts": ["algo-1"]}))
        try:
            done = subprocess.run([sys.executable, program, *_arguments(hyperparameters)], cwd=folders["code"],
                                  env=environment, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"MaxRuntimeExceeded: the script ran longer than {timeout} s") from None
        if done.returncode != 0:  # sagemaker-training's ExecuteUserScriptError, on one line; offline it also
            # carries the script's last error line, which on AWS is the last line of the job's log
            last = (done.stderr.strip().splitlines() or ["no output on stderr"])[-1]
            command = " ".join(["python", program, *_arguments(hyperparameters)])
            raise RuntimeError(f"AlgorithmError: ExecuteUserScriptError: ExitCode {done.returncode} "
                               f"ErrorMessage \"{last}\" Command \"{command}\"")
        return _archive(folders["model"]), _metrics(done.stdout)

def _metrics(stdout: str) -> list[dict]:
    """`name=value` lines the script printed (a training job's metric definitions would match them)."""
    found = []
    for line in stdout.splitlines():
        name, _, value = line.strip().partition("=")
        try:
            found.append({"MetricName": name, "Value": float(value)})
        except ValueError:
            continue
    return found
