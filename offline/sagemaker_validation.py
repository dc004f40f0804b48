"""What SageMaker checks in a request, from botocore's model: what botocore checks (types, required members,
minimums) and what it does not (maximum lengths, sizes and values, patterns, enums)."""
from __future__ import annotations

from typing import Any

import botocore.session
import regex
from botocore.validate import ParamValidator

MODEL = botocore.session.get_session().get_service_model("sagemaker")


class SageMakerError(Exception):
    """An error as SageMaker's API returns it: a code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def validate(operation: str, request: dict) -> None:
    shape = MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    if report.has_errors():
        raise SageMakerError("ValidationException", report.generate_report())
    check_constraints(request, shape, operation)
    _check_spot(operation, request)


def _check_spot(operation: str, request: dict) -> None:
    """Managed spot training needs a MaxWaitTimeInSeconds of at least MaxRuntimeInSeconds (StoppingCondition
    in botocore's SageMaker model), for a training job and for a tuning job's training jobs alike."""
    definition = {"CreateTrainingJob": request,
                  "CreateHyperParameterTuningJob": request.get("TrainingJobDefinition", {})}.get(operation, {})
    if not definition.get("EnableManagedSpotTraining"):
        return
    stopping = definition.get("StoppingCondition", {})
    wait, run = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
    if wait is None or wait < run:
        raise SageMakerError("ValidationException", "Invalid MaxWaitTimeInSeconds: for managed spot training it "
                                                    f"must be set and at least MaxRuntimeInSeconds ({run}), got {wait}")


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
