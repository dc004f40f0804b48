"""SageMaker jobs that really run, offline, as their image runs them: processing runs the job's own command (the
shipped script) with this Python against folders staged like /opt/ml/processing/...; training runs the built-in
XGBoost algorithm on CSV channels (label first), or a framework image's script in script mode
(offline/runtimes/script_mode.py), and stores model.tar.gz where SageMaker would; transform serves the model's containers
(offline/runtimes/serving.py) and writes `<input>.out` per input object; tuning searches the given hyperparameter ranges
with real training jobs and reports the best as SageMaker does. An image without a runner is refused."""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from offline.runtimes.s3_objects import list_keys, split_s3
from offline.runtimes.image_versions import report_versions
from offline.runtimes.script_mode import run_script
from offline.runtimes.serving import CSV, MODEL_FILE, ServedModel, repository
from offline.runtimes import spark_jobs
from stacks.settings.image_table import BUILT_IN_ALGORITHM, BY_FRAMEWORK, IMAGE_TABLE
# What a training job's definition shares with its tuning job's TrainingJobDefinition.
SPARK = BY_FRAMEWORK["spark"]  # a PySpark application through smspark-submit (offline/runtimes/spark_jobs.py)
SCRIPT_MODE_IMAGES = tuple(row.repository for row in IMAGE_TABLE if row.script_mode)  # toolkit runs a user's script
MESSAGE_FILE = "/opt/ml/output/message"  # what a processing container tells; its first 1 KB is the ExitMessage
MESSAGE_BYTES = 1024
TRAINING_FIELDS = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                   "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                   "CheckpointConfig", "EnableManagedSpotTraining")


class JobFailure(RuntimeError):
    """A job that failed, with what its description shows besides the FailureReason (the message)."""

    def __init__(self, reason: str, described: dict) -> None:
        super().__init__(reason)
        self.described = described


