"""Take a user's CSV data set into one run: check it, type its columns, split it 70/15/15, and (as BuildAndRegister's
one data job, with --processed-dir) fit the preprocessing on the training split and apply it to every split.

A SageMaker Processing script (scikit-learn image, Python 3.9, standard library only for the import) that streams
the data, so a data set of any size fits. Its units of work are the *.csv files under --input-dir (sorted by
path), a file above --part-bytes cut into parts at line breaks (`parts`), taken side by side on every CPU
(contract/workers.py) and folded in their order, so the result is one pass's: pass 1 checks every value, types
each feature column (numeric when every value it holds is a number, else categorical) and counts the rows of each
label; pass 2 reads the units again and writes each row to the split that a seeded shuffle gave it. Rows are read
CHUNK_ROWS at a time and checked column by column in C; a chunk with a row of interest (a first value, a new
label, a value that is no number) is taken row by row, so the row named is the one a row-by-row read names.
Memory holds a chunk a worker, never the data set.

Outputs under --output-dir: raw/train.csv and raw/validation.csv (header, every column in the data set's order),
raw/test.csv (no header, no label: the rows a client sends), test-labels/labels.csv (their labels, line-aligned)
and raw/dataset.json (the columns, their kinds, the classes, the row counts, the columns dropped as constant and
why). Every value is the text the user wrote, only the spaces around it removed, so no precision is lost. With
--processed-dir, processing/features.py (--features-script: the job gets it as a second code input) then writes
the processed splits, the fitted parameters and the preprocessor model there, in the same job: one start-up.

A data set that a later job could not train on is refused here, before anything is billed: the message names the
file (its s3:// URI), line, column and value and says what to do. It goes to --message-file (SageMaker returns that
file as the job's ExitMessage) as `InvalidDataset: <message>`, and the script exits 1. A feature column that only
lacks signal in the training split (no value, or one number throughout) is no reason to refuse: it is dropped,
and a notice names it (the job's log, dataset.json, the summary).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import errno
import gc
import io
import itertools
import json
import math
import operator
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from contract.chunks import (JOIN, columns_of, csv_chunks, move_into, pack_columns, plain_csv, records, stripped,
                             unpack_columns, write_record)
from contract.data import MISSING, NUMBER, TASKS, BadInput, floats_of, missing_among_numbers
from contract.scripts import load_script
from contract.workers import in_order

SPLITS = ("train", "validation", "test")
CUTS = (0.7, 0.85, 1.0)  # each split ends at this share of a label's rows (int() of the product)
MIN_ROWS = 20
MIN_CLASS_ROWS = 4  # the fewest rows for which those cuts leave every split at least one (3 -> 2, 0, 1)
MAX_CATEGORIES = 100  # distinct values of a categorical column in the training split, each a one-hot column
MAX_LABELS = 10_000  # distinct labels tracked in pass 1; more means the label is no class (memory stays bounded)
MANY_NUMBERS = 10  # more distinct numeric labels than this look like a quantity to predict, not classes
MESSAGE_BYTES = 1024  # what SageMaker returns of the message file as ExitMessage
INFINITE = frozenset({"inf", "infinity"})
CHUNK_ROWS = 20_000  # rows read, checked and split at a time: memory stays bounded, the work in C
PART_BYTES = 64 * 2**20  # a file larger than this is read in parts of about this size (see `parts`)


class InvalidDataset(BadInput):
    """The data set cannot be trained on; the message says which file, line, column and value, and what to do.
    Its name starts the job's ExitMessage, which the workflow reads."""


def _listed(text: str, empty: str) -> list[str]:
    """A comma list setting (`empty` meaning none), each name as the header would hold it."""
    return [] if text.strip() in (empty, "") else [name.strip() for name in text.split(",") if name.strip()]


def _overflows(number: str) -> bool:
    """Whether a NUMBER text is beyond a float64. Only an exponent or a very long text can be: float() on every
    value would cost the scan dearly."""
    return ("e" in number or "E" in number or len(number) > 300) and not math.isfinite(float(number))


def _missing(values: tuple[str, ...]) -> int:
    """How many of the values are missing."""
    return 0 if MISSING.isdisjoint(values) else sum(map(values.count, MISSING.intersection(values)))


def _varies(first: tuple[str, float, str] | None, floats: list[float], missing: int) -> bool | None:
    """Whether a chunk of a numeric column not yet seen to vary holds a number other than the column's `first`
    (text, number, where); None when the first value is among them, to be taken row by row to keep its place."""
    if first is None:
        return None if missing < len(floats) else False
    return any(number != first[1] and not math.isnan(number) for number in set(floats))


def _shown(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values[:10]) + (", ..." if len(values) > 10 else "")


def _numeric(values: list[str]) -> bool:
    return all(NUMBER.fullmatch(v) for v in values)


def sorted_labels(labels: list[str]) -> list[str]:
    """Labels in the order of `classes`: numerically when all are numbers, else as text."""
    return sorted(labels, key=float) if _numeric(labels) else sorted(labels)


Chunks = Iterator[tuple[tuple[int, ...], tuple[list[str], ...]]]  # (line numbers, rows as read), as csv_chunks


