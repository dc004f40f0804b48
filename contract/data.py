"""The data contract: what a value of a user's CSV means, for every job and function that reads one.

The one place that says which texts are numbers, which are missing, which tasks the kit learns and which error a
reader raises on data it cannot take. The import job, the preprocessing (in its job and as the served model's
first container), evaluation, the baseline, the monitor, the script-mode example and the CDK side's settings all
read these. Standard library only, and no `from __future__` import: a job's script gets this module bundled into
its one file (stacks/constructs/job_script.py), a function's or a source folder's gets it as a link.
"""
import csv
import itertools
import math
import operator
import re
from typing import Iterator

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


def csv_chunks(handle, size: int, first_line: int = 1) -> "Iterator[tuple[tuple[int, ...], tuple[list[str], ...]]]":
    """(line numbers, rows as read) of up to `size` non-blank CSV rows at a time; the first line of `handle` is
    line `first_line`. The reader's work stays in C: no Python per row. A csv.Error gets the line the reader
    stopped at as its `line`. Values keep their surrounding spaces: `stripped` or `columns_of` take them off."""
    reader = csv.reader(handle)
    numbered = zip(reader, map(operator.attrgetter("line_num"), itertools.repeat(reader)))
    offset = first_line - 1
    while True:
        try:
            chunk = list(itertools.islice(numbered, size))
        except csv.Error as error:
            error.line = reader.line_num + offset  # where the reader stopped, for the caller's message
            raise
        if not chunk:
            return
        rows, lines = zip(*chunk)
        if [] in rows:  # a blank line holds no row
            rows, lines = zip(*((row, line) for row, line in chunk if row)) if any(rows) else ((), ())
        if rows:
            yield (tuple(line + offset for line in lines) if offset else lines), rows


def stripped(row: "list[str]") -> "list[str]":
    """A row's values without their surrounding spaces: every reader of the kit's takes a value so."""
    return list(map(str.strip, row))


def columns_of(rows: "tuple[list[str], ...]", width: int) -> "list[tuple[str, ...]] | None":
    """The rows' values by column, each without its surrounding spaces (as `stripped`), or None when a row is not
    `width` values wide. A column with no white space in it at all is taken as it is: no strip per value."""
    if set(map(len, rows)) != {width}:
        return None
    columns = list(zip(*rows))
    for index, column in enumerate(columns):
        text = "".join(column)
        if text.split(None, 1) not in ([], [text]):
            columns[index] = tuple(map(str.strip, column))
    return columns


class BadInput(ValueError):
    """The data, or a setting about it, cannot be taken; the message says where (file, line, column, value) and
    what to do. A ValueError, so the scikit-learn serving container answers it as a client error."""


def finite_number(text: str) -> "float | None":
    """A value read as the training data reads a number: its float when NUMBER and finite, else None."""
    if not NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None