class JobRunners:
    """One runner per job kind (the API noun); each returns what the job's description gains when it completes."""

    def __init__(self, s3: Any, record_child: Callable[[str, str, dict, dict], None]) -> None:
        self.s3 = s3
        self.record_child = record_child  # (kind, name, request, result): a job another job started
        self.s3_access: list[tuple[str, str, str]] = []  # (job name, "read"/"write", s3 uri)
        self.by_kind = {"ProcessingJob": self.processing, "TrainingJob": self.training,
                        "TransformJob": self.transform, "HyperParameterTuningJob": self.tuning}

    # -- S3 ---------------------------------------------------------------------------------------
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

    def _object(self, job: str, uri: str) -> bytes:
        """One object, fetched by its key (SageMaker reads a ModelDataUrl so: GetObject, no listing)."""
        bucket, key = split_s3(uri)
        self.s3_access.append((job, "read", uri))
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _put(self, job: str, uri: str, body: bytes) -> None:
        bucket, key = split_s3(uri)
        self.s3_access.append((job, "write", uri))
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def _csv(self, job: str, uri: str) -> np.ndarray:
        return np.vstack([_parse_csv(body, uri) for _, body in self._objects(job, uri)])

    # -- runners ----------------------------------------------------------------------------------
    def processing(self, name: str, job: dict) -> dict:
        """Runs the job; the container's message file becomes the ExitMessage, whether it completed or failed."""
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as root:
            try:
                self._processing(name, job, root)
            except RuntimeError as error:
                raise JobFailure(str(error), _exit_message(root)) from None
            return _exit_message(root)

    def _processing(self, name: str, job: dict, root: str) -> None:
        """Stage the inputs as /opt/ml/processing/... under root, run the job, upload its outputs."""
        local = lambda path: path.replace("/opt/ml/", f"{root}/opt/ml/")  # noqa: E731
        for item in job.get("ProcessingInputs", []):
            target = Path(local(item["S3Input"]["LocalPath"]))
            for relative, body in self._objects(name, item["S3Input"]["S3Uri"]):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_bytes(body)
        outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
        Path(local(MESSAGE_FILE)).parent.mkdir(parents=True)  # the image has /opt/ml/output
        for item in outputs:
            Path(local(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        app = job["AppSpecification"]
        if repository(app["ImageUri"]) == SPARK.repository:
            instances = job.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1)
            print(f"{name}: a Spark job of {instances} instance{'s' if instances > 1 else ''}, run in local Spark "
                  f"{SPARK.libraries['pyspark']} on this machine's {os.cpu_count()} cores", flush=True)
            report_versions(SPARK.repository, print, spark_jobs.version_of)
            for path, uri in spark_jobs.run(job, root, local):  # the image publishes Spark's event logs
                self._put(name, uri, path.read_bytes())
        else:
            report_versions(repository(app["ImageUri"]), print)
            self._run_command(app, local, job)
        for item in outputs:
            folder = Path(local(item["S3Output"]["LocalPath"]))
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                self._put(name, f"{item['S3Output']['S3Uri'].rstrip('/')}/{path.relative_to(folder)}",
                          path.read_bytes())

    @staticmethod
    def _run_command(app: dict, local: Callable[[str], str], job: dict) -> None:
        """The job's container command, with this Python (it has the containers' pandas, scikit-learn, xgboost)."""
        command = [local(part) for part in app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])]
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, **job.get("Environment", {})},
                              timeout=job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"AlgorithmError: exit code {done.returncode}: {last}")

    def training(self, name: str, job: dict) -> dict:
        """What the job's image runs: the built-in XGBoost algorithm, or the user's script (script mode)."""
        image = job["AlgorithmSpecification"]["TrainingImage"]
        script = job.get("HyperParameters", {}).get("sagemaker_program")
        if repository(image) == BUILT_IN_ALGORITHM.repository and not script:
            if job.get("ResourceConfig", {}).get("InstanceCount", 1) > 1:
                return self._xgboost_distributed(name, job)
            return self._xgboost_algorithm(name, job)
        if repository(image) in SCRIPT_MODE_IMAGES:
            channels = {c["ChannelName"]: self._objects(name, c["DataSource"]["S3DataSource"]["S3Uri"])
                        for c in job["InputDataConfig"]}
            timeout = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
            report_versions(repository(image), print)
            archive, metrics = run_script(job, channels, timeout)
            artifacts = f"{job['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
            self._put(name, artifacts, archive)
            return {"ModelArtifacts": {"S3ModelArtifacts": artifacts}, "SecondaryStatus": "Completed",
                    "FinalMetricDataList": [{**m, "Timestamp": time.time()} for m in metrics]}
        raise RuntimeError(f"ClientError: image {image} has no offline training runner; register one in "
                           "offline/runtimes/sagemaker_jobs.py JobRunners.training")

    def _xgboost_algorithm(self, name: str, job: dict) -> dict:
        import xgboost

        channels = {c["ChannelName"]: self._csv(name, c["DataSource"]["S3DataSource"]["S3Uri"])
                    for c in job["InputDataConfig"]}
        if "train" not in channels:
            raise RuntimeError("ClientError: Channel 'train' is required")
        parameters, rounds = _boosting(job)
        data = {channel: xgboost.DMatrix(rows[:, 1:], label=rows[:, 0]) for channel, rows in channels.items()}
        booster, history = _boost(parameters, rounds, data)
        return self._trained(name, job, bytes(booster.save_raw("json")), history, rounds)

    def _trained(self, name: str, job: dict, raw: bytes, history: dict, rounds: int) -> dict:
        """Store the model as SageMaker uploads /opt/ml/model (model.tar.gz with `xgboost-model`); the result."""
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            info = tarfile.TarInfo(MODEL_FILE)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        artifacts = f"{job['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
        self._put(name, artifacts, archive.getvalue())
        spot = {}
        if job.get("EnableManagedSpotTraining"):  # the container checkpoints each round; keep the last, as it would
            self._put(name, f"{job['CheckpointConfig']['S3Uri'].rstrip('/')}/xgboost-checkpoint.{rounds - 1}", raw)
            spot = {"TrainingTimeInSeconds": 1, "BillableTimeInSeconds": 1}
        metrics = [{"MetricName": f"{channel}:{metric}", "Value": float(values[-1]), "Timestamp": time.time()}
                   for channel, by_metric in history.items() for metric, values in by_metric.items()]
        return {"ModelArtifacts": {"S3ModelArtifacts": artifacts}, "FinalMetricDataList": metrics,
                "SecondaryStatus": "Completed", **spot}

    def _xgboost_distributed(self, name: str, job: dict) -> dict:
        """InstanceCount > 1, as the 1.7-1 container trains it: each host (algo-1..algo-N) gets its channels' files
        (ShardedByS3Key: its share of the objects; FullyReplicated: all); a host without training data, or without
        validation data when there is a validation channel, leaves the cluster with a warning; the hosts with data
        train one model over xgboost's collective (one host alone trains by itself) and the first of them, by
        name, saves it. Each host is its own process, reading only its own files."""
        channels = [c["ChannelName"] for c in job["InputDataConfig"]]
        if "train" not in channels:
            raise RuntimeError("ClientError: Channel 'train' is required")
        hosts = [f"algo-{number}" for number in range(1, job["ResourceConfig"]["InstanceCount"] + 1)]
        parameters, rounds = _boosting(job)
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as root:
            for channel in job["InputDataConfig"]:
                source = channel["DataSource"]["S3DataSource"]
                objects = self._objects(name, source["S3Uri"])
                for index, host in enumerate(hosts):
                    folder = Path(root, host, "input", "data", channel["ChannelName"])
                    folder.mkdir(parents=True)
                    for relative, body in _host_share(objects, index, len(hosts),
                                                      source.get("S3DataDistributionType", "FullyReplicated")):
                        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                        (folder / relative).write_bytes(body)
            with_data = []
            for host in hosts:
                missing = [c for c in ("train", "validation") if c in channels and not _has_data(root, host, c)]
                if missing:  # the container's warning (algorithm_mode/train.py), then that host exits 0
                    print(f"[{host}] Host {host} does not have {missing[0]} data; it will not be used in "
                          "distributed training.")
                else:
                    with_data.append(host)
            if not with_data:  # distributed.rabit_run's RuntimeError; SageMaker reports the toolkit's failure file,
                # "framework error:", the traceback (left out here) and the error
                raise RuntimeError("AlgorithmError: framework error: RuntimeError: No hosts received training data.")
            report_versions(BUILT_IN_ALGORITHM.repository, print)
            config = {"channels": channels, "sources": {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                                                        for c in job["InputDataConfig"]},
                      "parameters": parameters, "rounds": rounds}
            _run_hosts(root, with_data, config, job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
            master = Path(root, sorted(with_data)[0])  # the container sorts host names as text: algo-10 < algo-2
            history = json.loads((master / "output" / "history.json").read_text())
            return self._trained(name, job, (master / "model" / MODEL_FILE).read_bytes(), history, rounds)

    def transform(self, name: str, job: dict) -> dict:
        """Each input object through the model's containers (the whole object as one request), as `<key>.out`."""
        model = self.load_model(name, job["_model"], batch=True)  # the model description the service attached
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        content_type = job["TransformInput"].get("ContentType", CSV)
        accept = job["TransformOutput"].get("Accept", CSV)
        output = job["TransformOutput"]["S3OutputPath"].rstrip("/")
        for relative, body in self._objects(name, source):
            try:
                answer, _ = model(body, content_type, accept)
            except Exception as error:
                raise RuntimeError(f"ClientError: {source}{relative}: {error}") from None
            self._put(name, f"{output}/{relative}.out", answer)
        return {}

    def load_model(self, user: str, model: dict, batch: bool = False) -> ServedModel:
        """The model's containers as their images serve them (under batch transform if `batch`), each artifact
        read on behalf of `user`."""
        return ServedModel(model, lambda uri: self._object(user, uri), batch)

    def tuning(self, name: str, job: dict) -> dict:
        """A random search (seeded by the job's name) over the ranges, each candidate a real training job."""
        config, definition = job["HyperParameterTuningJobConfig"], job["TrainingJobDefinition"]
        objective = config["HyperParameterTuningJobObjective"]
        ranges = config.get("ParameterRanges", {})
        sampler = random.Random(name)
        trained = []
        for number in range(1, config["ResourceLimits"]["MaxNumberOfTrainingJobs"] + 1):
            tuned = _sample(ranges, sampler)
            child = f"{name}-{number:03d}-{uuid.uuid4().hex[:8]}"
            request = {**{k: definition[k] for k in TRAINING_FIELDS if k in definition}, "TrainingJobName": child,
                       "HyperParameters": {**definition.get("StaticHyperParameters", {}), **tuned}}
            if "CheckpointConfig" in definition:  # each training job of a tuning job checkpoints in its own folder
                request["CheckpointConfig"] = {"S3Uri": f"{definition['CheckpointConfig']['S3Uri'].rstrip('/')}/{child}"}
            result = self.training(child, request)
            self.record_child("TrainingJob", child, {**request, "TuningJobArn": job["HyperParameterTuningJobArn"]},
                              result)
            metric = next((m["Value"] for m in result["FinalMetricDataList"]
                           if m["MetricName"] == objective["MetricName"]), None)
            if metric is None:
                raise RuntimeError(f"ClientError: objective metric {objective['MetricName']} was not emitted; "
                                   f"emitted: {', '.join(m['MetricName'] for m in result['FinalMetricDataList'])}")
            trained.append((metric, child, tuned))
        pick = min if objective["Type"] == "Minimize" else max
        value, best, tuned = pick(trained, key=lambda t: t[0])
        count = len(trained)
        return {"BestTrainingJob": {
                    "TrainingJobName": best, "TrainingJobStatus": "Completed", "TunedHyperParameters": tuned,
                    "FinalHyperParameterTuningJobObjectiveMetric": {**objective, "Value": value}},
                "TrainingJobStatusCounters": {"Completed": count, "InProgress": 0, "RetryableError": 0,
                                              "NonRetryableError": 0, "Stopped": 0},
                "ObjectiveStatusCounters": {"Succeeded": count, "Pending": 0, "Failed": 0}}


def _exit_message(root: str) -> dict:
    """{"ExitMessage": the first 1 KB of the message file} when the container wrote one (SageMaker fails a job
    whose message is not UTF-8, with a ClientError)."""
    path = Path(root + MESSAGE_FILE)
    if not path.is_file():
        return {}
    body = path.read_bytes()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise RuntimeError(f"ClientError: {MESSAGE_FILE} is not UTF-8 encoded") from None
    return {"ExitMessage": body[:MESSAGE_BYTES].decode("utf-8", errors="ignore")}


def _sample(ranges: dict, sampler: random.Random) -> dict[str, str]:
    """One candidate: a value from each range, as SageMaker passes hyperparameters (strings)."""
    values: dict[str, str] = {}
    for item in ranges.get("IntegerParameterRanges", []):
        values[item["Name"]] = str(sampler.randint(int(item["MinValue"]), int(item["MaxValue"])))
    for item in ranges.get("ContinuousParameterRanges", []):
        low, high = float(item["MinValue"]), float(item["MaxValue"])
        if item.get("ScalingType") == "Logarithmic":
            values[item["Name"]] = f"{float(np.exp(sampler.uniform(np.log(low), np.log(high)))):.6g}"
        else:
            values[item["Name"]] = f"{sampler.uniform(low, high):.6g}"
    for item in ranges.get("CategoricalParameterRanges", []):
        values[item["Name"]] = sampler.choice(item["Values"])
    return values


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


# -- built-in XGBoost, the training itself (one host, or each host of a distributed job) -------------------------
def _boosting(job: dict) -> tuple[dict, int]:
    """The job's hyperparameters as xgboost takes them, and the number of rounds."""
    parameters = {key: _number(value) for key, value in job.get("HyperParameters", {}).items()}
    return parameters, int(parameters.pop("num_round", 10))


def _boost(parameters: dict, rounds: int, data: dict) -> tuple[Any, dict]:
    """Train on data["train"], evaluating every channel; in a distributed job, inside the collective."""
    import xgboost

    history: dict = {}
    booster = xgboost.train({**parameters, "verbosity": 0, "nthread": 1}, data["train"], num_boost_round=rounds,
                            evals=list((matrix, channel) for channel, matrix in data.items()),
                            evals_result=history, verbose_eval=False)
    return booster, history


def _host_share(objects: list, index: int, hosts: int, distribution: str) -> list:
    """The objects host number `index` receives. AWS documents only that with ShardedByS3Key each instance gets
    about 1/n of the objects (whole objects; none when there are fewer objects than instances), not which ones:
    offline deals them out in key order, object i to host i mod n."""
    return objects if distribution == "FullyReplicated" else objects[index::hosts]


def _has_data(root: str, host: str, channel: str) -> bool:
    """The container's test (data_utils.get_size): the channel's files hold more than zero bytes."""
    return any(p.stat().st_size for p in Path(root, host, "input", "data", channel).rglob("*") if p.is_file())


def _run_hosts(root: str, hosts: list[str], config: dict, timeout: float) -> None:
    """One process per host with data, joined by xgboost's tracker when there are several; the first failure
    (its failure file, as SageMaker reports a host's) fails the job and ends the other hosts."""
    from xgboost.core import XGBoostError
    from xgboost.tracker import RabitTracker

    tracker = None
    if len(hosts) > 1:  # the container starts it on the first host; here the emulator runs it for them
        tracker = RabitTracker(n_workers=len(hosts), host_ip="127.0.0.1", sortby="task", timeout=int(timeout))
        tracker.start()
    running = {}
    for host in sorted(hosts):
        host_config = {**config, "host": host, "folder": str(Path(root, host)), "master": host == sorted(hosts)[0],
                       "tracker": tracker.worker_args() if tracker else None}
        Path(root, host, "output").mkdir(parents=True, exist_ok=True)
        Path(root, host, "config.json").write_text(json.dumps(host_config))
        with Path(root, host, "output", "stderr").open("w") as errors:
            running[host] = subprocess.Popen(
                [sys.executable, "-c", "import sys; from offline.runtimes.sagemaker_jobs import xgboost_host; "
                                       "xgboost_host(sys.argv[1])", str(Path(root, host, "config.json"))],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                              os.environ.get("PYTHONPATH")]))},
                stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + timeout
    failure = None
    try:
        while failure is None and any(process.poll() is None for process in running.values()):
            if time.monotonic() > deadline:
                failure = f"MaxRuntimeExceeded: the hosts ran past MaxRuntimeInSeconds ({timeout:g}); offline ends them"
            failure = failure or next((_host_failure(root, host, process) for host, process in running.items()
                                       if process.poll() not in (None, 0)), None)
            time.sleep(0.05)
        failure = failure or next((_host_failure(root, host, process) for host, process in running.items()
                                   if process.returncode != 0), None)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        if tracker is not None:
            if failure is None:
                tracker.wait_for(60)
            try:
                tracker.free()
            except XGBoostError:  # a tracker whose workers died reports it here; the host's failure says why
                if failure is None:
                    raise
    if failure:
        raise RuntimeError(failure)