class Source:
    """One CSV file of the data set, or a part of one (whole lines from byte `start` to `end`, the first of them
    line `first_line` of the file), and the s3:// URI that messages name it by."""

    def __init__(self, path: Path, uri: str, start: int = 0, end: int | None = None, first_line: int = 1) -> None:
        self.path, self.uri = path, uri
        self.start, self.end, self.first_line = start, end, first_line

    @property
    def header(self) -> bool:
        """Whether it starts with the file's header: every file does, and the first part of one."""
        return self.start == 0

    def chunks(self) -> Chunks:
        """(line numbers, rows as read) of up to CHUNK_ROWS non-blank rows at a time, the header first."""
        try:
            plain = self._plain()
            with (open(self.path, encoding="utf-8-sig", newline="") if self.end is None else self._part()) as handle:
                yield from csv_chunks(handle, CHUNK_ROWS, self.first_line, plain)
        except UnicodeDecodeError:
            raise InvalidDataset(self._not_utf8()) from None
        except csv.Error as error:
            raise InvalidDataset(f"{self.uri} line {error.line}: {error}; save the file as plain CSV") from None

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, values) of every non-blank row, the header first."""
        for lines, rows in self.chunks():
            yield from zip(lines, map(stripped, rows))

    def _plain(self) -> bool:
        """Whether its bytes hold no quote, carriage return or NUL (plain_csv): then its lines are split as text."""
        with open(self.path, "rb") as raw:
            raw.seek(self.start)
            left = math.inf if self.end is None else self.end - self.start
            while left > 0 and (block := raw.read(int(min(1 << 24, left)))):
                if not plain_csv(block):
                    return False
                left -= len(block)
        return True

    def _part(self) -> io.TextIOWrapper:
        """The part's text, streamed (memory stays a buffer's, whatever the part's size)."""
        raw = open(self.path, "rb")
        raw.seek(self.start)
        return io.TextIOWrapper(io.BufferedReader(_Range(raw, self.end - self.start)),
                                encoding="utf-8-sig" if self.header else "utf-8", newline="")

    def _not_utf8(self) -> str:
        """Where the first byte that is not UTF-8 is (the text reader only says which block of the file)."""
        offset = 0
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    return (f"{self.uri} line {number} is not UTF-8 text (byte {offset + error.start} of the file);"
                            " save it as UTF-8 CSV")
                offset += len(line)
        return f"{self.uri} is not UTF-8 text; save it as UTF-8 CSV"


class _Range(io.RawIOBase):
    """The next `remaining` bytes of an open file, then its end."""

    def __init__(self, handle, remaining: int) -> None:
        super().__init__()
        self.handle, self.remaining = handle, remaining

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self.remaining)
        got = self.handle.readinto(memoryview(buffer)[:wanted]) if wanted > 0 else 0
        self.remaining -= got
        return got

    def close(self) -> None:
        self.handle.close()
        super().close()


def parts(files: list[Source], size: int = PART_BYTES) -> list[Source]:
    """The data set's files, each larger than `size` bytes cut into parts of about that size at line breaks, unless
    it holds a quote character (a quoted value may hold a line break): each part is then scanned, split and
    transformed on its own, by the Spark data job side by side, and its share of each split is its own."""
    planned = []
    for source in files:
        length = source.path.stat().st_size
        cuts = _cuts(source.path, size) if length > size else None
        if cuts is None or len(cuts[0]) == 1:  # no cut: the file is read whole
            planned.append(source)
            continue
        starts, lines = cuts
        planned += [Source(source.path, source.uri, start, end, line)
                    for start, end, line in zip(starts, starts[1:] + [length], lines)]
    return planned


def _cuts(path: Path, size: int) -> tuple[list[int], list[int]] | None:
    """Where the parts of a file start (just after a line break, about every `size` bytes) and the line each starts
    at; None when the file holds a quote character or a carriage return outside a CRLF (the csv reader ends a line
    there too, so counting line feeds would misnumber the lines; a CRLF split by a block edge counts so too)."""
    starts, lines = [0], [1]
    position = newlines = 0
    cut = size  # the next part starts at the first line break from here
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            if b'"' in block or block.count(b"\r") != block.count(b"\r\n"):
                return None
            while cut < position + len(block):
                at = block.find(b"\n", cut - position)
                if at < 0:
                    cut = position + len(block)  # the line goes on into the next block
                    break
                starts.append(position + at + 1)
                lines.append(1 + newlines + block.count(b"\n", 0, at + 1))
                cut = starts[-1] + size
            newlines += block.count(b"\n")
            position += len(block)
    if starts[-1] >= position:  # the file ends with the last cut
        starts.pop()
        lines.pop()
    return starts, lines


def sources(input_dir: Path, source: str) -> list[Source]:
    """Every *.csv under input_dir, in S3's key order, named as SageMaker staged it: relative to the folder of
    the S3 prefix it came from."""
    folder = source[: source.rfind("/") + 1]
    paths = sorted((p for p in input_dir.rglob("*.csv") if p.is_file()),
                   key=lambda p: p.relative_to(input_dir).as_posix())
    if not paths:
        raise InvalidDataset(f"no .csv file under {source}; upload the data set as CSV files with a header row")
    return [Source(p, folder + p.relative_to(input_dir).as_posix()) for p in paths]


class Settings:
    """The model contract's settings as the job receives them (comma lists; `auto` and `none` for no names)."""

    def __init__(self, label: str, task: str, categorical: str, drop: str, bias: str = "none") -> None:
        if task not in TASKS:
            raise InvalidDataset(f"the task setting is {task!r}; set it to one of {', '.join(TASKS)}")
        self.label, self.task = label, task
        self.categorical, self.drop = _listed(categorical, "auto"), _listed(drop, "none")
        self.bias = _listed(bias, "none")


class Columns:
    """The header every file shares, checked against the settings."""

    def __init__(self, settings: Settings, first: Source, header: list[str]) -> None:
        self.names = header
        label = settings.label
        if label not in header:
            raise InvalidDataset(f"{first.uri} line 1 has no column {label!r}, which the label_column setting "
                                 f"names; its columns are {','.join(header)}: set label_column to the column "
                                 "to predict, or rename that column")
        if len(header) < 2:
            raise InvalidDataset(f"{first.uri} line 1 names only the label column {label!r}; add feature columns")
        for setting, names in (("categorical_columns", settings.categorical), ("drop_columns", settings.drop),
                               ("bias_columns", settings.bias)):
            for name in names:
                if name == label:
                    raise InvalidDataset(f"the {setting} setting names {name!r}, the label column "
                                         f"(label_column); remove it from {setting}")
                if name not in header:
                    raise InvalidDataset(f"the {setting} setting names {name!r}, which is not a column of "
                                         f"{first.uri} (its columns are {','.join(header)}); correct the name or "
                                         f"remove it from {setting}")
        self.label = header.index(label)
        self.features = [i for i in range(len(header)) if i != self.label]
        self.dropped = [i for i in self.features if header[i] in settings.drop]
        self.kept = [i for i in self.features if i not in self.dropped]
        if not self.kept:
            raise InvalidDataset(f"the drop_columns setting drops every feature of {first.uri} "
                                 f"({','.join(header[i] for i in self.features)}); keep at least one")
        self.listed = {i for i in self.kept if header[i] in settings.categorical}


