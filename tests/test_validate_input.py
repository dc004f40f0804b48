"""Input check: defaults resolved, every bad input named before anything runs."""
from __future__ import annotations

import json
import quopri
import re

import botocore.session
import pytest
import regex

from tests.conftest import ROOT, WORKFLOWS, expanded_definition, load_lambda_module

handler = load_lambda_module("validate_input", "handler")
rules = load_lambda_module("validate_input", "rules")
ALLOWED = ["ml.m5.large", "ml.m5.xlarge"]
DEFAULTS = {"rows": 5000, "training_instance_type": "ml.m5.large", "transform_instance_type": "ml.m5.large",
            "hyperparameters": {"objective": "reg:logistic", "eval_metric": "rmse", "num_round": "5"}}


def resolve(given, name="run-1"):
    return handler.resolve(name, given, json.loads(json.dumps(DEFAULTS)), ALLOWED)


def test_empty_input_takes_the_defaults():
    assert resolve({}) == {
        "run_prefix": "runs/run-1/", "metadata": {"execution": "run-1", "run_prefix": "runs/run-1/"},
        "seed": None, "rows": 5000, "training_instance_type": "ml.m5.large", "transform_instance_type": "ml.m5.large",
        "hyperparameters": {"objective": "reg:logistic", "eval_metric": "rmse", "num_round": "5"}}


def test_overrides_are_checked_and_hyperparameters_become_strings():
    settings = resolve({"rows": 300, "seed": 9, "training_instance_type": "ml.m5.xlarge",
                        "hyperparameters": {"num_round": 12, "eta": 0.25, "max_depth": "4"}}, name="Übung_1.a")
    assert settings["run_prefix"] == settings["metadata"]["run_prefix"] == "runs/Übung_1.a/"  # letters stay
    assert settings["rows"] == 300 and settings["seed"] == 9
    assert settings["training_instance_type"] == "ml.m5.xlarge"
    assert settings["hyperparameters"] == {"objective": "reg:logistic", "eval_metric": "rmse", "num_round": "12",
                                           "eta": "0.25", "max_depth": "4"}


@pytest.mark.parametrize("name", ["run(1)!", "a=b", "x'y\"z~", "täglich#3", "v1.2:ok@team/+x"])
def test_any_execution_name_becomes_valid_model_registry_metadata_and_reads_back_exactly(name):
    """botocore's SageMaker model: CustomerMetadataValue, a pattern of letters, separators, digits and _.:/=+-@."""
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("CustomerMetadataValue")
    metadata = resolve({}, name=name)["metadata"]
    for value in metadata.values():
        assert regex.fullmatch(shape.metadata["pattern"], value) and len(value) <= shape.metadata["max"], value
    assert quopri.decodestring(metadata["run_prefix"].encode()).decode() == f"runs/{name}/"
    assert quopri.decodestring(metadata["execution"].encode()).decode() == name


def test_a_name_too_odd_to_spell_out_within_the_metadata_limit_is_refused_before_any_job():
    with pytest.raises(handler.InvalidExecutionInput, match=r"holds 60 characters SageMaker's model registry cannot "
                                                            r"record as they are \(\( \)\)"):
        resolve({}, name="()" * 30)


