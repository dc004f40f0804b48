"""Lambda handler: check a workflow's execution input against its defaults and rules, return the run's settings."""
from __future__ import annotations

import logging
import os
import unicodedata
from typing import Any

from contract import run_layout
from rules import XGBOOST_HYPERPARAMETERS, InvalidExecutionInput, declared, optional, whole

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
INSTANCE_TYPE_KEYS = ("training_instance_type", "processing_instance_type", "transform_instance_type")
SCALAR_RULES = {"rows": whole(100, 1_000_000)}
# Keys a run may give that have no default (CDK drops nulls from the definition, so none can be declared there).
OPTIONAL_RULES = {"seed": optional(whole(0, 2**31 - 1))}


def _object(name: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise InvalidExecutionInput(f"{name} must be a JSON object, got {value!r}")
    return value


def _reject_unknown(name: str, given: dict, allowed: Any) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidExecutionInput(f"{name} has unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _hyperparameters(given: dict, defaults: dict, declaration: list, bucket: str,
                     prefixes: tuple[str, ...]) -> dict[str, str]:
    """The run's hyperparameters, checked against the workflow's schema: ["fixed", name, ...] for the built-in
    XGBoost algorithm's (names the workflow sets itself), or ["schema", {name: rule}, name, ...] for a
    workflow's own model (a script's arguments), with the names it sets itself after the schema."""
    if declaration[0] == "schema":
        schema, fixed = {key: declared(spec, bucket, prefixes) for key, spec in declaration[1].items()}, declaration[2:]
    else:
        schema, fixed = XGBOOST_HYPERPARAMETERS, declaration[1:]
    # SageMaker takes hyperparameters as strings; numbers given as JSON numbers are accepted too.
    _reject_unknown("hyperparameters", given, schema)
    for key in sorted(set(given) & set(fixed)):
        raise InvalidExecutionInput(f"hyperparameters.{key} is set by this workflow (it tunes it or optimizes "
                                    f"for it); leave it out")
    merged = {**defaults, **given}
    return {key: _as_text(schema[key](f"hyperparameters.{key}", value)) for key, value in merged.items()}


def _as_text(value: Any) -> str:
    """A hyperparameter as SageMaker takes it, a string: a float in its shortest exact form (never rounded)."""
    return repr(value) if isinstance(value, float) else str(value)


# SageMaker's CustomerMetadataProperties values (botocore's model, shape CustomerMetadataValue) allow only letters,
# separators, digits and _.:/=+-@, at most 256 characters; an execution name may hold others ("run(1)!"). The run's
# metadata spells each other character's UTF-8 bytes =XX (and "=" itself =3D), as quoted-printable does, so
# `quopri.decodestring` gives the name back exactly. The longest value the kit records is an s3:// URI of the run's
# input/test-labels/ folder: bucket names are at most 63 characters.
METADATA_PUNCTUATION = set("_.:/=+-@")
METADATA_MAX, METADATA_URI_OVERHEAD = 256, len("s3://") + 63 + len("/input/test-labels/")


def metadata_value(text: str) -> str:
    """The text as a CustomerMetadataProperties value: what SageMaker refuses spelled =XX, "=" as =3D."""
    def keep(c: str) -> bool:
        return c != "=" and (c in METADATA_PUNCTUATION or unicodedata.category(c)[0] in "LNZ")
    return "".join(c if keep(c) else "".join(f"={b:02X}" for b in c.encode("utf-8")) for c in text)


def _metadata(execution_name: str, run_prefix: str) -> dict[str, str]:
    prefix = metadata_value(run_prefix)
    if len(prefix) + METADATA_URI_OVERHEAD > METADATA_MAX:
        odd = sorted({c for c in execution_name if metadata_value(c) != c})
        raise InvalidExecutionInput(
            f"execution name {execution_name!r} holds {len(execution_name) - sum(c not in odd for c in execution_name)}"
            f" characters SageMaker's model registry cannot record as they are ({' '.join(odd)}), too many to spell "
            f"out within its {METADATA_MAX}-character limit; start the run under a name with fewer of them")
    return {"execution": metadata_value(execution_name), "run_prefix": prefix}


def resolve(execution_name: str, given: Any, defaults: dict, allowed_instance_types: list[str],
            rules: dict | None = None, bucket: str = "", dataset_prefixes: tuple[str, ...] = ()) -> dict:
    """The run's settings: defaults overridden by the checked input, plus the run's data prefix. `rules` are
    the workflow's own keys, declared in its ASL as data (see rules.declared); one without a default is
    optional and resolves to null when not given."""
    given = _object("execution input", given)
    rules = dict(rules or {})
    # How its hyperparameters are checked (see _hyperparameters); XGBoost's, none fixed, when not declared.
    hyperparameters = rules.pop("hyperparameters", ["fixed"])
    own = {key: declared(spec, bucket, dataset_prefixes) for key, spec in rules.items()}
    optional_rules = {**OPTIONAL_RULES, **{key: rule if getattr(rule, "required", False) else optional(rule)
                                           for key, rule in own.items() if key not in defaults}}
    _reject_unknown("execution input", given, {*defaults, *optional_rules})
    settings: dict[str, Any] = {"run_prefix": run_layout.run_prefix(execution_name)}
    settings["metadata"] = _metadata(execution_name, settings["run_prefix"])
    settings.update({key: rule(key, given.get(key)) for key, rule in optional_rules.items()})
    for key, default in defaults.items():
        value = given.get(key, default)
        if key == "hyperparameters":
            settings[key] = _hyperparameters(_object(key, given.get(key, {})), default, hyperparameters, bucket,
                                             dataset_prefixes)
        elif key in INSTANCE_TYPE_KEYS:
            if value not in allowed_instance_types:
                raise InvalidExecutionInput(
                    f"{key} must be one of {', '.join(allowed_instance_types)}, got {value!r}")
            settings[key] = value
        elif key in SCALAR_RULES or key in own:
            settings[key] = {**SCALAR_RULES, **own}[key](key, value)
        else:
            raise LookupError(f"workflow default {key!r} has no validation rule")  # a wiring bug, not bad input
    return settings


def handler(event: dict, context: object) -> dict:
    allowed = os.environ["ALLOWED_INSTANCE_TYPES"].split(",")
    settings = resolve(event["execution_name"], event["input"], event["defaults"], allowed, event.get("rules"),
                       os.environ.get("DATA_BUCKET", ""),
                       tuple(p for p in os.environ.get("DATASET_PREFIXES", "").split(",") if p))
    LOGGER.info("execution input accepted", extra={"settings": settings})
    return settings