def read_header(source: Source, before: list[str] | None) -> tuple[list[str], Chunks]:
    """The file's data rows, a chunk at a time, after checking its header (against the files before it, when there
    are some); a later part of a file has no header, its file's being the one before."""
    chunks = source.chunks()
    if not source.header:
        return before, chunks
    lines, rows = next(chunks, ((1,), ([""],)))
    header = stripped(rows[0])
    if not any(header):
        raise InvalidDataset(f"{source.uri} is empty; each file needs a header row naming its columns")
    for index, name in enumerate(header):
        if not name:
            raise InvalidDataset(f"{source.uri} line 1: column {index + 1} of the header has no name; name every "
                                 "column")
        if name in header[:index]:
            raise InvalidDataset(f"{source.uri} line 1 names column {name!r} twice; give each column its own name")
    if before is not None and header != before:
        raise InvalidDataset(f"{source.uri} line 1 has columns {','.join(header)}, but the files before it have "
                             f"{','.join(before)}; give every file the same header")
    return header, itertools.chain([(lines[1:], rows[1:])] if len(rows) > 1 else [], chunks)


class Scan:
    """Pass 1: every row checked, the feature columns typed, the rows of each label counted (in all, and per file).

    A scan of some files can take in the scan of the files after them (`absorb`), giving what one scan of them all
    gives: the Spark data job scans each file on its own, side by side, and folds the scans in the files' order."""

    def __init__(self, settings: Settings, files: list[Source], columns: Columns | None = None,
                 later: bool = False, keep: Path | None = None) -> None:
        """Scans `files`; with `columns` (the first file's of the data set), the first of them is a later file. A
        `later` scan, to be absorbed, keeps one label past MAX_LABELS instead of refusing it, so that the fold
        names the label one scan of them all would name. With `keep`, the rows read are kept in that file, a
        chunk a record by column (split_file reads them from there rather than parse the CSV again)."""
        self.settings, self.files, self.later = settings, files, later
        self.rows = 0
        self.labels: dict[str, int] = {}  # label text -> rows (classification)
        self.first: dict[str, str] = {}  # label text -> where it first appears
        self.file_labels: list[dict[str, int]] = []  # per file: label text -> rows (classification)
        self.file_rows: list[int] = []
        header, rows = read_header(files[0], None if columns is None else columns.names)
        self.columns = columns = columns or Columns(settings, files[0], header)
        # Columns that may still be numeric, and for those: the first value (text, number), where, and whether
        # any value differs from it; the first infinite or overflowing value of each.
        self.maybe_numeric = [i for i in columns.kept if i not in columns.listed]
        self.constant: dict[int, tuple[str, float, str]] = {}
        self.varies: set[int] = set()
        self.unbounded: dict[int, str] = {}
        self.valued: set[int] = set()  # kept columns holding a value somewhere
        self.missing: dict[int, int] = {}  # missing values of the columns that may be numeric
        self.unvalued = sorted(columns.listed)  # categorical columns as set, no value seen yet
        with open(keep, "wb") if keep else contextlib.nullcontext() as kept:
            for number, source in enumerate(files):
                if number:
                    header, rows = read_header(source, columns.names)
                before, counted = dict(self.labels), self.rows
                self._scan(source, rows, kept)
                self.file_rows.append(self.rows - counted)
                self.file_labels.append({label: count - before.get(label, 0) for label, count in self.labels.items()
                                         if count != before.get(label, 0)})
        self.valued.update(self.constant, self.unbounded)

    def absorb(self, later: "Scan") -> None:
        """Takes in the scan of the files that follow this one's, as if one scan had read them all in order. (When
        a data set has several problems, the later scan may name one that one scan would have reached later.)"""
        for label, count in later.labels.items():
            if label not in self.labels:
                if len(self.labels) == MAX_LABELS:
                    self._too_many(f"{later.first[label]}, column {self.settings.label!r}", label)
                self.first[label] = later.first[label]
            self.labels[label] = self.labels.get(label, 0) + count
        self.files += later.files
        self.rows += later.rows
        self.file_rows += later.file_rows
        self.file_labels += later.file_labels
        # What the later scan learnt of a column counts only while this one still takes it for numeric.
        numeric = set(self.maybe_numeric)
        for index, (text, number, where) in later.constant.items():
            if index in numeric:
                first = self.constant.setdefault(index, (text, number, where))
                if text != first[0] and number != first[1]:
                    self.varies.add(index)
        self.varies |= later.varies & numeric
        for index, where in later.unbounded.items():
            if index in numeric:
                self.unbounded.setdefault(index, where)
        for index, count in later.missing.items():
            if index in numeric:
                self.missing[index] = self.missing.get(index, 0) + count
        self.maybe_numeric = [i for i in self.maybe_numeric if i in later.maybe_numeric]
        self.valued |= later.valued
        self.unvalued = [i for i in self.unvalued if i not in self.valued]

    def _scan(self, source: Source, chunks: Chunks, kept=None) -> None:
        """Checks and counts the rows of one file: a chunk at once, or row by row where a row needs its place;
        each chunk kept by column in `kept` (a binary file), when given."""
        width = len(self.columns.names)
        for lines, rows in chunks:
            columns = columns_of(rows, width)
            if columns is None or not self._chunk(columns, len(rows)):
                self._rows(source, zip(lines, map(stripped, rows)))  # refuses a row of another width
            if kept is not None:
                write_record(kept, (lines, pack_columns(columns)))

    def _chunk(self, columns: list[tuple[str, ...]], count: int) -> bool:
        """Takes in a chunk of rows at once, column by column in C, when none of them is anything but counted: every
        row as wide as the header, every label known (classification) or a finite number (regression), every
        value of a column still taken for numeric a finite number or missing, and no numeric column's first value
        among them. Else changes nothing and returns False: `_rows` then takes the chunk row by row, so the first
        row with something to say is the one named, whatever the chunk size."""
        labels, counts = columns[self.columns.label], None
        if self.settings.task == "regression":
            if missing_among_numbers(labels) != 0:  # a label no number, or missing
                return False
        else:
            # A few classes are counted one by one (a pass in C each); a count short of the rows is a new label.
            counts = ({label: labels.count(label) for label in self.labels} if len(self.labels) <= 8
                      else collections.Counter(labels))
            if sum(counts.values()) != count or not self.labels.keys() >= counts.keys():
                return False
        missing, varying = {}, []
        for index in self.maybe_numeric:
            values = columns[index]
            missing[index] = missing_among_numbers(values)
            if missing[index] is None:
                return False
            if index in self.varies:
                continue
            varies = _varies(self.constant.get(index), floats_of(values), missing[index])
            if varies is None:
                return False  # the column's first value: its place is kept
            if varies:
                varying.append(index)
        self.rows += count
        for label, number in (counts or {}).items():
            self.labels[label] += number
        for index, number in missing.items():
            if number:
                self.missing[index] = self.missing.get(index, 0) + number
        self.varies.update(varying)
        if self.unvalued:
            self.valued.update(i for i in self.unvalued if not MISSING.issuperset(columns[i]))
            self.unvalued = [i for i in self.unvalued if i not in self.valued]
        return True

    def _rows(self, source: Source, rows: Iterator[tuple[int, list[str]]]) -> None:
        """Checks and counts rows one by one (names are bound locally: a loop over every value)."""
        width, label, names = len(self.columns.names), self.columns.label, self.columns.names
        number, missing, labels = NUMBER.fullmatch, MISSING, self.labels
        varies, constant, unbounded, missed = self.varies, self.constant, self.unbounded, self.missing
        classes = self.settings.task != "regression"
        for line, values in rows:
            if len(values) != width:
                raise InvalidDataset(f"{source.uri} line {line} has {len(values)} values for the {width} columns "
                                     "of the header; quote a value that holds a comma")
            self.rows += 1
            value = values[label]
            count = labels.get(value) if classes else None
            if count is None:
                self._label(source, line, value)
            else:
                labels[value] = count + 1
            for index in self.maybe_numeric:
                value = values[index]
                if value in missing:
                    missed[index] = missed.get(index, 0) + 1
                elif number(value):
                    if _overflows(value):
                        unbounded.setdefault(index, f"{source.uri} line {line}, column {names[index]!r}: "
                                                    f"{value!r}, which is beyond a 64-bit float")
                    elif index not in varies:
                        first = constant.get(index)
                        if first is None:
                            constant[index] = (value, float(value), f"{source.uri} line {line}")
                        elif value != first[0] and float(value) != first[1]:
                            varies.add(index)
                elif value.lower().lstrip("+-") in INFINITE:
                    unbounded.setdefault(index, f"{source.uri} line {line}, column {names[index]!r}: {value!r}, "
                                                "which is not a finite number")
                else:  # text: the column is categorical
                    self.maybe_numeric = [i for i in self.maybe_numeric if i != index]
                    self.valued.add(index)
            if self.unvalued:
                self.valued.update(i for i in self.unvalued if values[i] not in missing)
                self.unvalued = [i for i in self.unvalued if i not in self.valued]

    def _label(self, source: Source, line: int, value: str) -> None:
        name = self.settings.label
        where = f"{source.uri} line {line}, column {name!r}"
        if value in MISSING:
            raise InvalidDataset(f"{where}: {value!r} is a missing label; drop the rows without a label, or fill "
                                 "them in")
        if self.settings.task == "regression":
            if value.lower().lstrip("+-") in INFINITE:
                raise InvalidDataset(f"{where}: {value!r}, which is not a finite number; replace it or drop the row")
            if NUMBER.fullmatch(value) and _overflows(value):
                raise InvalidDataset(f"{where}: {value!r}, which is beyond a 64-bit float; rescale it or drop the "
                                     "row")
            if not NUMBER.fullmatch(value):
                raise InvalidDataset(f"{where}: {value!r} is not a number, and task=regression predicts a number: "
                                     "correct the value, or set task=binary or task=multiclass to predict classes")
            return
        count = self.labels.get(value)
        if count is not None:
            self.labels[value] = count + 1
            return
        if len(self.labels) == MAX_LABELS + self.later:
            if self.later:
                return  # the fold refuses the label one past the limit, which this scan kept
            self._too_many(where, value)
        self.labels[value], self.first[value] = 1, f"{source.uri} line {line}"

    def _too_many(self, where: str, value: str) -> None:
        raise InvalidDataset(f"{where}: {value!r} is one label too many: the column holds more than "
                             f"{MAX_LABELS} distinct labels, too many classes to learn; "
                             + ("set task=regression to predict the number" if _numeric(list(self.labels))
                                else "check that label_column names the column to predict"))

    def numeric(self) -> list[int]:
        """The numeric feature columns; refuses an infinite or overflowing value in one."""
        for index in self.maybe_numeric:
            if index in self.unbounded:
                raise InvalidDataset(f"{self.unbounded[index]}; replace it or leave the cell empty (a missing "
                                     "value is imputed)")
        return self.maybe_numeric

    def classes(self) -> list[str] | None:
        """The classes in `classes` order; refuses labels that do not fit the task, and too few rows."""
        task, name = self.settings.task, self.settings.label
        if self.rows < MIN_ROWS:
            raise InvalidDataset(f"the data set has {self.rows} rows; at least {MIN_ROWS} are needed to train and "
                                 "evaluate: add rows")
        if task == "regression":
            return None
        labels = sorted_labels(list(self.labels))
        # A classifier's classes are the texts; two spellings of one number would be two classes of one value.
        if _numeric(labels):
            for low, high in zip(labels, labels[1:]):
                if float(low) == float(high):
                    raise InvalidDataset(f"{self.first[high]}, column {name!r}: {high!r} is the number {low!r} "
                                         f"(from {self.first[low]}) written another way; write each label one way")
        many = _numeric(labels) and len(labels) > MANY_NUMBERS
        if len(labels) == 1:
            raise InvalidDataset(f"column {name!r} is {labels[0]!r} in all {self.rows} rows (from "
                                 f"{self.first[labels[0]]}); a classifier needs rows of at least 2 labels: add rows "
                                 "of the other classes")
        if task == "binary" and len(labels) > 2:
            third = list(self.first)[2]  # in the order read
            advice = ("a label of this many values looks like a number to predict: set task=regression" if many
                      else f"set task=multiclass to predict {len(labels)} classes")
            raise InvalidDataset(f"{self.first[third]}, column {name!r}: {third!r} is a third label; the column "
                                 f"holds {len(labels)} distinct labels ({_shown(labels)}) and task=binary needs "
                                 f"exactly 2: {advice}")
        if task == "multiclass" and len(labels) == 2:
            raise InvalidDataset(f"column {name!r} holds 2 distinct labels ({_shown(labels)}) and task=multiclass "
                                 "needs at least 3: set task=binary")
        for label in labels:
            if self.labels[label] < MIN_CLASS_ROWS:
                raise InvalidDataset(f"label {label!r} has only {self.labels[label]} rows (from {self.first[label]}),"
                                     " too few to put one in each of the train, validation and test splits: add rows "
                                     f"labelled {label!r} (each label needs at least {MIN_CLASS_ROWS})"
                                     + ("; or, if the label is a number to predict, set task=regression"
                                        if many else ""))
        return labels


