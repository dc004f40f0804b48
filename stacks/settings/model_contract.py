"""The model contract of BuildAndRegister, in one place: which column is the label, which task, which columns are
categorical or dropped, which model trains, and when a model is good enough to register.

Each is a setting (`-c task=multiclass`, cdk.json), checked at synthesis with one line naming the fix. The jobs
receive the contract as arguments, the state machine as ASL fragments (`fragments`), so nothing downstream
guesses it. What each task measures, and which direction is better, is `processing/metrics.py`'s.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from contract.serving import PREPROCESSOR_PROGRAM, serving_environment
from contract.data import TASKS
from processing.metrics import BY_TASK
from stacks.settings.config import ConfigError, Setting, whole_number
from stacks.settings.image_table import BUILT_IN_ALGORITHM, IMAGE_TABLE

ROOT = Path(__file__).resolve().parents[2]
# A column name as a job argument: printable, no comma (lists are comma-separated); SageMaker takes each
# container argument up to 256 characters.
COLUMN = re.compile(r"^[^,\r\n\t]{1,128}$")
ARGUMENT_LIMIT = 256
BUILT_IN = "xgboost"
# Framework -> the placeholder of its image: the images a team's script may run in, those whose toolkit runs script
# mode (stacks/settings/image_table.py).
FRAMEWORKS = {row.framework: row.placeholder for row in sorted(IMAGE_TABLE, key=lambda row: row.framework)
              if row.script_mode}
# Where the training toolkit finds the source under network isolation: the `code` channel's one file, the
# shipped source folder (its asset's object name; models.md).
SUBMIT_DIRECTORY = "/opt/ml/input/data/code/${ModelSourceFile}"
# Built-in XGBoost per task: the objective whose answers are the contract's (a probability of classes[1], K
# probabilities, a value), fixed by the task, and a default eval_metric; num_class joins at run time, from the
# imported data.
XGBOOST_OBJECTIVES = {"binary": ("binary:logistic", "auc"), "multiclass": ("multi:softprob", "mlogloss"),
                      "regression": ("reg:squarederror", "rmse")}


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"invalid setting {key}={value!r}: expected {allowed}")


def _column(key: str, value: Any) -> str:
    text = str(value).strip()
    if not COLUMN.fullmatch(text):
        raise _fail(key, value, "a column name of the data set's header (1 to 128 characters, no comma)")
    return text


def _columns(keyword: str | None):
    def parse(key: str, value: Any) -> tuple[str, ...] | None:
        text = ",".join(value) if isinstance(value, list) else str(value).strip()
        if keyword and text == keyword:
            return None
        names = tuple(name.strip() for name in text.split(",")) if text else ()
        if not all(COLUMN.fullmatch(name) for name in names) or len(set(names)) != len(names):
            raise _fail(key, value, "a comma-separated list of distinct column names"
                                    + (f", or {keyword}" if keyword else " (or empty)"))
        if len(",".join(names)) > ARGUMENT_LIMIT:
            raise _fail(key, value, f"at most {ARGUMENT_LIMIT} characters in all (SageMaker's limit for one job "
                                    "argument)")
        return names
    return parse


def _task(key: str, value: Any) -> str:
    if value not in TASKS:
        raise _fail(key, value, "one of " + ", ".join(TASKS))
    return value


def _optional_number(key: str, value: Any) -> float | None:
    if value in ("", None):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or number != number or number in (float("inf"), float("-inf")):
        raise _fail(key, value, "a number (or empty: the task's default threshold)")
    return number


def _optional_text(key: str, value: Any) -> str | None:
    return None if value in ("", None) else str(value)


def _model(key: str, value: Any) -> str:
    text = str(value).strip()
    if text != BUILT_IN and not (ROOT / text / "model.json").is_file():
        raise _fail(key, value, f"{BUILT_IN} (SageMaker's built-in algorithm) or a folder of this project "
                                "holding your model.json, training and serving scripts (see training/)")
    return text


SETTINGS: dict[str, Setting] = {
    "label_column": ("label", _column),
    "task": ("binary", _task),
    "categorical_columns": ("auto", _columns("auto")),
    "drop_columns": ("", _columns(None)),
    # Columns whose groups the model is compared across (the gate metric per group, test set and traffic).
    "bias_columns": ("", _columns(None)),
    "gate_metric": ("", _optional_text),
    "gate_threshold": ("", _optional_number),
    "model": (BUILT_IN, _model),
    # Scale: above this much training data (the import's train.csv, MiB), training runs on several instances.
    "training_instance_count": (2, whole_number(1, 20)),
    "distributed_above_mib": (1024, whole_number(1, 1_000_000)),
    # Above this much data (the data set's objects, MiB; 0: always), the data job runs on Spark, on
    # processing_instance_count instances (processing/spark_data_job.py).
    "spark_above_mib": (5120, whole_number(0, 10_000_000)),
    "processing_instance_count": (2, whole_number(1, 20)),
}


@dataclass(frozen=True)
class Model:
    """What trains and serves: SageMaker's built-in XGBoost, or a team's script in a framework image."""

    image: str  # the image's placeholder (stacks/settings/images.py)
    hyperparameters: Mapping[str, str]  # defaults a run may override
    rules: list  # how validate_input checks a run's hyperparameters (see its rules.declared)
    fixed: Mapping[str, str]  # hyperparameters the kit sets (the run may not)
    serving: Mapping[str, str] | None  # the model container's environment (None: the built-in algorithm's)
    source: str | None = None  # the script's folder, shipped as sourcedir.tar.gz

    @classmethod
    def built_in(cls, task: str) -> "Model":
        objective, eval_metric = XGBOOST_OBJECTIVES[task]
        return cls(image=BUILT_IN_ALGORITHM.placeholder,
                   hyperparameters={"num_round": "50" if task == "regression" else "20", "eval_metric": eval_metric},
                   rules=["fixed", "objective", "num_class"], fixed={"objective": objective}, serving=None)

    @classmethod
    def script(cls, folder: str, task: str) -> "Model":
        where = f"{folder}/model.json"
        try:
            declared = json.loads((ROOT / where).read_text())
            framework, train, serve = declared["framework"], declared["train"], declared["serve"]
            tasks, parameters = declared["tasks"], declared.get("hyperparameters", {})
            defaults = {name: str(spec["default"]) for name, spec in parameters.items()}
            rules = {name: spec["rule"] for name, spec in parameters.items()}
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"invalid {where}: {error}; expected {{\"framework\": \"sklearn\", \"train\": "
                              "\"train.py\", \"serve\": \"inference.py\", \"tasks\": [...], \"hyperparameters\": "
                              "{name: {\"default\": ..., \"rule\": [...]}}}") from None
        if framework not in FRAMEWORKS:
            raise ConfigError(f"invalid {where}: framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
        if task not in tasks:
            raise _fail("task", task, f"one of the tasks {where} declares ({', '.join(tasks)}), or another model")
        for script in (train, serve):
            if not (ROOT / folder / script).is_file():
                raise ConfigError(f"invalid {where}: {script!r} is not a file of {folder}")
        # The script learns its task as an argument (--task), like its other hyperparameters.
        fixed = {"sagemaker_program": train, "sagemaker_submit_directory": SUBMIT_DIRECTORY, "task": task}
        return cls(image=FRAMEWORKS[framework], hyperparameters=defaults, rules=["schema", rules, *fixed],
                   fixed=fixed, serving=serving_environment(serve), source=folder)


@dataclass(frozen=True)
class ModelContract:
    label_column: str
    task: str
    categorical_columns: tuple[str, ...] | None  # None: every column with a value that is not a number
    drop_columns: tuple[str, ...]
    gate_metric: str
    gate_threshold: float
    model: Model
    training_instance_count: int = 1
    distributed_above_mib: int = 1024
    bias_columns: tuple[str, ...] = ()
    spark_above_mib: int = 5120
    processing_instance_count: int = 2

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "ModelContract":
        task, label = settings["task"], settings["label_column"]
        metrics = BY_TASK[task].metrics
        metric = settings["gate_metric"] or BY_TASK[task].gate_metric
        if metric not in metrics:
            raise _fail("gate_metric", metric, f"a metric of task={task}: " + ", ".join(metrics))
        threshold = settings["gate_threshold"]
        categorical, dropped = settings["categorical_columns"], settings["drop_columns"] or ()
        bias = settings["bias_columns"] or ()
        for key, names in (("categorical_columns", categorical or ()), ("drop_columns", dropped), ("bias_columns", bias)):
            if label in names:
                raise _fail(key, ",".join(names), f"columns other than the label ({label!r})")
        both = sorted(set(categorical or ()) & set(dropped))
        if both:
            raise _fail("categorical_columns", ",".join(categorical), f"no dropped column (drop_columns has {both[0]!r})")
        model = (Model.built_in(task) if settings["model"] == BUILT_IN else Model.script(settings["model"], task))
        # The kit shards data for the built-in XGBoost only: a script model, which may not distribute, trains on
        # one instance whatever the data's size.
        instances = 1 if model.source else settings["training_instance_count"]
        return cls(label_column=label, task=task, categorical_columns=categorical, drop_columns=tuple(dropped),
                   gate_metric=metric, gate_threshold=BY_TASK[task].gate_threshold if threshold is None else threshold,
                   model=model, training_instance_count=instances,
                   distributed_above_mib=settings["distributed_above_mib"], bias_columns=tuple(bias),
                   spark_above_mib=settings["spark_above_mib"],
                   processing_instance_count=settings["processing_instance_count"])

    @property
    def better(self) -> str:
        return BY_TASK[self.task].metrics[self.gate_metric]

    def arguments(self) -> list[str]:
        """The contract as the import job's arguments (processing/import_dataset.py)."""
        return ["--label-column", self.label_column, "--task", self.task,
                "--categorical-columns", "auto" if self.categorical_columns is None else ",".join(self.categorical_columns),
                "--drop-columns", ",".join(self.drop_columns) or "none",
                "--bias-columns", ",".join(self.bias_columns) or "none"]

    def fragments(self) -> dict[str, Any]:
        """What the BuildAndRegister ASL takes of the contract: `${Name}` fields it fills."""
        model = self.model
        # The training split is sharded by file when the run trains on several instances (PlanTraining says).
        channels = [{"ChannelName": split, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", **({"S3DataDistributionType.$": "$.plan.distribution"} if split == "train"
                                         else {"S3DataDistributionType": "FullyReplicated"}),
            "S3Uri.$": f"States.Format('{{}}/{split}/', $.imported.Processed)"}}} for split in ("train", "validation")]
        if model.source:
            channels.append({"ChannelName": "code", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated", "S3Uri": "${ModelSourceS3Uri}"}}})
        container = {"ContainerHostname": "model", "Image": f"${{{model.image}}}",
                     "ModelDataUrl.$": "$.training.ModelArtifacts",
                     **({"Environment": dict(model.serving)} if model.serving else {})}
        fixed = dict(model.fixed)
        if model.serving is None and self.task == "multiclass":  # XGBoost needs the count of classes
            fixed["num_class.$"] = "States.Format('{}', $.imported.summary.num_class)"
        # The message file named, not left to the script's default: SageMaker reads it from this path.
        data_job = ["--input-dir", "/opt/ml/processing/input/data", "--output-dir", "/opt/ml/processing/output",
                    "--message-file", "/opt/ml/output/message", *self.arguments(), "--processed-dir",
                    "/opt/ml/processing/processed", "--features-script",
                    "/opt/ml/processing/features/${FeaturesScriptFile}", "--train-parts",
                    str(self.training_instance_count)]
        return {
            "ImportArguments": data_job,
            # The Spark data job runs the import's own code, shipped to its executors (processing/spark_data_job.py).
            "SparkImportArguments": [*data_job, "--import-script", "/opt/ml/processing/code/${ImportScriptFile}"],
            "SparkAboveBytes": self.spark_above_mib * 2**20,
            "ProcessingInstanceCount": self.processing_instance_count,
            "HyperparameterDefaults": dict(model.hyperparameters),
            "HyperparameterRules": model.rules,
            "FixedHyperparameters": fixed,
            "TrainingImage": f"${{{model.image}}}",
            "TrainingChannels": channels,
            "ModelContainer": container,
            "PreprocessorEnvironment": serving_environment(PREPROCESSOR_PROGRAM),
            "TrainingInstanceCount": self.training_instance_count,
            "DistributedAboveMib": self.distributed_above_mib,
            "GateMetric": self.gate_metric,
            "GateThresholdText": repr(self.gate_threshold),
            "Task": self.task,
            "LabelColumn": self.label_column,
            "DropColumnsArgument": ",".join(self.drop_columns) or "none",
            "BiasColumnsArgument": ",".join(self.bias_columns) or "none",
        }
