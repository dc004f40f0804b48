"""Checks of a workflow's Task states at synthesis, so what AWS or the role's guards would refuse at run time
stops `make synth` instead, with the fix in the message."""
from __future__ import annotations

import re
from typing import Any, Mapping

from stacks.asl.definition import WorkflowDefinitionError
from stacks.asl.integration_parameters import ACCEPTED_PARAMETERS, NOT_SUPPORTED, api_of
from stacks.asl.integrations import Integration
from stacks.asl.shared_asl import CREATE_ONLY_ERRORS

# Intrinsic expressions that make a fresh random part of a name on every attempt, with their lengths.
_UUID_PARTS = (8, 4, 4, 4, 12)  # a UUID's hex groups
FRESH_PARTS = {"States.UUID()": 36, **{f"States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), {i})": n
                                       for i, n in enumerate(_UUID_PARTS)}}
FORMAT = re.compile(r"^States\.Format\('(?P<template>[^']*)',\s*(?P<arguments>.+)\)$")
NAME_CHARACTERS = re.compile(r"^[a-zA-Z0-9-]+$")


def _arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments of an intrinsic call."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in text:
        quoted ^= char == "'"
        depth += (char == "(") - (char == ")") if not quoted else 0
        if char == "," and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def suggested_name(limit: int, prefix: str) -> str:
    """A name expression that works: the longest fresh part that fits the limit after the prefix."""
    room = limit - len(prefix) - 1
    part = max((p for p, n in FRESH_PARTS.items() if n <= room), key=FRESH_PARTS.get, default=None)
    return f"\"States.Format('${{JobNamePrefix}}-{{}}', {part})\"" if part else "(no fresh name fits)"


def name_length(expression: str, prefix: str) -> tuple[int, bool] | None:
    """(longest possible length, whether fresh per attempt) of a name expression in the kit's forms, or None.

    Forms: `States.Format('<prefix>-...', <fresh parts>)` with each {} filled by a FRESH_PARTS expression."""
    match = FORMAT.match(expression)
    if not match or not match["template"].startswith(f"{prefix}-"):
        return None
    arguments = _arguments(match["arguments"])
    if match["template"].count("{}") != len(arguments) or not all(a in FRESH_PARTS for a in arguments):
        return None
    literal = match["template"].replace("{}", "")
    if not NAME_CHARACTERS.match(literal):
        return None
    return len(literal) + sum(FRESH_PARTS[a] for a in arguments), True


def check_name(state: Mapping[str, Any], integration: Integration, prefix: str, where: str) -> None:
    """The role may create only <prefix>-* resources, SageMaker refuses over-long names, and a job's name must
    be new for every attempt (a retry or redrive reusing one is refused): all decided here, per expression."""
    parameter, limit = integration.name_parameter, integration.name_max_length
    parameters = state.get("Parameters", {})
    works = suggested_name(limit, prefix)
    if f"{parameter}.$" in parameters:
        found = name_length(parameters[f"{parameter}.$"], prefix)
        if found is None:
            raise WorkflowDefinitionError(
                f"{where} must name what it creates with \"{parameter}.$\": {works}"
                f" (the prefix, then a part made fresh for every attempt, within {limit} characters)")
        if found[0] > limit:
            raise WorkflowDefinitionError(
                f"{where}: \"{parameter}.$\" can be {found[0]} characters long, over the {limit} SageMaker "
                f"allows; use {works}")
        return
    static = parameters.get(parameter)
    if integration.fresh_name or not isinstance(static, str):
        raise WorkflowDefinitionError(
            f"{where} must name what it creates with \"{parameter}.$\": {works}"
            f" (a fresh name for every attempt, within {limit} characters)")
    if not (static.startswith(f"{prefix}-") and NAME_CHARACTERS.match(static) and len(static) <= limit):
        raise WorkflowDefinitionError(
            f"{where}: {parameter} {static!r} must start with \"${{JobNamePrefix}}-\" and be at most {limit} "
            "letters, digits and hyphens")


def check_isolation(state: Mapping[str, Any], integration: Integration, where: str) -> None:
    """The role may only create isolated jobs and models, so a task without the flags would be denied."""
    for path in integration.isolation_parameters:
        value: Any = state.get("Parameters", {})
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not True:
            raise WorkflowDefinitionError(f"{where} must set {path} to true (the role only creates isolated jobs)")


def check_job_retries(state: Mapping[str, Any], where: str) -> None:
    """A retried `.sync` task whose job exists starts a second job, so only pre-creation errors may be retried."""
    retried = {error for retrier in state.get("Retry", []) for error in retrier.get("ErrorEquals", [])}
    unsafe = sorted(retried - CREATE_ONLY_ERRORS)
    if unsafe:
        raise WorkflowDefinitionError(
            f"{where} retries {', '.join(unsafe)}, which can happen after its job was created, and a retry would "
            f"start a second job; retry only {', '.join(sorted(CREATE_ONLY_ERRORS))} (\"Retry\": "
            "\"${SageMakerJobRetry}\")")


def unsupported_parameter(state: Mapping[str, Any], integration: str,
                          accepted: tuple[str, ...] | None = None) -> str | None:
    """The first top-level Parameters field (a `.$` key named without it) Step Functions would refuse for this
    optimized integration (its fields: `accepted`, or the kit's table), or None; AWS SDK integrations take their
    API's whole request."""
    if integration.startswith("aws-sdk:"):
        return None
    accepted = ACCEPTED_PARAMETERS[api_of(integration)] if accepted is None else accepted
    parameters = state.get("Parameters")
    fields = [key.removesuffix(".$") for key in parameters] if isinstance(parameters, dict) else []
    return next((field for field in fields if field not in accepted), None)


def check_parameters(state: Mapping[str, Any], integration: str, where: str,
                     accepted: tuple[str, ...] | None = None) -> None:
    """Step Functions refuses the whole state machine at creation for one such field, so synthesis does first."""
    if not integration.startswith("aws-sdk:") and accepted is None and api_of(integration) not in ACCEPTED_PARAMETERS:
        raise WorkflowDefinitionError(
            f"{where} uses {integration}, whose accepted request fields stacks/asl/integration_parameters.py "
            "ACCEPTED_PARAMETERS does not list; add them there with their source")
    field = unsupported_parameter(state, integration, accepted)
    if field:
        service, action = api_of(integration).split(":", 1)
        raise WorkflowDefinitionError(
            f"{where} passes {field} to {integration}, which Step Functions refuses when it creates the state "
            f"machine ({NOT_SUPPORTED.format(field=field)}); remove it, or call "
            f"arn:${{Partition}}:states:::aws-sdk:{service}:{action}, which takes the API's whole request")


def check_task(name: str, state: Mapping[str, Any], integration: Integration, *, prefix: str, source: str,
               key: str) -> None:
    where = f"{source}: state {name!r}"
    check_parameters(state, key, where, integration.accepted_parameters)
    if integration.name_parameter:
        check_name(state, integration, prefix, where)
    check_isolation(state, integration, where)
    if integration.stoppable_job:
        check_job_retries(state, where)