def split_counts(file_counts: list[list[int]], seed: int) -> list[list[tuple[int, int, int]]]:
    """Per file, per group (a class, or all rows for regression): how many of its rows go to train, validation and
    test. Each group's 70/15/15 cut of all its rows is shared out over the files in proportion to their rows of the
    group (largest remainders first, ties in the seed's order), so each file gives every split its share and a file
    can be split without reading the others."""
    rng = random.Random(seed)
    counts: list[list[tuple[int, int, int]]] = [[] for _ in file_counts]
    for group in range(len(file_counts[0]) if file_counts else 0):
        rows = [per_file[group] for per_file in file_counts]
        ends = [int(sum(rows) * cut) for cut in CUTS]
        train = _apportion(ends[0], rows, rng)
        validation = _apportion(ends[1] - ends[0], [n - t for n, t in zip(rows, train)], rng)
        for number, (n, t, v) in enumerate(zip(rows, train, validation)):
            counts[number].append((t, v, n - t - v))
    return counts


def _apportion(total: int, weights: list[int], rng: random.Random) -> list[int]:
    """`total` shared out in proportion to `weights` (whole numbers, each share at most its weight when total is at
    most their sum): the whole parts, then one more for the largest remainders, ties in `rng`'s order."""
    whole = sum(weights)
    if not whole:
        return [0] * len(weights)
    shares = [total * weight // whole for weight in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), rng.random()))
    for index in order[:total - sum(shares)]:
        shares[index] += 1
    return shares


def file_assignment(counts: tuple[int, int, int], seed: int, file: int, group: int) -> bytearray:
    """The split (0 train, 1 validation, 2 test) of each of a file's rows of one group, in the order they are read:
    its counts, shuffled by a generator of its own (seeded by the run's seed, the file's and the group's numbers)."""
    train, validation, test = counts
    splits = bytearray(train) + bytearray(b"\x01" * validation) + bytearray(b"\x02" * test)
    random.Random(f"{seed}/{file}/{group}").shuffle(splits)
    return splits


class Training:
    """What pass 2 learns of each kept feature column in the training split."""

    def __init__(self, columns: Columns, numeric: list[int], later: bool = False) -> None:
        """A `later` one, to be absorbed, keeps one category past MAX_CATEGORIES instead of refusing it (as Scan)."""
        self.columns, self.numeric, self.later = columns, numeric, later
        self.categorical = [i for i in columns.kept if i not in numeric]
        self.rows = 0
        self.missing = {i: 0 for i in columns.kept}
        self.first: dict[int, tuple[str, float, str]] = {}  # numeric: first value and where
        self.varies: set[int] = set()
        self.categories: dict[int, dict[str, str]] = {i: {} for i in self.categorical}  # value -> where first

    def take(self, uri: str, lines: tuple[int, ...], rows: list[tuple[str, ...]],
             columns: list[tuple[str, ...]]) -> None:
        """Training rows (`columns`: the same rows by column): at once, column by column, unless a numeric
        column's first value or a new category is among them; then row by row, which keeps their places."""
        missing, varying = {}, []
        for index in self.numeric:
            values = columns[index]
            missing[index] = _missing(values)
            if index in self.varies:
                continue
            varies = _varies(self.first.get(index), floats_of(values), missing[index])
            if varies is None:
                break
            if varies:
                varying.append(index)
        else:
            for index in self.categorical:
                values = columns[index]
                missing[index] = _missing(values)
                if not self.categories[index].keys() >= set(values) - MISSING:
                    break
            else:
                self.rows += len(rows)
                for index, count in missing.items():
                    self.missing[index] += count
                self.varies.update(varying)
                return
        for line, values in zip(lines, rows):
            self.add(uri, line, values)

    def add(self, uri: str, line: int, values: list[str]) -> None:
        self.rows += 1
        for index in self.numeric:
            value = values[index]
            if value in MISSING:
                self.missing[index] += 1
            elif index not in self.varies:
                first = self.first.get(index)
                if first is None:
                    self.first[index] = (value, float(value), f"{uri} line {line}")
                elif value != first[0] and float(value) != first[1]:
                    self.varies.add(index)
        for index in self.categorical:
            value = values[index]
            if value in MISSING:
                self.missing[index] += 1
                continue
            seen = self.categories[index]
            if value not in seen:
                if not self.later:
                    self._category(index, value, f"{uri} line {line}")
                elif len(seen) <= MAX_CATEGORIES:  # one past the limit is kept for the fold to refuse
                    seen[value] = f"{uri} line {line}"

    def _category(self, index: int, value: str, where: str) -> None:
        seen = self.categories[index]
        if len(seen) == MAX_CATEGORIES:
            name = self.columns.names[index]
            raise InvalidDataset(f"{where}, column {name!r}: {value!r} is its value number {MAX_CATEGORIES + 1} in the "
                                 f"training split; a categorical column of more than {MAX_CATEGORIES} values is likely "
                                 f"an id or free text, which one-hot encoding cannot learn from: add {name!r} to "
                                 "drop_columns, or encode it as numbers")
        seen[value] = where

    def absorb(self, later: "Training") -> None:
        """Takes in what the training rows of the files that follow this one's gave (Scan.absorb's counterpart)."""
        self.rows += later.rows
        for index, count in later.missing.items():
            self.missing[index] += count
        for index, (text, number, where) in later.first.items():
            first = self.first.setdefault(index, (text, number, where))
            if text != first[0] and number != first[1]:
                self.varies.add(index)
        self.varies |= later.varies
        for index, values in later.categories.items():
            for value, where in values.items():
                if value not in self.categories[index]:
                    self._category(index, value, where)

    def constant(self, scan: Scan) -> dict[int, str]:
        """The kept feature columns the training split gives nothing to learn from (no value at all, or one number
        throughout), each with the notice that names it. The model cannot use them and standardizing a constant
        would divide by zero, so they are dropped, not refused: a rare category or a sparse flag can be constant in
        the training split by chance alone. Every kept column constant is refused: nothing would be left to learn."""
        notices = {}
        for index in self.columns.kept:
            name = self.columns.names[index]
            if self.missing[index] == self.rows:
                anywhere = "" if index in scan.valued else ", nor in any other row of the data set"
                notices[index] = (f"column {name!r} has no value in any of the {self.rows} rows of the training "
                                  f"split{anywhere}")
            elif index in self.numeric and index not in self.varies:
                value, _, where = self.first[index]
                everywhere = index not in scan.varies
                total, missing = (scan.rows, scan.missing.get(index, 0)) if everywhere else \
                    (self.rows, self.missing[index])
                rows = f"all {total - missing} rows" + ("" if everywhere else " of the training split") + \
                    (f" that hold a value ({missing} are missing)" if missing else "")
                notices[index] = f"column {name!r} holds the same value {value!r} in {rows} (for example {where})"
        if len(notices) == len(self.columns.kept):
            raise InvalidDataset("; ".join(notices.values()) + ": no feature column varies in the training split, "
                                 "so there is nothing to learn from; add rows where the features vary, or columns")
        return {index: f"{notice}; dropped, as it carries no signal" for index, notice in notices.items()}


def groups_of(scan: Scan, classes: list[str] | None) -> list[list[int]]:
    """Per file, the rows of each group: each class's in `classes` order, or all rows for regression."""
    if classes is None:
        return [[rows] for rows in scan.file_rows]
    return [[labels.get(label, 0) for label in classes] for labels in scan.file_labels]


def split_file(source: Source, columns: Columns, classes: list[str] | None, counts: list[tuple[int, int, int]],
               seed: int, number: int, outs: tuple, training: Training, fit: Callable | None = None,
               keep: Callable | None = None, kept: Iterable[tuple] | None = None) -> None:
    """Pass 2 for one file (the data set's file `number`): each row, as written, to its split's text file in
    `outs` (train, validation, test without the label, and the test labels); the training rows learnt by
    `training` and handed to `fit` (features.Fitter.add) a chunk at a time, by column (every feature in the data
    set's order), with where each row came from; each split's rows of a chunk handed to `keep` (the split's
    index, their lines, their labels and their features by column). The rows are read from the file, or from
    the records its Scan `kept`."""
    group_of = {label: index for index, label in enumerate(classes or [])}
    # Each group's splits in the order its rows come; a row takes the next split of its group.
    groups = [iter(file_assignment(group, seed, number, index)) for index, group in enumerate(counts)]
    label = columns.label
    label_of = operator.itemgetter(label)
    features = [i for i in range(len(columns.names)) if i != label]
    features_of = operator.itemgetter(*features) if len(features) > 1 else lambda row: (row[features[0]],)
    train, validation, test, labels = outs
    if kept is None:
        read = read_header(source, columns.names)[1]
        chunks = ((lines, columns_of(rows, len(columns.names))) for lines, rows in read)
        chunks = ((lines, by_column, by_column and _plain(map("".join, by_column))) for lines, by_column in chunks)
    else:  # a packed column is its values joined already, by a character none of them holds
        chunks = ((lines, unpack_columns(packed), all(isinstance(c, str) for c in packed) and _plain(packed, JOIN))
                  for lines, packed in kept)
    for lines, by_column, plain in chunks:
        if by_column is None:  # the scan found every row as wide as the header
            raise RuntimeError(f"{source.uri} changed while the job read it; run the job again")
        rows = list(zip(*by_column))
        if classes:
            splits = bytes(map(next, map(groups.__getitem__, map(group_of.__getitem__, map(label_of, rows)))))
        else:
            splits = bytes(itertools.islice(groups[0], len(rows)))
        if len(splits) != len(rows):  # a group's splits ran out: the file is not what the scan read
            raise RuntimeError(f"{source.uri} changed while the job read it; run the job again")
        chosen = [list(itertools.compress(rows, map(split.__eq__, splits))) for split in range(len(SPLITS))]
        trained, validated, tested = chosen
        _write(train, trained, plain)
        _write(validation, validated, plain)
        _write(test, list(map(features_of, tested)), plain and len(features) > 1)
        _write(labels, list(zip(map(label_of, tested))), False)
        for split, rows_of_split in enumerate(chosen):
            if not rows_of_split:
                continue
            split_lines = tuple(itertools.compress(lines, map(split.__eq__, splits)))
            by_column = list(zip(*rows_of_split))
            if split == 0:
                training.take(source.uri, split_lines, rows_of_split, by_column)
                if fit is not None:
                    fit([by_column[i] for i in features],
                        lambda index, known=split_lines: f"{source.uri} line {known[index]}")
            if keep is not None:
                keep(split, split_lines, by_column[label], [by_column[i] for i in features])


def _plain(texts: Iterable[str], joined_by: str = "") -> bool:
    """Whether no value needs quoting in CSV (none holds a comma, a quote, a line break or, for Python 3.9's
    writer, a NUL), given each column's values joined (by a character none of them holds), so that a row's line
    is its values joined by commas: what csv.writer writes then, at a fraction of its cost."""
    specials = ',"\r\n\x00'.replace(joined_by, "") if joined_by else ',"\r\n\x00'
    return not any(any(special in text for special in specials) for text in texts)


def _write(out, rows: list[tuple[str, ...]], plain: bool) -> None:
    """Rows as CSV lines ending in \\n, as csv.writer writes them: joined directly when they are `plain` and more
    than one value wide (csv.writer writes a row of one empty value as "")."""
    if not plain:
        csv.writer(out, lineterminator="\n").writerows(rows)
    elif rows:
        out.write("\n".join(map(",".join, rows)) + "\n")


def unit_rows(counts: list[list[tuple[int, int, int]]]) -> list[dict[str, int]]:
    """Each unit's rows of each split, from split_counts."""
    return [{name: sum(group[index] for group in per_file) for index, name in enumerate(SPLITS)}
            for per_file in counts]


def split_rows(counts: list[list[tuple[int, int, int]]]) -> dict[str, int]:
    """The rows of each split, from split_counts."""
    return {name: sum(unit[name] for unit in unit_rows(counts)) for name in SPLITS}


@contextlib.contextmanager
def raw_splits(output: Path, names: list[str]) -> Iterator[list]:
    """The raw splits' files open for writing (raw/train.csv, raw/validation.csv, raw/test.csv, then
    test-labels/labels.csv), the header `names` written to the first two; removed if what writes them fails, so a
    refusal leaves nothing for a later job to take."""
    (output / "raw").mkdir(parents=True, exist_ok=True)
    (output / "test-labels").mkdir(parents=True, exist_ok=True)
    paths = [output / "raw" / f"{name}.csv" for name in SPLITS] + [output / "test-labels" / "labels.csv"]
    handles = [open(path, "w", encoding="utf-8", newline="") for path in paths]
    try:
        for handle in handles[:2]:
            csv.writer(handle, lineterminator="\n").writerow(names)
        yield handles
    except BaseException:
        for handle, path in zip(handles, paths):
            handle.close()
            path.unlink()
        raise
    finally:
        for handle in handles:
            handle.close()


PIECES = ("train", "validation", "test", "labels")  # a unit's raw pieces, in raw_splits' order
ROWS = "rows.chunks"  # a unit's rows as its scan read them


def scan_units(settings: Settings, units: list[Source], work: Path) -> Scan:
    """Pass 1: each unit (a file, or a part of a large one: `parts`) scanned on its own, on every CPU
    (contract.workers), its rows kept by column in its folder under `work` (ROWS), and the scans folded in the
    units' order (Scan.absorb): what one scan of them all gives."""
    first = Columns(settings, units[0], read_header(units[0], None)[0])

    def scan(unit: tuple[int, Source]) -> Scan:
        number, source = unit
        (work / f"{number:05d}").mkdir()
        return Scan(settings, [source], first, number > 0, work / f"{number:05d}" / ROWS)
    scans = in_order(scan, enumerate(units))
    scan = next(scans)
    for later in scans:
        scan.absorb(later)
    return scan


def write_splits(scan: Scan, classes: list[str] | None, seed: int, output: Path, work: Path, fitter=None,
                 spill=None) -> tuple[list[list[tuple[int, int, int]]], dict[int, str]]:
    """Pass 2: each unit's rows to their splits, as written, on every CPU, each unit's pieces in a folder of its
    own under `work`, appended to the raw splits in the units' order; returns split_counts (each unit's rows of
    each group in each split) and the kept columns that are constant in the training split with their notices.
    A `spill` (features.Spill) keeps each unit's rows of each split by column, its numbers read once, for the
    `fitter` (features.Fitter), which learns the preprocessing from the kept training rows in the units' order,
    a chunk at a time (memory does not follow the units' size), and for the transform."""
    counts = split_counts(groups_of(scan, classes), seed)
    columns, numeric = scan.columns, scan.numeric()
    flags = [index in numeric for index in columns.features]

    def split(unit: tuple[int, Source]) -> Training:
        number, source = unit
        folder = work / f"{number:05d}"
        training = Training(columns, numeric, number > 0)
        with contextlib.ExitStack() as stack:
            pieces = [stack.enter_context(open(folder / f"{name}.csv", "w", encoding="utf-8", newline=""))
                      for name in PIECES]
            split_file(source, columns, classes, counts[number], seed, number, tuple(pieces), training,
                       keep=None if spill is None else lambda *chunk: spill.keep(number, source.uri, flags, *chunk),
                       kept=records(folder / ROWS))
        (folder / ROWS).unlink()
        return training
    if fitter is not None and spill is None:
        raise ValueError("a fitter learns from the rows a spill keeps: give write_splits both")
    training = None
    with raw_splits(output, columns.names) as handles:
        for number, learnt in enumerate(in_order(split, enumerate(scan.files))):
            for handle, name in zip(handles, PIECES):
                move_into(work / f"{number:05d}" / f"{name}.csv", handle)
            parsed = [] if fitter is None else (fitter.parse(features, where)
                                                for _, features, where in spill.chunks(number, "train"))
            training = learn(training, learnt, parsed, fitter)
        constant = training.constant(scan)
    return counts, constant


def learn(training: Training | None, learnt: Training, parsed: Iterable, fitter) -> Training:
    """The training split's statistics so far with a unit's folded in, in the units' order (the first unit's
    are the start); the unit's parsed training rows given to the fitter (features.Fitter.take) likewise."""
    for chunk in parsed:
        fitter.take(*chunk)
    if training is None:
        return learnt
    training.absorb(learnt)
    return training


def import_dataset(input_dir: Path, output: Path, settings: Settings, seed: int, source: str, work: Path,
                   new_fitter: Callable[[dict], Any] | None = None, part_bytes: int = PART_BYTES,
                   spill=None) -> tuple[dict, Any, list[dict[str, int]]]:
    """Checks and splits the data set, its units side by side, using `work` for their pieces; returns its
    description, with `new_fitter` (the column kinds -> a features.Fitter) the fitter that learnt the
    preprocessing from the training split as it was written, and each unit's rows of each split. `spill`: as
    write_splits."""
    scan = scan_units(settings, parts(sources(input_dir, source), part_bytes), work)
    classes = scan.classes()
    numeric = scan.numeric()
    fitter = None if new_fitter is None else new_fitter(kinds(scan.columns, numeric))
    counts, constant = write_splits(scan, classes, seed, output, work, fitter, spill)
    description = describe(output, settings, source, scan.columns, numeric, classes, split_rows(counts), constant)
    return description, fitter, unit_rows(counts)


def kinds(columns: Columns, numeric: list[int]) -> dict:
    """The feature columns by kind, as the preprocessing's fitter takes them (before any is found constant)."""
    names = columns.names
    return {"features": [names[i] for i in columns.features], "dropped": [names[i] for i in columns.dropped],
            "numeric": [names[i] for i in numeric], "categorical": [names[i] for i in columns.kept if i not in numeric]}


def describe(output: Path, settings: Settings, source: str, columns: Columns, numeric: list[int],
             classes: list[str] | None, rows: dict[str, int], constant: dict[int, str]) -> dict:
    """The data set's description, written to raw/dataset.json."""
    names = columns.names
    kept = [i for i in columns.kept if i not in constant]
    description = {"source": source, "label_column": settings.label, "task": settings.task, "columns": names,
                   "features": [names[i] for i in columns.features],
                   "categorical": [names[i] for i in kept if i not in numeric],
                   "numeric": [names[i] for i in kept if i in numeric],
                   "dropped": [names[i] for i in columns.features if i in columns.dropped or i in constant],
                   "constant": [names[i] for i in constant], "notices": list(constant.values()),
                   "classes": classes, "rows": rows}
    (output / "raw" / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return description


def exit_message(message: str) -> str:
    """The message as SageMaker keeps it: its first 1024 bytes, not cutting a character in two."""
    return message.encode("utf-8")[:MESSAGE_BYTES].decode("utf-8", errors="ignore")


def summary_of(description: dict, seed: int, train_mib: float) -> str:
    """What the state machine reads of the job: its ExitMessage, at most 1 KB of JSON. Counts, and the names of
    the columns dropped as constant as far as they fit (their count is always there; dataset.json has them all)."""
    constant = description["constant"]
    summary = {"rows": description["rows"], "num_class": len(description["classes"] or ()), "seed": seed,
               "train_mib": round(train_mib, 3), "constant": {"count": len(constant), "names": list(constant)}}
    while len(text := json.dumps(summary, separators=(",", ":"), ensure_ascii=False).encode()) > MESSAGE_BYTES:
        summary["constant"]["names"].pop()
    return text.decode()


def arguments(argv: list[str] | None = None, description: str = __doc__.split("\n", 1)[0]) -> argparse.Namespace:
    """The job's arguments, checked, the seed drawn when none is given (the Spark data job takes the same)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--label-column", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--categorical-columns", default="auto")
    parser.add_argument("--drop-columns", default="none")
    parser.add_argument("--bias-columns", default="none", help="checked to name columns of the data set")
    # The run's seed and data set differ per run while the arguments are fixed in the definition: the state
    # machine passes them in the job's environment. No seed ("null"): one is drawn and reported.
    parser.add_argument("--seed", default=os.environ.get("IMPORT_SEED", "null"))
    parser.add_argument("--source", default=os.environ.get("IMPORT_SOURCE"),
                        help="the s3:// URI the input came from, for messages")
    parser.add_argument("--message-file", type=Path, default=Path("/opt/ml/output/message"))
    # The whole data job: the preprocessing fitted on the training split and applied to every split, in the
    # same job (one start-up, the data already on its disk).
    parser.add_argument("--processed-dir", type=Path, help="also fit the preprocessing and write its output here")
    parser.add_argument("--features-script", type=Path, default=Path(__file__).resolve().parent / "features.py")
    parser.add_argument("--train-parts", type=int, default=1, help="files the processed training split is written as")
    parser.add_argument("--part-bytes", type=int, default=PART_BYTES,
                        help="a file larger than this is read in parts of about this size (unless it holds quotes)")
    args = parser.parse_args(argv)
    if not args.source:
        parser.error("--source (or IMPORT_SOURCE) is required")
    if args.seed in ("", "null"):
        args.seed = random.SystemRandom().randint(0, 2**31 - 1)
    elif not str(args.seed).isdigit():
        parser.error(f"--seed must be a whole number, got {args.seed!r}")
    if args.train_parts < 1:
        parser.error("--train-parts must be at least 1")
    if args.part_bytes < 1:
        parser.error("--part-bytes must be at least 1")
    args.seed = int(args.seed)
    args.message_file.parent.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    # The job makes no reference cycles, and the cycle collector would walk the millions of young rows it holds
    # again and again (a third of the job's time): reference counting alone frees them.
    gc.disable()
    args = arguments(argv)
    try:
        return run_job(args)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return refuse(args, volume_full(args, error))


def volume_full(args: argparse.Namespace, error: OSError) -> str:
    disk = next(p for p in (args.output_dir, *args.output_dir.parents) if p.exists())
    total = shutil.disk_usage(disk).total / 1e9
    return (f"VolumeFull: the job's disk ({total:.0f} GB) filled up while it wrote {error.filename or 'its output'}; "
            "BuildAndRegister sizes it from the data set's size (docs/build-and-register.md), which wide one-hot "
            "encodings (categorical columns of many values) can outgrow: drop such columns (drop_columns), or split "
            "the data set")


def refuse(args: argparse.Namespace, message: str) -> int:
    """Ends the job on `message` (`<Class>: ...`): the message file (its ExitMessage) and the log get it."""
    message = exit_message(message)
    args.message_file.write_text(message, encoding="utf-8")
    print(message, file=sys.stderr)
    return 1


def run_job(args: argparse.Namespace) -> int:
    """The import, and in the data job the preprocessing; the message file gets the summary or the refusal."""
    features = load_script(args.features_script, "features") if args.processed_dir else None
    for folder in (args.output_dir, args.processed_dir):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    # The units' pieces, the fitter's spilled training numbers (for the medians) and the units' rows kept for the
    # transform: all gone before the outputs upload.
    with tempfile.TemporaryDirectory(prefix="work-", dir=args.processed_dir or args.output_dir) as work:
        work = Path(work)
        spill = None if features is None else features.Spill(work)
        try:
            settings = Settings(args.label_column, args.task, args.categorical_columns, args.drop_columns,
                                args.bias_columns)
            description, fitter, rows = import_dataset(
                args.input_dir, args.output_dir, settings, args.seed, args.source, work,
                None if features is None else lambda kinds: features.Fitter(kinds, work), args.part_bytes, spill)
        except InvalidDataset as error:
            return refuse(args, f"InvalidDataset: {error}")
        for notice in description["notices"]:
            print(f"notice: {notice}", file=sys.stderr)
        if fitter is not None:
            raw = args.output_dir / "raw"
            try:
                spill.process(rows, fitter.parameters(raw / "train.csv", description), description,
                              args.processed_dir, args.train_parts)
            except features.BadInput as error:  # the import checked the data: the kit's fault, not the data's
                return refuse(args, f"PreprocessingFailed: {error}")
    return finish(args, description)


def finish(args: argparse.Namespace, description: dict) -> int:
    """The summary as the message file (the job's ExitMessage, which the workflow plans training from)."""
    train_mib = (args.output_dir / "raw" / "train.csv").stat().st_size / 2**20  # decides the training's instances
    args.message_file.write_text(summary_of(description, args.seed, train_mib), encoding="utf-8")
    print(json.dumps({"source": description["source"], "rows": description["rows"], "seed": args.seed,
                      "categorical": description["categorical"], "numeric": description["numeric"],
                      "notices": description["notices"]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