def _host_failure(root: str, host: str, process: subprocess.Popen) -> str:
    written = Path(root, host, "output", "failure")
    if written.is_file():
        return written.read_text()
    last = (Path(root, host, "output", "stderr").read_text().strip().splitlines() or ["no output"])[-1]
    return f"AlgorithmError: {host} exited with code {process.returncode}: {last}"


def xgboost_host(config_file: str) -> None:
    """One host of a built-in XGBoost training job (its own process): read its channel folders, train (inside the
    collective when the job has several hosts with data), and, on the saving host, write the model and metrics.
    A failure goes to output/failure, as the container's toolkit writes /opt/ml/output/failure."""
    import contextlib

    import xgboost
    from xgboost import collective

    config = json.loads(Path(config_file).read_text())
    folder = Path(config["folder"])
    try:
        data = {}
        for channel in config["channels"]:
            files = sorted(p for p in (folder / "input" / "data" / channel).rglob("*") if p.is_file())
            rows = np.vstack([_parse_csv(p.read_bytes(), config["sources"][channel]) for p in files
                              if p.stat().st_size])
            data[channel] = xgboost.DMatrix(rows[:, 1:], label=rows[:, 0])
        group = (collective.CommunicatorContext(**config["tracker"], dmlc_task_id=config["host"])
                 if config["tracker"] else contextlib.nullcontext())
        with group:
            booster, history = _boost(config["parameters"], config["rounds"], data)
        if config["master"]:
            (folder / "model").mkdir(exist_ok=True)
            (folder / "model" / MODEL_FILE).write_bytes(bytes(booster.save_raw("json")))
            (folder / "output" / "history.json").write_text(json.dumps(history))
    except Exception as error:  # noqa: BLE001 - every failure is the job's, reported as SageMaker reports it
        (folder / "output" / "failure").write_text(str(error) or type(error).__name__)
        sys.exit(1)
