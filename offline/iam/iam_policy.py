"""IAM identity-policy evaluation: does a role's set of policies allow one action on one resource, in one context?

Follows the IAM User Guide's policy evaluation logic for a single account: an explicit Deny wins, else an Allow
is needed, else the request is implicitly denied. Action/NotAction match case-insensitively with `*` and `?`;
Resource/NotResource match case-sensitively, each of the first five ARN parts on its own, the resource part
as a whole (so `bucket/*` reaches every key below). Conditions use the operators below; any other operator, a
policy variable (`${aws:...}`), or a malformed block fails loudly instead of being ignored: a condition the
evaluator cannot decide must never pass a request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Container, Iterable, Mapping

Context = Mapping[str, Any]  # condition key -> value, or list of values for a multivalued key
HOLDS_ON_ABSENCE = "holds only because the key is absent"


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not decide; the message names it and where to add it."""


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike (and Resource matching): the first five colon-separated parts match one by one, the rest whole."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(given) == 6 and all(like(w, g) for w, g in zip(wanted, given))


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(item).lower() if isinstance(item, bool) else str(item) for item in items]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UnsupportedPolicy(f"condition value {text!r} is not a number") from None


# operator -> (test of one request value against one policy value, whether it is a negated operator)
_TESTS = {
    "StringEquals": (lambda r, p: r == p, False),
    "StringNotEquals": (lambda r, p: r == p, True),
    "StringEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), True),
    "StringLike": (lambda r, p: like(p, r), False),
    "StringNotLike": (lambda r, p: like(p, r), True),
    "ArnEquals": (lambda r, p: arn_like(p, r), False),  # IAM treats ArnEquals like ArnLike
    "ArnLike": (lambda r, p: arn_like(p, r), False),
    "ArnNotEquals": (lambda r, p: arn_like(p, r), True),
    "ArnNotLike": (lambda r, p: arn_like(p, r), True),
    "Bool": (lambda r, p: r.lower() == p.lower(), False),
    "NumericEquals": (lambda r, p: _number(r) == _number(p), False),
    "NumericNotEquals": (lambda r, p: _number(r) == _number(p), True),
    "NumericLessThan": (lambda r, p: _number(r) < _number(p), False),
    "NumericLessThanEquals": (lambda r, p: _number(r) <= _number(p), False),
    "NumericGreaterThan": (lambda r, p: _number(r) > _number(p), False),
    "NumericGreaterThanEquals": (lambda r, p: _number(r) >= _number(p), False),
}
SUPPORTED_OPERATORS = (*_TESTS, "Null")


def _condition(operator: str, key: str, wanted: Any, context: Context) -> bool | str:
    """One operator on one key (IAM User Guide, condition operators and multivalued context keys); when the key
    is absent and the condition holds all the same (a negated operator, IfExists, ForAllValues), it says so."""
    present = key in context and context[key] is not None and context[key] != []
    if operator == "Null":
        holds = _values(wanted) == [str(not present).lower()]
        return HOLDS_ON_ABSENCE if holds and not present else holds
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _TESTS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicy(f"condition operator {operator} is not evaluated offline; supported: "
                                f"{', '.join(SUPPORTED_OPERATORS)} (with ForAllValues:/ForAnyValue: and IfExists); "
                                "add it to offline/iam/iam_policy.py _TESTS")
    test, negated = _TESTS[base]
    policy_values = _values(wanted)
    if any("${" in value for value in policy_values):
        raise UnsupportedPolicy(f"policy variables ({policy_values}) in {operator} {key} are not evaluated offline")
    if not present:
        if qualifier == "ForAnyValue":
            return False
        return HOLDS_ON_ABSENCE if qualifier == "ForAllValues" or if_exists or negated else False
    request_values = _values(context[key])
    if not qualifier and len(request_values) > 1:
        raise UnsupportedPolicy(f"{key} has several values in the request; a policy must qualify {operator} "
                                "with ForAllValues: or ForAnyValue:")

    def matches(value: str) -> bool:
        hit = any(test(value, p) for p in policy_values)
        return not hit if negated else hit
    if qualifier == "ForAllValues":
        return all(matches(value) for value in request_values)
    return any(matches(value) for value in request_values)


def conditions_hold(block: Mapping[str, Mapping[str, Any]], context: Context, known: Container[str] | None,
                    allowing: bool) -> bool:
    """Every operator, and every key under it, must hold. An Allow that would hold only because a key the caller
    does not model (`known`: the keys its requests set when AWS would) is absent fails loudly: offline cannot
    tell that AWS would not set it."""
    results = {(operator, key): _condition(operator, key, wanted, context)
               for operator, keys in block.items() for key, wanted in keys.items()}
    if not all(results.values()):
        return False
    unknown = [f"{op} {key}" for (op, key), result in results.items()
               if result == HOLDS_ON_ABSENCE and known is not None and key not in known]
    if unknown and allowing:
        raise UnsupportedPolicy(f"an Allow whose condition {unknown[0]} {HOLDS_ON_ABSENCE}, a key offline does not "
                                "set for this call; add it to the call's row in offline/iam/iam_requests.py")
    return True


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...]
    not_resources: bool
    condition: Mapping[str, Mapping[str, Any]]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> "Statement":
        unknown = set(raw) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
        if unknown or raw.get("Effect") not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{where}: cannot evaluate statement {raw} (an identity policy statement has "
                                    "Effect Allow/Deny, Action or NotAction, Resource or NotResource, Condition)")
        if ("Action" in raw) == ("NotAction" in raw) or ("Resource" in raw) == ("NotResource" in raw):
            raise UnsupportedPolicy(f"{where}: a statement needs exactly one of Action/NotAction and of "
                                    f"Resource/NotResource: {raw}")
        return cls(effect=raw["Effect"], actions=tuple(_listed(raw.get("Action", raw.get("NotAction")))),
                   not_actions="NotAction" in raw,
                   resources=tuple(_listed(raw.get("Resource", raw.get("NotResource")))),
                   not_resources="NotResource" in raw, condition=raw.get("Condition", {}))

    def applies(self, action: str, resource: str, context: Context, known: Container[str] | None = None) -> bool:
        named = any(like(pattern, action, ignore_case=True) for pattern in self.actions)
        if named == self.not_actions:
            return False
        named = any(arn_like(pattern, resource) for pattern in self.resources)
        if named == self.not_resources:
            return False
        return conditions_hold(self.condition, context, known, allowing=self.effect == "Allow")


def parse_policy(document: Mapping[str, Any], where: str) -> list[Statement]:
    return [Statement.parse(raw, where) for raw in _listed(document.get("Statement", []))]


def decide(statements: Iterable[Statement], action: str, resource: str, context: Context,
           known: Container[str] | None = None) -> str:
    """"Deny" (an explicit deny applies), "Allow", or "ImplicitDeny" (nothing allows it). `known`: the condition
    keys the caller models (None: every key's absence is taken as certain)."""
    applying = [s.effect for s in statements if s.applies(action, resource, context, known)]
    return "Deny" if "Deny" in applying else "Allow" if "Allow" in applying else "ImplicitDeny"
