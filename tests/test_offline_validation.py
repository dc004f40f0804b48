"""The local SageMaker refuses what SageMaker refuses: maximum lengths, patterns, enums and maximum values from
botocore's model (botocore's own validator checks only types, required members and minimums)."""
from __future__ import annotations

import botocore.session
import pytest

from offline.sagemaker_validation import SageMakerError, check_constraints

MODEL = botocore.session.get_session().get_service_model("sagemaker")
# Every create operation a workflow of the kit may call, with its name field and that field's maximum length.
NAMED = [("CreateTrainingJob", "TrainingJobName", 63), ("CreateProcessingJob", "ProcessingJobName", 63),
         ("CreateTransformJob", "TransformJobName", 63), ("CreateModel", "ModelName", 63),
         ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName", 32)]


def check(operation: str, request: dict) -> None:
    check_constraints(request, MODEL.operation_model(operation).input_shape, operation)


@pytest.mark.parametrize(("operation", "field", "longest"), NAMED)
def test_names_one_over_the_maximum_are_refused(operation, field, longest):
    assert MODEL.operation_model(operation).input_shape.members[field].metadata["max"] == longest
    check(operation, {field: "a" * longest})
    with pytest.raises(SageMakerError, match=rf"at '{operation}.{field}' failed to satisfy constraint: Member must "
                                             rf"have length less than or equal to {longest}"):
        check(operation, {field: "a" * (longest + 1)})


@pytest.mark.parametrize(("operation", "field", "longest"), NAMED)
def test_names_outside_the_pattern_are_refused(operation, field, longest):
    for name in ("with_underscore", "-leading-hyphen", "ümlaut"):
        with pytest.raises(SageMakerError, match="Member must satisfy regular expression pattern"):
            check(operation, {field: name})


def test_nested_limits_enums_and_maximum_values_are_checked():
    with pytest.raises(SageMakerError, match=r"ResourceConfig.InstanceType' .* enum value set"):
        check("CreateTrainingJob", {"ResourceConfig": {"InstanceType": "ml.m5.huge"}})
    with pytest.raises(SageMakerError, match=r"ClusterConfig.InstanceCount' .* value less than or equal to 100"):
        check("CreateProcessingJob", {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 101}}})
    with pytest.raises(SageMakerError, match=r"HyperParameters.key' .* length less than or equal to 256"):
        check("CreateTrainingJob", {"HyperParameters": {"k" * 257: "1"}})


def test_patterns_written_for_java_are_understood():
    # Unicode classes (\p{L}) and UTF-16 surrogate ranges in the model's patterns match as SageMaker matches them.
    check("AddTags", {"Tags": [{"Key": "team", "Value": "Übung 日本"}]})
    athena = lambda catalog: {"ProcessingInputs": [  # noqa: E731 (a field whose pattern spells surrogate pairs)
        {"DatasetDefinition": {"AthenaDatasetDefinition": {"Catalog": catalog}}}]}
    check("CreateProcessingJob", athena("catalog 😀 outside the basic plane"))
    with pytest.raises(SageMakerError, match="Member must satisfy regular expression pattern"):
        check("CreateProcessingJob", athena("control \x01 character"))
    for value in ("semi;colon", "emoji 😀"):  # neither is a letter, separator or number
        with pytest.raises(SageMakerError, match="Member must satisfy regular expression pattern"):
            check("AddTags", {"Tags": [{"Key": "team", "Value": value}]})
