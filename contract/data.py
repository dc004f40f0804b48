"""The data contract: what a value of a user's CSV means, for every job and function that reads one.

The one place that says which texts are numbers, which are missing, which tasks the kit learns and which error a
reader raises on data it cannot take. The import job, the preprocessing (in its job and as the served model's
first container), evaluation, the baseline, the monitor, the script-mode example and the CDK side's settings all
read these. Standard library only, and no `from __future__` import: a job's script gets this module bundled into
its one file (stacks/constructs/job_script.py), a function's or a source folder's gets it as a link.
"""
import math
import re

# What the kit learns: the model contract's `task` setting, the import job's, evaluation's and training's.
TASKS = ("binary", "multiclass", "regression")

# A decimal number as pandas, numpy and XGBoost read one: ASCII digits, no underscores, no hex, no surrounding
# spaces (a reader strips them first), no inf or nan. float() alone would also take '1_0' as 10, ' 1' as 1 and
# another script's digits ('٣' as 3); `\d` would match those digits too.
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")

# What pandas reads as a missing value by default (its na_values), besides the empty cell.
MISSING = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


# A chunk of a column read at C speed: float() of a text made only of these characters is a NUMBER or fails
# (float's grammar less what it takes beyond NUMBER: spaces, underscores, other scripts' digits, inf and nan).
_NUMBER_BYTES = b"0123456789.+-eE"
_BLANK = {text: "" for text in MISSING}  # a missing value's text -> the empty cell
_NAN = {"": "nan"}


def floats_of(values: "tuple[str, ...] | list[str]") -> "list[float] | None":
    """Each value's float (NaN where it is MISSING), or None when any other value is not a NUMBER. An overflowing
    NUMBER (1e999) is an infinity here: the caller decides. Much faster than NUMBER per value, and the same."""
    if not MISSING.isdisjoint(values):
        values = list(map(_BLANK.get, values, values))
    text = "".join(values)
    if not text.isascii() or text.encode().translate(None, _NUMBER_BYTES):
        return None
    distinct = set(values)
    try:
        if len(distinct) * 2 > len(values):
            return list(map(float, map(_NAN.get, values, values)))
        # Few distinct texts (a count, an age, a flag): each read once.
        number = dict(zip(distinct, map(float, map(_NAN.get, distinct, distinct))))
        return list(map(number.__getitem__, values))
    except ValueError:  # '.', '1e', '1.2.3', '+-1': float refuses every text NUMBER refuses
        return None


_PLAIN_BYTES = b"0123456789.+-\n"  # no exponent: no NUMBER of at most 300 of these is beyond a float64
_TWO_DOTS = re.compile(r"\.[0-9]*\.")
_NO_DIGIT = ("\n-\n", "\n+\n", "\n.\n", "\n-.\n", "\n+.\n")
_EXPONENT = re.compile(r"[eE][+-]?[0-9]*")


def missing_among_numbers(values: "tuple[str, ...] | list[str]") -> "int | None":
    """How many values are MISSING when every other one is a finite NUMBER (as floats_of would tell), else None;
    without reading most numbers: a value of digits, signs and points is checked as text (a sign only first, one
    point at most, a digit at least), several times faster; a value with an exponent is read (floats_of), and so
    is any column holding something else."""
    missing = 0
    if not MISSING.isdisjoint(values):
        values = list(map(_BLANK.get, values, values))
        missing = values.count("")
    text = "\n" + "\n".join(values) + "\n"
    if text.isascii() and text.count("\n") == len(values) + 1 and max(map(len, values)) <= 300:
        if "e" in text or "E" in text:  # the values with an exponent read exactly, the rest's mantissas as text
            exponents = [text[text.rfind("\n", 0, at.start()) + 1:text.find("\n", at.end())]
                         for at in _EXPONENT.finditer(text)]
            if not _finite(floats_of(exponents)):
                return None
            text = _EXPONENT.sub("", text)
        if not text.encode().translate(None, _PLAIN_BYTES):
            plain = (text.count("-") == text.count("\n-") and text.count("+") == text.count("\n+")
                     and not any(case in text for case in _NO_DIGIT) and not _TWO_DOTS.search(text))
            return missing if plain else None
    return missing if _finite(floats_of(values)) else None


def _finite(floats: "list[float] | None") -> bool:
    """Whether floats_of read numbers only, none of them infinite."""
    return floats is not None and math.inf not in floats and -math.inf not in floats


class BadInput(ValueError):
    """The data, or a setting about it, cannot be taken; the message says where (file, line, column, value) and
    what to do. A ValueError, so the scikit-learn serving container answers it as a client error."""


def finite_number(text: str) -> "float | None":
    """A value read as the training data reads a number: its float when NUMBER and finite, else None."""
    if not NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None
