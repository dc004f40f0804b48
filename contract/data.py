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


# A column's values one per line, each a NUMBER or MISSING: one regex run checks a chunk of a column at C speed
# (a value holding a line break can pass it; a reader that counts lines or parses the numbers finds that one).
_CELL = "(?:{}|{})?".format(NUMBER.pattern, "|".join(map(re.escape, sorted(MISSING - {""}))))
NUMBER_LINES = re.compile(rf"{_CELL}(?:\n{_CELL})*")


class BadInput(ValueError):
    """The data, or a setting about it, cannot be taken; the message says where (file, line, column, value) and
    what to do. A ValueError, so the scikit-learn serving container answers it as a client error."""


def finite_number(text: str) -> "float | None":
    """A value read as the training data reads a number: its float when NUMBER and finite, else None."""
    if not NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None
