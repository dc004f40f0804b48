"""Every offline request is checked as its service checks it, from botocore's service model: required members,
types, lengths, sizes and values (minimum and maximum), patterns and enums, refused with that service's error code.

botocore's own ParamValidator checks only types, required members and minimums, and only for clients that keep
parameter validation on (moto's Step Functions interpreter turns it off); the services check the rest. The words
are those AWS's front ends use ("1 validation error detected: Value '...' at 'memberName' failed to satisfy
constraint: Member must ..."), as public reports quote them for SageMaker, Lambda, STS and CloudWatch; the paths
name members with a lower-case first letter (Lambda's 'kMSKeyArn' shows the rule), list items as 'tags.1.member'.
"""
from __future__ import annotations

import functools
import uuid
from typing import Any, Iterator

import botocore.session
import regex
from botocore.awsrequest import AWSResponse
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from offline.sources.request_rules import DOCUMENTED_RULES

# The code each service gives a request its model refuses; ValidationException unless listed here.
REFUSAL_CODES = {
    # SNS API reference, Publish / CreateTopic "Errors": InvalidParameter ("a request parameter does not comply
    # with the associated constraints"); botocore's sns model, shape InvalidParameterException, code InvalidParameter.
    "sns": "InvalidParameter",
    # CloudWatch API reference, "Common Errors": ValidationError; botocore's cloudwatch model, shape
    # ValidationException, error code ValidationError.
    "cloudwatch": "ValidationError",
    # STS API reference, "Common Errors": ValidationError (query protocol services' code).
    "sts": "ValidationError",
    # SageMaker Runtime API reference, InvokeEndpoint "Errors": ValidationError; botocore's model, shape
    # ValidationError.
    "sagemaker-runtime": "ValidationError",
    # S3 API reference, "Error responses" (list of error codes): InvalidArgument, 400.
    "s3": "InvalidArgument",
}
# Lambda: its API reference's "Common Errors" list ValidationException (400), and public reports of constraint
# failures quote it ("ValidationException ... at 'functionName' failed to satisfy constraint"); Lambda's own
# InvalidParameterValueException is for checks of meaning, not of the model. Step Functions, EventBridge,
# EventBridge Scheduler, CloudWatch Logs and SageMaker: ValidationException, a shape of their models (or their
# "Common Errors" page: EventBridge, KMS, SSM).
# Members whose refusal S3 names otherwise (S3 API reference, "Error responses": InvalidStorageClass, 400).
MEMBER_CODES = {("s3", "StorageClass"): "InvalidStorageClass"}
# Services whose messages name members as they are sent, not in Coral's lower camel case.
VERBATIM_NAMES = ("s3", "sns")


