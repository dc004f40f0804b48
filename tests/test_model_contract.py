"""The model contract (stacks/settings/model_contract.py): settings checked at synthesis in one line, and what the state
machine and the jobs receive of them."""
from __future__ import annotations

import pytest

from stacks.settings.config import ConfigError, KitConfig
from stacks.settings.model_contract import SETTINGS, ModelContract
from stacks.workflows.workflow_stack import workflow_settings


def contract(**settings) -> ModelContract:
    config = KitConfig.from_context(settings, workflow_settings())
    return ModelContract.from_settings(config.workflow_settings)


def test_defaults_are_a_binary_xgboost_gated_on_auc():
    made = contract()
    assert (made.label_column, made.task, made.categorical_columns, made.drop_columns) == ("label", "binary", None, ())
    assert (made.gate_metric, made.gate_threshold, made.better) == ("auc", 0.8, "higher")
    assert made.model.fixed == {"objective": "binary:logistic"} and made.model.serving is None
    assert made.arguments() == ["--label-column", "label", "--task", "binary", "--categorical-columns", "auto",
                                "--drop-columns", "none", "--bias-columns", "none"]


def test_each_task_has_its_objective_and_gate():
    multiclass = contract(task="multiclass")
    assert multiclass.model.fixed == {"objective": "multi:softprob"}
    assert multiclass.fragments()["FixedHyperparameters"] == {
        "objective": "multi:softprob", "num_class.$": "States.Format('{}', $.imported.summary.num_class)"}
    regression = contract(task="regression", gate_metric="rmse", gate_threshold="12.5")
    assert (regression.model.fixed, regression.gate_metric, regression.gate_threshold, regression.better) == (
        {"objective": "reg:squarederror"}, "rmse", 12.5, "lower")
    assert regression.fragments()["GateThresholdText"] == "12.5"


def test_a_team_script_model_trains_and_serves_in_its_framework_image():
    made = contract(model="training/sklearn_linear", task="regression")
    fragments = made.fragments()
    assert fragments["TrainingImage"] == "${SklearnImage}"
    assert made.model.fixed == {"sagemaker_program": "train.py",
                                "sagemaker_submit_directory": "/opt/ml/input/data/code/${ModelSourceFile}",
                                "task": "regression"}
    assert [c["ChannelName"] for c in fragments["TrainingChannels"]] == ["train", "validation", "code"]
    assert fragments["ModelContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
    assert fragments["HyperparameterRules"][0] == "schema" and "max_iter" in fragments["HyperparameterRules"][1]


def test_column_lists_reach_the_import_job_as_written():
    made = contract(label_column="Churn Flag", categorical_columns="plan, region", drop_columns="customer_id")
    assert made.arguments() == ["--label-column", "Churn Flag", "--task", "binary", "--categorical-columns",
                                "plan,region", "--drop-columns", "customer_id", "--bias-columns", "none"]


@pytest.mark.parametrize("settings, message", [
    ({"task": "ranking"}, "invalid setting task='ranking': expected one of binary, multiclass, regression"),
    ({"task": "regression", "gate_metric": "auc"},
     "invalid setting gate_metric='auc': expected a metric of task=regression: rmse, mae, r2"),
    ({"gate_threshold": "high"}, "invalid setting gate_threshold='high': expected a number (or empty"),
    ({"label_column": "a,b"}, "invalid setting label_column='a,b': expected a column name"),
    ({"drop_columns": "id,id"}, "invalid setting drop_columns='id,id': expected a comma-separated list of distinct"),
    ({"drop_columns": "label"}, "invalid setting drop_columns='label': expected columns other than the label"),
    ({"bias_columns": "label"}, "invalid setting bias_columns='label': expected columns other than the label"),
    ({"categorical_columns": "a", "drop_columns": "a"}, "invalid setting categorical_columns='a': expected no dropped"),
    ({"model": "training/nowhere"}, "invalid setting model='training/nowhere': expected xgboost (SageMaker's"),
    ({"drop_columns": ",".join(f"column_{i:03d}" for i in range(30))}, "expected at most 256 characters"),
])
def test_bad_contract_settings_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError) as error:
        contract(**settings)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_script_must_declare_the_task(tmp_path, monkeypatch):
    import stacks.settings.model_contract as module

    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "train.py").write_text("")
    (folder / "serve.py").write_text("")
    (folder / "model.json").write_text('{"framework": "sklearn", "train": "train.py", "serve": "serve.py", '
                                       '"tasks": ["binary"]}')
    monkeypatch.setattr(module, "ROOT", tmp_path)
    with pytest.raises(ConfigError, match=r"invalid setting task='regression': expected one of the tasks "
                                          r"team/model.json declares \(binary\)"):
        contract(model="team", task="regression")
    (folder / "model.json").write_text('{"framework": "pytorch", "train": "train.py", "serve": "serve.py", "tasks": []}')
    with pytest.raises(ConfigError, match="framework 'pytorch'; expected one of sklearn, xgboost"):
        contract(model="team")


def test_every_contract_setting_is_a_build_and_register_setting():
    assert set(SETTINGS) <= set(workflow_settings())


def test_training_scales_out_above_a_size_for_the_built_in_algorithm_only():
    fragments = contract(training_instance_count="4", distributed_above_mib="512").fragments()
    assert (fragments["TrainingInstanceCount"], fragments["DistributedAboveMib"]) == (4, 512)
    arguments = fragments["ImportArguments"]  # the data job writes the training split as one file per instance
    assert arguments[arguments.index("--train-parts") + 1] == "4"
    train, validation = fragments["TrainingChannels"]
    assert train["DataSource"]["S3DataSource"]["S3DataDistributionType.$"] == "$.plan.distribution"
    assert validation["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    script = contract(model="training/sklearn_linear", training_instance_count="4")
    assert script.training_instance_count == 1  # a script may not distribute: one instance, whatever the size


def test_the_serving_environment_is_written_once():
    """contract/serving.py holds what a served module is told; the ASL takes it by placeholder, the emulator and
    the model contract import it, and CheckModelPackage gets it in the contract package its folder links
    (tests/test_contract.py checks every link and asset)."""
    from contract import serving
    from tests.conftest import ROOT

    module = ROOT / "contract" / "serving.py"
    copies = [path for folder in ("stacks", "lambda", "statemachines", "offline", "processing", "training")
              for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".json") and not path.is_symlink()
              and path != module and serving.CODE_DIRECTORY in path.read_text()]
    assert copies == []
    handler = (ROOT / "lambda" / "check_model_package" / "handler.py").read_text()
    assert "from contract.serving import SERVING_ENVIRONMENT" in handler
    assert contract().fragments()["PreprocessorEnvironment"] == {"SAGEMAKER_PROGRAM": "features.py",
                                                                **serving.SERVING_ENVIRONMENT}
