"""Rules for a workflow's execution input: each key's type and range, kept as data."""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from contract import run_layout
from contract.data import finite_number

Rule = Callable[[str, Any], Any]


class InvalidExecutionInput(ValueError):
    """The execution input cannot run; raised before any data is written or any job is created."""


# A whole number as text: ASCII digits only (str.isdigit and int() also take other scripts' digits, '٣٠٠' as 300),
# and few enough that int() never meets Python's limit on digits.
WHOLE = re.compile(r"[0-9]{1,18}")


def whole(low: int, high: int) -> Rule:
    def check(name: str, value: Any) -> int:
        text = value if isinstance(value, str) else None
        if isinstance(value, bool) or not (isinstance(value, int) or (text and WHOLE.fullmatch(text))):
            raise InvalidExecutionInput(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        number = int(value)
        if not low <= number <= high:
            raise InvalidExecutionInput(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        return number
    return check


def number(low: float, high: float) -> Rule:
    def check(name: str, value: Any) -> float:
        parsed = (float(value) if not isinstance(value, bool) and isinstance(value, (int, float)) else
                  finite_number(value.strip()) if isinstance(value, str) and len(value) <= 64 else None)
        if parsed is None or not math.isfinite(parsed) or not low <= parsed <= high:
            raise InvalidExecutionInput(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
        return parsed
    return check


def choice(*allowed: str) -> Rule:
    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise InvalidExecutionInput(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value
    return check


def dataset(bucket: str, prefixes: tuple[str, ...]) -> Rule:
    """An s3:// folder or file of this stack's data bucket under one of the prefixes its jobs may read (the
    workflow's job_bucket_reads), every segment named: never runs/, claims/ or another copy's folders, which
    IAM would deny only once a job had started."""
    def check(name: str, value: Any) -> str:
        match = re.fullmatch(r"s3://([^/]+)/(.+)", value) if isinstance(value, str) else None
        if not match or match.group(1) != bucket:
            raise InvalidExecutionInput(f"{name} must be an s3:// URI in this stack's data bucket "
                                        f"(s3://{bucket}/...), got {value!r}")
        key = match.group(2)
        if key.startswith(run_layout.RUNS):
            raise InvalidExecutionInput(f"{name} must not point into runs/, where workflows write; got {value!r}")
        if not any(key.startswith(prefix) for prefix in prefixes):
            raise InvalidExecutionInput(f"{name} must name a folder or file under "
                                        f"{' or '.join(f's3://{bucket}/{p}' for p in prefixes) or 'no prefix'} "
                                        f"(where this workflow's jobs may read), got {value!r}")
        if any(part in ("", ".", "..") for part in key.rstrip("/").split("/")):
            raise InvalidExecutionInput(f"{name} must not hold an empty, '.' or '..' path segment, got {value!r}")
        return value
    return check


def text(pattern: str, description: str) -> Rule:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise InvalidExecutionInput(f"{name} must be {description}, got {value!r}")
        return value
    return check


def replaced(message: str) -> Rule:
    """A key the workflow no longer takes: any value is refused with what replaces it."""
    def check(name: str, value: Any) -> None:
        raise InvalidExecutionInput(f"{name} is no longer an input: {message}")
    return check


def required(rule: Rule) -> Rule:
    def check(name: str, value: Any) -> Any:
        if value is None:
            raise InvalidExecutionInput(f"{name} is required")
        return rule(name, value)
    check.required = True
    return check


def declared(spec: list, bucket: str, prefixes: tuple[str, ...] = ()) -> Rule:
    """A rule a workflow declares in its ASL as data: ["whole", low, high], ["number", low, high],
    ["choice", value, ...], ["text", regular expression, what it describes] or ["dataset"] (a URI in the
    stack's data bucket, under one of `prefixes`); ["required", <rule>...] for a key the input must give (it has no default);
    ["replaced", what replaces it] for a key the workflow took once and now refuses."""
    kind, *arguments = spec
    if kind == "required":
        return required(declared(arguments, bucket, prefixes))
    factories = {"whole": whole, "number": number, "choice": choice, "text": text, "dataset": lambda: dataset(bucket, prefixes),
                 "replaced": replaced}
    if kind not in factories:
        raise LookupError(f"unknown input rule {spec!r}; known: {', '.join(factories)}")  # a wiring bug
    return factories[kind](*arguments)


def optional(rule: Rule) -> Rule:
    return lambda name, value: None if value is None else rule(name, value)


# XGBoost hyperparameters a run may set, with the ranges XGBoost accepts (upper bounds keep runs sane).
XGBOOST_HYPERPARAMETERS: dict[str, Rule] = {
    "num_round": whole(1, 1000),
    "max_depth": whole(0, 30),
    "eta": number(0, 1),
    "gamma": number(0, 1e6),
    "min_child_weight": number(0, 1e6),
    "subsample": number(0.01, 1),
    "colsample_bytree": number(0.01, 1),
    "lambda": number(0, 1e6),
    "alpha": number(0, 1e6),
    "scale_pos_weight": number(0, 1e6),
    "seed": whole(0, 2**31 - 1),
    "objective": choice("reg:logistic", "binary:logistic", "reg:squarederror", "binary:hinge", "multi:softprob"),
    "eval_metric": choice("rmse", "logloss", "error", "auc", "mae", "mlogloss", "merror"),
}