@pytest.mark.parametrize(("given", "message"), [
    ([1], "execution input must be a JSON object"),
    ({"Comment": "x"}, "execution input has unknown key 'Comment'"),
    ({"rows": -5}, "rows must be a whole number from 100 to 1000000"),
    ({"rows": "many"}, "rows must be a whole number"),
    ({"rows": 10.5}, "rows must be a whole number"),
    ({"seed": "x"}, "seed must be a whole number"),
    ({"training_instance_type": "ml.p5.48xlarge"}, "training_instance_type must be one of ml.m5.large, ml.m5.xlarge"),
    ({"hyperparameters": []}, "hyperparameters must be a JSON object"),
    ({"hyperparameters": {"num_round": "five"}}, "hyperparameters.num_round must be a whole number from 1 to 1000"),
    ({"hyperparameters": {"num_round": True}}, "hyperparameters.num_round must be a whole number"),
    ({"hyperparameters": {"eta": "fast"}}, "hyperparameters.eta must be a number from 0 to 1"),
    ({"hyperparameters": {"eta": "nan"}}, "hyperparameters.eta must be a number from 0 to 1"),
    ({"hyperparameters": {"objective": "multi:softmax"}}, "hyperparameters.objective must be one of"),
    ({"hyperparameters": {"learning_rate": 0.1}}, "hyperparameters has unknown key 'learning_rate'"),
    # hostile whole numbers: too many digits for int() (a ValueError, not a refusal, before), other scripts' digits
    ({"hyperparameters": {"num_round": "9" * 5000}}, "hyperparameters.num_round must be a whole number from 1 to 1000"),
    ({"hyperparameters": {"num_round": "٣٠٠"}}, "hyperparameters.num_round must be a whole number from 1 to 1000, got '٣٠٠'"),
    ({"rows": "３００"}, "rows must be a whole number from 100 to 1000000, got '３００'"),
    ({"hyperparameters": {"eta": "٠.٥"}}, "hyperparameters.eta must be a number from 0 to 1, got '٠.٥'"),
])
def test_bad_input_is_named(given, message):
    with pytest.raises(rules.InvalidExecutionInput) as error:
        resolve(given)
    assert message in str(error.value)
    assert type(error.value).__name__ == "InvalidExecutionInput"  # the error name Step Functions catches


def test_handler_reads_allowed_instance_types_from_environment(monkeypatch):
    monkeypatch.setenv("ALLOWED_INSTANCE_TYPES", "ml.c5.xlarge")
    event = {"execution_name": "e", "input": {}, "defaults": {**DEFAULTS, "training_instance_type": "ml.c5.xlarge",
                                                               "transform_instance_type": "ml.c5.xlarge"}}
    assert handler.handler(event, None)["training_instance_type"] == "ml.c5.xlarge"
    event["input"] = {"transform_instance_type": "ml.m5.large"}
    with pytest.raises(rules.InvalidExecutionInput, match="transform_instance_type must be one of ml.c5.xlarge"):
        handler.handler(event, None)


@pytest.mark.parametrize("path", sorted((ROOT / "statemachines").glob("*.asl.json")), ids=lambda p: p.name)
def test_every_workflow_default_has_a_rule_and_passes_it(path):
    workflow = next(c for c in WORKFLOWS.values() if f"{c.spec.definition}.asl.json" == path.name)
    definition = expanded_definition(workflow)  # as the stack makes it from the default settings
    payload = definition["States"]["ValidateInput"]["Parameters"]["Payload"]
    defaults, declared = payload["defaults"], payload.get("rules", {})
    for key in defaults:
        assert (key in handler.SCALAR_RULES or key in handler.INSTANCE_TYPE_KEYS or key == "hyperparameters"
                or key in declared), key
    concrete = {k: ("ml.m5.large" if k in handler.INSTANCE_TYPE_KEYS else v) for k, v in defaults.items()}
    required = [key for key, spec in declared.items() if spec[0] == "required"]
    if required:  # an input without them is refused, naming the first
        with pytest.raises(handler.InvalidExecutionInput, match=f"^{required[0]} is required$"):
            handler.resolve("run", {}, concrete, ["ml.m5.large"], declared, "bucket")
        return
    settings = handler.resolve("run", {}, concrete, ["ml.m5.large"], declared, "bucket")
    assert settings.get("hyperparameters") == defaults.get("hyperparameters")


# A workflow's own keys, declared in its ASL: one with a default, one optional (no default).
OWN_RULES = {"threshold": ["number", 0.5, 1], "dataset_uri": ["dataset"],
             "old_key": ["replaced", "the setting new_key does what it did"]}


def resolve_own(given):
    return handler.resolve("run-1", given, {**json.loads(json.dumps(DEFAULTS)), "threshold": 0.8}, ALLOWED,
                           OWN_RULES, "data-bucket", ("datasets/", "incoming/"))


def test_workflow_declared_rules_take_defaults_and_optional_keys():
    settings = resolve_own({})
    assert settings["threshold"] == 0.8 and settings["dataset_uri"] is None
    settings = resolve_own({"threshold": "0.9", "dataset_uri": "s3://data-bucket/datasets/churn/"})
    assert settings["threshold"] == 0.9 and settings["dataset_uri"] == "s3://data-bucket/datasets/churn/"
    assert resolve_own({"dataset_uri": "s3://data-bucket/incoming/"})["dataset_uri"] == "s3://data-bucket/incoming/"


