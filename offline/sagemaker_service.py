"""A local SageMaker: the job and model APIs the workflows call, with jobs that really run.

Processing runs the job's own container command (the shipped script) with this Python, against
folders staged like /opt/ml/processing/...; training trains XGBoost on the CSV channels (label first)
and stores model.tar.gz where SageMaker would; batch transform writes `<input>.out` per input object.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.session
import numpy as np
import regex
from botocore.validate import ParamValidator

from offline.assembly import ACCOUNT, REGION
from offline.s3_objects import list_keys, split_s3

MODEL_FILE = "xgboost-model"  # the file name SageMaker's XGBoost container uses inside model.tar.gz
JOB_KINDS = {  # API noun -> (ARN resource, status key)
    "TrainingJob": ("training-job", "TrainingJobStatus"),
    "ProcessingJob": ("processing-job", "ProcessingJobStatus"),
    "TransformJob": ("transform-job", "TransformJobStatus"),
}


class SageMakerError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LocalSageMaker:
    def __init__(self) -> None:
        self.model = botocore.session.get_session().get_service_model("sagemaker")
        self.s3 = boto3.client("s3", region_name=REGION)
        self.jobs: dict[str, dict[str, dict]] = {kind: {} for kind in JOB_KINDS}
        self.models: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.injected_errors: list[tuple[str, str, str]] = []  # (operation, error code, message)
        self.injected_failures: dict[str, str] = {}  # job kind -> failure reason for its next job
        self.injected_hangs: set[str] = set()  # job kinds whose next job runs until it is stopped
        self.s3_access: list[tuple[str, str, str]] = []  # (job name, "read"/"write", s3 uri)
        self.calls: list[str] = []

    # -- test hooks ---------------------------------------------------------------------------
    def inject_error(self, operation: str, code: str, message: str, times: int = 1) -> None:
        self.injected_errors += [(operation, code, message)] * times

    def fail_next_job(self, kind: str, reason: str) -> None:
        self.injected_failures[kind] = reason

    def hang_next_job(self, kind: str) -> None:
        self.injected_hangs.add(kind)

    def in_progress(self) -> list[str]:
        """Names of the jobs still running, of every kind."""
        with self.lock:
            return sorted(name for kind, jobs in self.jobs.items() for name, job in jobs.items()
                          if job[JOB_KINDS[kind][1]] == "InProgress")

    # -- API ------------------------------------------------------------------------------------
    def handle(self, operation: str, request: dict) -> dict:
        with self.lock:
            self.calls.append(operation)
            for index, (name, code, message) in enumerate(self.injected_errors):
                if name == operation:
                    del self.injected_errors[index]
                    raise SageMakerError(code, message)
        self._validate(operation, request)
        job_operation = re.fullmatch(r"(Create|Describe|Stop)(\w+)", operation)
        if job_operation and job_operation.group(2) in JOB_KINDS:
            verb, noun = job_operation.groups()
            return getattr(self, f"_{verb.lower()}_job")(noun, request)
        if operation == "CreateModel":
            return self._create_model(request)
        if operation == "DescribeModel":
            return self._lookup(self.models, request["ModelName"], "Model")
        if operation == "AddTags":
            return {"Tags": request.get("Tags", [])}
        raise SageMakerError("UnknownOperationException", f"{operation} is not available locally")

    def _validate(self, operation: str, request: dict) -> None:
        shape = self.model.operation_model(operation).input_shape
        report = ParamValidator().validate(request, shape)
        if report.has_errors():
            raise SageMakerError("ValidationException", report.generate_report())
        check_constraints(request, shape, operation)


    def _lookup(self, table: dict, name: str, what: str) -> dict:
        with self.lock:
            if name not in table:
                raise SageMakerError("ValidationException", f"Could not find {what} \"{name}\".")
            return dict(table[name])

    def _create_job(self, kind: str, request: dict) -> dict:
        resource, status_key = JOB_KINDS[kind]
        name = request[f"{kind}Name"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}/{name.lower()}"
        now = time.time()
        with self.lock:
            if name in self.jobs[kind]:
                raise SageMakerError("ResourceInUse", f"{kind} name must be unique within an AWS account and "
                                                      f"region, and a job with this name already exists ({arn})")
            if kind == "TransformJob" and request["ModelName"] not in self.models:
                raise SageMakerError("ValidationException", f"Could not find model \"{request['ModelName']}\".")
            self.jobs[kind][name] = {**request, f"{kind}Arn": arn, status_key: "InProgress",
                                     "CreationTime": now, "LastModifiedTime": now}
            failure = self.injected_failures.pop(kind, None)
            if kind in self.injected_hangs:
                self.injected_hangs.discard(kind)
                runner = lambda _, job: self._hang(job, status_key)  # noqa: E731
            else:
                runner = getattr(self, f"_run_{resource.split('-')[0]}")
        threading.Thread(target=self._run, args=(kind, name, runner, failure), daemon=True).start()
        return {f"{kind}Arn": arn}

    def _describe_job(self, kind: str, request: dict) -> dict:
        return self._lookup(self.jobs[kind], request[f"{kind}Name"], f"job {kind}")

    def _stop_job(self, kind: str, request: dict) -> dict:
        job = self._describe_job(kind, request)
        with self.lock:
            self.jobs[kind][job[f"{kind}Name"]][JOB_KINDS[kind][1]] = "Stopped"
        return {}

    def _create_model(self, request: dict) -> dict:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{request['ModelName'].lower()}"
        with self.lock:
            if request["ModelName"] in self.models:
                raise SageMakerError("ValidationException", f"Cannot create already existing model \"{arn}\".")
            self.models[request["ModelName"]] = {**request, "ModelArn": arn, "CreationTime": time.time()}
        return {"ModelArn": arn}

    # -- job execution --------------------------------------------------------------------------
    def _run(self, kind: str, name: str, runner: Callable[[str, dict], dict], failure: str | None) -> None:
        status_key = JOB_KINDS[kind][1]
        job = self.jobs[kind][name]
        started = time.time()
        try:
            if failure:
                raise RuntimeError(failure)
            result, status = runner(name, job), "Completed"
        except Exception as error:  # a failed job, as SageMaker reports one
            result, status = {"FailureReason": str(error) or type(error).__name__}, "Failed"
        with self.lock:
            if job[status_key] == "Stopped":
                return
            prefix = kind.removesuffix("Job")
            job.update(result, **{status_key: status, f"{prefix}StartTime": started,
                                  f"{prefix}EndTime": time.time(), "LastModifiedTime": time.time()})

    @staticmethod
    def _hang(job: dict, status_key: str) -> dict:
        """A job that makes no progress (a stuck container): it ends only when stopped, or after 5 minutes."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job[status_key] != "Stopped":
            time.sleep(0.05)
        raise RuntimeError("InternalServerError: the job made no progress")

    def _objects(self, job: str, uri: str) -> list[tuple[str, bytes]]:
        """(key relative to the prefix's folder, body) for every object under an S3 prefix."""
        bucket, prefix = split_s3(uri)
        folder = prefix[: prefix.rfind("/") + 1]
        keys = list_keys(self.s3, bucket, prefix)
        if not keys:
            raise RuntimeError(f"ClientError: No S3 objects found under S3 URL \"{uri}\" given in input data source.")
        objects = []
        for key in keys:
            self.s3_access.append((job, "read", f"s3://{bucket}/{key}"))
            objects.append((key[len(folder):], self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        return objects

    def _put(self, job: str, uri: str, body: bytes) -> None:
        bucket, key = split_s3(uri)
        self.s3_access.append((job, "write", uri))
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def _run_processing(self, name: str, job: dict) -> dict:
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as root:
            local = lambda path: path.replace("/opt/ml/", f"{root}/opt/ml/")  # noqa: E731
            for item in job.get("ProcessingInputs", []):
                target = Path(local(item["S3Input"]["LocalPath"]))
                for relative, body in self._objects(name, item["S3Input"]["S3Uri"]):
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    (target / relative).write_bytes(body)
            outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
            for item in outputs:
                Path(local(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
            app = job["AppSpecification"]
            command = [local(part) for part in app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])]
            if command and command[0] in ("python", "python3"):
                command[0] = sys.executable  # this environment has the container's pandas and scikit-learn
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"AlgorithmError: exit code {done.returncode}: {last}")
            for item in outputs:
                folder = Path(local(item["S3Output"]["LocalPath"]))
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    self._put(name, f"{item['S3Output']['S3Uri'].rstrip('/')}/{path.relative_to(folder)}",
                              path.read_bytes())
        return {}

    def _run_training(self, name: str, job: dict) -> dict:
        import xgboost

        channels = {c["ChannelName"]: self._csv(name, c["DataSource"]["S3DataSource"]["S3Uri"])
                    for c in job["InputDataConfig"]}
        if "train" not in channels:
            raise RuntimeError("ClientError: Channel 'train' is required")
        parameters = {key: _number(value) for key, value in job.get("HyperParameters", {}).items()}
        rounds = int(parameters.pop("num_round", 10))
        data = {channel: xgboost.DMatrix(rows[:, 1:], label=rows[:, 0]) for channel, rows in channels.items()}
        history: dict = {}
        booster = xgboost.train({**parameters, "verbosity": 0, "nthread": 1}, data["train"], num_boost_round=rounds,
                                evals=list((matrix, channel) for channel, matrix in data.items()),
                                evals_result=history, verbose_eval=False)
        archive, raw = io.BytesIO(), bytes(booster.save_raw("json"))
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            info = tarfile.TarInfo(MODEL_FILE)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        artifacts = f"{job['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
        self._put(name, artifacts, archive.getvalue())
        metrics = [{"MetricName": f"{channel}:{metric}", "Value": float(values[-1]), "Timestamp": time.time()}
                   for channel, by_metric in history.items() for metric, values in by_metric.items()]
        return {"ModelArtifacts": {"S3ModelArtifacts": artifacts}, "FinalMetricDataList": metrics,
                "SecondaryStatus": "Completed"}

    def _run_transform(self, name: str, job: dict) -> dict:
        import xgboost

        model = self.models[job["ModelName"]]
        (_, archive), = self._objects(name, model["PrimaryContainer"]["ModelDataUrl"])
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            booster = xgboost.Booster()
            booster.load_model(bytearray(tar.extractfile(MODEL_FILE).read()))
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        output = job["TransformOutput"]["S3OutputPath"].rstrip("/")
        for relative, body in self._objects(name, source):
            rows = _parse_csv(body, f"{source}{relative}")
            predictions = booster.predict(xgboost.DMatrix(rows))
            self._put(name, f"{output}/{relative}.out", "".join(f"{p:.6f}\n" for p in predictions).encode())
        return {}

    def _csv(self, job: str, uri: str) -> np.ndarray:
        return np.vstack([_parse_csv(body, uri) for _, body in self._objects(job, uri)])


def _parse_csv(body: bytes, where: str) -> np.ndarray:
    try:
        return np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    except ValueError as error:
        raise RuntimeError(f"ClientError: cannot read CSV {where}: {error}") from None


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pattern(text: str) -> regex.Pattern:
    """A model's (Java) pattern for the `regex` module, which knows \\p{L}; UTF-16 surrogate pairs become the
    code points they stand for. A pattern that still does not compile fails the request, never passes it."""
    return regex.compile(text.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF"))


def _violation(value: Any, path: str, constraint: str) -> SageMakerError:
    return SageMakerError("ValidationException",
                          f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: "
                          f"Member must {constraint}")


def check_constraints(value: Any, shape: Any, path: str) -> None:
    """What SageMaker checks and botocore's validator does not: maximum lengths, sizes and values, patterns,
    enums (botocore checks only types, required members and minimums)."""
    limits = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                check_constraints(member, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in limits and len(value) > limits["max"]:
            raise _violation(value, path, f"have length less than or equal to {limits['max']}")
        for item in value:
            check_constraints(item, shape.member, f"{path}.member")
    elif shape.type_name == "map" and isinstance(value, dict):
        if "max" in limits and len(value) > limits["max"]:
            raise _violation(value, path, f"have length less than or equal to {limits['max']}")
        for key, item in value.items():
            check_constraints(key, shape.key, f"{path}.key")
            check_constraints(item, shape.value, f"{path}.{key}")
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in limits and len(value) > limits["max"]:
            raise _violation(value, path, f"have length less than or equal to {limits['max']}")
        if "pattern" in limits and not _pattern(limits["pattern"]).fullmatch(value):
            raise _violation(value, path, f"satisfy regular expression pattern: {limits['pattern']}")
        if shape.enum and value not in shape.enum:
            raise _violation(value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        if "max" in limits and value > limits["max"]:
            raise _violation(value, path, f"have value less than or equal to {limits['max']}")