class RequestRefused(Exception):
    """A request refused as the service refuses it: its code and message (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def response(self) -> tuple[AWSResponse, dict]:
        """What botocore's before-call may return in place of sending: the client raises it as a ClientError."""
        parsed = {"Error": {"Code": self.code, "Message": str(self)},
                  "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}}}
        return AWSResponse("https://offline-validation", 400, {}, None), parsed


@functools.lru_cache(maxsize=None)
def service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def validate(service: str, operation: str, params: dict) -> None:
    """Raise RequestRefused for what `service` refuses in `params` of `operation` (a model's operation name)."""
    validate_operation(service_model(service).operation_model(operation), params)


def validate_operation(operation: OperationModel, params: dict) -> None:
    service, shape = operation.service_model.service_name, operation.input_shape
    if shape is not None:
        verbatim = service in VERBATIM_NAMES
        violations = list(violations_of(params, shape, "", verbatim))
        if violations:
            raise _refusal(service, violations)
        report = ParamValidator().validate(params, shape)  # types, which the walk above does not judge
        if report.has_errors():
            raise RequestRefused(REFUSAL_CODES.get(service, "ValidationException"), report.generate_report())
    for rule in DOCUMENTED_RULES.get((service, operation.name), ()):
        refused = rule(params)
        if refused:
            code, message = refused
            raise RequestRefused(REFUSAL_CODES.get(service, "ValidationException") if code is None else code, message)


def _refusal(service: str, violations: list[tuple[str, Any, str]]) -> RequestRefused:
    path, _, constraint = violations[0]
    code = MEMBER_CODES.get((service, path.split(".")[-1]), REFUSAL_CODES.get(service, "ValidationException"))
    if service == "sns":  # SNS words a refusal "Invalid parameter: <name> Reason: <why>", one at a time
        return RequestRefused(code, f"Invalid parameter: {path} Reason: {constraint}")
    count = f"{len(violations)} validation error{'s' if len(violations) > 1 else ''} detected"
    described = "; ".join(f"Value {_shown(value)} at '{where}' failed to satisfy constraint: {why}"
                          for where, value, why in violations)
    return RequestRefused(code, f"{count}: {described}")


def _shown(value: Any) -> str:
    return "null" if value is None else f"'{value}'"


@functools.lru_cache(maxsize=None)
def _pattern(text: str) -> regex.Pattern:
    """A model's (Java) pattern for the `regex` module, which knows \\p{L}; UTF-16 surrogate pairs become the
    code points they stand for. A pattern that does not compile fails the request, never passes it."""
    return regex.compile(text.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF"))


def _member(path: str, name: str, verbatim: bool) -> str:
    name = name if verbatim else name[:1].lower() + name[1:]
    return f"{path}.{name}" if path else name


def violations_of(value: Any, shape: Shape, path: str, verbatim: bool = False) -> Iterator[tuple[str, Any, str]]:
    """(path, value, "Member must ...") for each constraint of the model `value` breaks."""
    limits, kind = shape.metadata, shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if value.get(name) is None:
                yield _member(path, name, verbatim), None, "Member must not be null"
        for name, member in value.items():
            if name in shape.members and member is not None:
                yield from violations_of(member, shape.members[name], _member(path, name, verbatim), verbatim)
    elif kind == "list" and isinstance(value, (list, tuple)):
        yield from _bounds(path, value, len(value), limits, "length")
        for index, item in enumerate(value, start=1):
            yield from violations_of(item, shape.member, f"{path}.{index}.member", verbatim)
    elif kind == "map" and isinstance(value, dict):
        yield from _bounds(path, value, len(value), limits, "length")
        for part, inner, items in (("keys", shape.key, value.keys()), ("value", shape.value, value.values())):
            for item in items:
                if inner.type_name in ("structure", "list", "map"):
                    yield from violations_of(item, inner, f"{path}.{part}", verbatim)
                    continue
                broken = [why for _, _, why in violations_of(item, inner, path, verbatim)]
                if broken:  # Coral reports a map's members at the map: "Map value must satisfy constraint: [...]"
                    yield path, value, f"Map {part} must satisfy constraint: [{', '.join(broken)}]"
                    break
    elif kind == "string" and isinstance(value, str):
        yield from _bounds(path, value, len(value), limits, "length")
        if "pattern" in limits and not _pattern(limits["pattern"]).fullmatch(value):
            yield path, value, f"Member must satisfy regular expression pattern: {limits['pattern']}"
        if shape.enum and value not in shape.enum:
            yield path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
    elif kind == "blob" and isinstance(value, (bytes, bytearray, str)):
        yield from _bounds(path, "<bytes>", len(value), limits, "length")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        yield from _bounds(path, value, value, limits, "value")


def _bounds(path: str, value: Any, measure: float, limits: dict, what: str) -> Iterator[tuple[str, Any, str]]:
    if "min" in limits and measure < limits["min"]:
        yield path, value, f"Member must have {what} greater than or equal to {limits['min']}"
    if "max" in limits and measure > limits["max"]:
        yield path, value, f"Member must have {what} less than or equal to {limits['max']}"