@pytest.mark.parametrize(("given", "message"), [
    ({"threshold": 2}, "threshold must be a number from 0.5 to 1"),
    ({"old_key": 0.9}, "old_key is no longer an input: the setting new_key does what it did"),
    ({"dataset_uri": "s3://other-bucket/datasets/x.csv"}, "dataset_uri must be an s3:// URI in this stack's data "
                                                          "bucket (s3://data-bucket/...)"),
    ({"dataset_uri": "s3://data-bucket/runs/old/input/"}, "dataset_uri must not point into runs/"),
    ({"dataset_uri": "https://data-bucket/x.csv"}, "dataset_uri must be an s3:// URI"),
    # keys IAM would deny only once a job ran: refused before anything runs
    ({"dataset_uri": "s3://data-bucket/runs"}, "dataset_uri must name a folder or file under s3://data-bucket/datasets/ "
                                               "or s3://data-bucket/incoming/"),
    ({"dataset_uri": "s3://data-bucket//runs/x/"}, "dataset_uri must name a folder or file under"),
    ({"dataset_uri": "s3://data-bucket/claims/"}, "dataset_uri must name a folder or file under"),
    ({"dataset_uri": "s3://data-bucket/datasets//x/"}, "dataset_uri must not hold an empty, '.' or '..' path segment"),
    ({"dataset_uri": "s3://data-bucket/datasets/../runs/x/"}, "must not hold an empty, '.' or '..' path segment"),
    ({"threshold": "٠.٩"}, "threshold must be a number from 0.5 to 1, got '٠.٩'"),
    ({"threshold": "0" * 5000 + ".9"}, "threshold must be a number from 0.5 to 1"),
])
def test_workflow_declared_rules_name_bad_input(given, message):
    with pytest.raises(rules.InvalidExecutionInput, match=re.escape(message)):
        resolve_own(given)


def test_an_unknown_rule_kind_is_a_wiring_error_not_bad_input():
    with pytest.raises(LookupError, match="unknown input rule"):
        handler.resolve("r", {}, {}, ALLOWED, {"x": ["fancy"]}, "b")


def test_hyperparameters_a_workflow_sets_itself_are_refused_by_name():
    declared_ = {"hyperparameters": ["fixed", "max_depth", "eta", "eval_metric"]}
    with pytest.raises(rules.InvalidExecutionInput, match=r"hyperparameters.eta is set by this workflow"):
        handler.resolve("r", {"hyperparameters": {"eta": 0.3, "num_round": 9}}, json.loads(json.dumps(DEFAULTS)),
                        ALLOWED, declared_)
    settings = handler.resolve("r", {"hyperparameters": {"num_round": 9}}, json.loads(json.dumps(DEFAULTS)),
                               ALLOWED, declared_)
    assert settings["hyperparameters"]["num_round"] == "9"


def test_a_workflow_declares_its_own_hyperparameter_schema_and_values_keep_their_precision():
    declared = ["schema", {"inverse_regularization": ["number", 0.0001, 10000], "max_iter": ["whole", 10, 10000]},
                "max_iter"]
    defaults = {"hyperparameters": {"inverse_regularization": "1.0", "max_iter": "200"}}
    settings = handler.resolve("r", {"hyperparameters": {"inverse_regularization": 0.123456789012345}}, defaults,
                               ALLOWED, {"hyperparameters": declared})
    assert settings["hyperparameters"] == {"inverse_regularization": "0.123456789012345", "max_iter": "200"}
    for given, message in (({"eta": 0.1}, "hyperparameters has unknown key 'eta'; allowed: inverse_regularization, "
                                          "max_iter"),
                           ({"max_iter": 50}, "hyperparameters.max_iter is set by this workflow"),
                           ({"inverse_regularization": 0}, "hyperparameters.inverse_regularization must be a number "
                                                           "from 0.0001 to 10000")):
        with pytest.raises(rules.InvalidExecutionInput, match=re.escape(message)):
            handler.resolve("r", {"hyperparameters": given}, defaults, ALLOWED, {"hyperparameters": declared})
