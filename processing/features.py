"""Fit the feature preprocessing on the training split, apply it to every split, and serve that same step.

As a SageMaker Processing script it reads the import job's raw/ folder (--input-dir): train.csv and
validation.csv (a header, every column of the data set in its order), test.csv (no header, every column but the
label: the rows a client sends) and dataset.json (label column, task, classes, which columns are numeric,
categorical or dropped). It writes to --output-dir:
- train/train.csv and validation/validation.csv: no header, the label first, then the processed features;
- test/test.csv: the processed features of the test rows, line for line;
- params/features.json: everything fitted, with the task, the classes and the names of the output features;
- preprocessor/model.tar.gz: features.json and this file as code/features.py, the model the scikit-learn
  serving container runs as the first container of the registered inference pipeline (byte-stable: the same
  data gives the same bytes).
Runs the same way on a laptop: python features.py --input-dir raw/ --output-dir processed/

What is fitted, on the training split only:
- numeric columns: a missing value (an empty cell, or one of the texts pandas reads as missing by default: NA,
  N/A, NULL, NaN, None, nan, null, ...) becomes the column's training median; every value is then standardized,
  x' = (x - mean) / std, with the mean and the population standard deviation of the imputed training values.
  Memory does not grow with the data (Fitter): the median is exact, numpy's, selected from the values spilled to
  a file; the mean and deviation are merged block by block (fixed blocks, each summed correctly rounded, so they
  depend neither on how the data is read nor on numpy's release), within a relative 1e-14 of numpy's over the whole
  column (tests/test_features.py). Applying the
  fit, forked worker processes (one a CPU, at most 8) transform chunks side by side while the job reads the next
  ones, and the chunks are written in their order: the same bytes as one process writes. In the data job the
  import keeps each unit's rows by column, its numbers read once (Spill), and the units are transformed from there;
- categorical columns: one 0/1 column per category of the training split, sorted as text and named
  `column=category`; a missing value, or a category the training split did not have, is all zeros;
- dropped columns: removed;
- the label: classification -> its index in dataset.json's `classes`; regression -> its text as written.
Every value is read as text (surrounding spaces stripped, as the import strips them) and numbers are parsed from
that text, so nothing is reformatted on the way. Numbers are written in their shortest exact form (a float's
repr, without a trailing ".0", so one-hot columns read 0 and 1): one format for the training data and for what
the served model passes on.

As the serving module (the scikit-learn container's contract: model_fn, input_fn, predict_fn, output_fn), it
answers raw CSV rows, as in raw/test.csv, with the processed rows written exactly as the training data was, so
the next container (the model) scores what evaluation scored.

It runs in SageMaker's scikit-learn 1.2-1 image (Python 3.9, numpy 1.24) and needs neither pandas nor
scikit-learn: the standard library's csv module reads every value, in the job and in the container alike.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import importlib
import io
import itertools
import json
import math
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from contract.chunks import (columns_of, csv_chunks, move_into, pack_columns, records, stripped, unpack_columns,
                             write_record)
from contract.data import MISSING, TASKS, BadInput, finite_number, floats_of
from contract.workers import in_order

SPLITS = ("train", "validation", "test")
DATASET = "dataset.json"  # the import job's description of the data set
PARAMETERS = "features.json"
SERVING_MODULE = "features.py"  # the name SAGEMAKER_PROGRAM gives this file in the served model
CSV = "text/csv"
CHUNK_ROWS = 20000  # rows processed at a time: memory stays bounded on data sets of any size

Where = Callable[[int], str]  # the index of a row in a batch -> where that row came from, for messages


# -- reading --------------------------------------------------------------------------------------------------
def load_dataset(input_dir: Path) -> dict:
    """dataset.json, checked to describe one consistent data set."""
    path = input_dir / DATASET
    if not path.is_file():
        raise BadInput(f"missing input file {path}; the import job writes it beside the splits")
    try:
        dataset = json.loads(path.read_text())
    except ValueError as error:
        raise BadInput(f"{path} is not JSON: {error}") from None
    keys = ("label_column", "task", "columns", "features", "categorical", "numeric", "dropped", "classes")
    absent = [key for key in keys if key not in dataset]
    if absent:
        raise BadInput(f"{path} lacks {', '.join(absent)}")
    label, task, columns = dataset["label_column"], dataset["task"], dataset["columns"]
    if task not in TASKS:
        raise BadInput(f"{path}: task {task!r} is not one of {', '.join(TASKS)}")
    if label not in columns or dataset["features"] != [c for c in columns if c != label]:
        raise BadInput(f"{path}: features must be every column but the label {label!r}, in the columns' order")
    if (dataset["classes"] is None) != (task == "regression") or task == "binary" and len(dataset["classes"]) != 2:
        raise BadInput(f"{path}: classes {dataset['classes']!r} do not fit the task {task!r} (binary: two "
                       "classes, multiclass: a list, regression: null)")
    for name in kept(dataset):
        if (name in dataset["numeric"]) == (name in dataset["categorical"]):
            raise BadInput(f"{path}: feature {name!r} must be in exactly one of numeric and categorical")
    if not kept(dataset):
        raise BadInput(f"{path}: every feature is dropped; keep at least one")
    return dataset


def row_shape(contract: dict) -> str:
    """What one raw row holds (dataset.json and features.json alike), for messages about a row's width."""
    return (f"{len(contract['features'])} values: {','.join(contract['features'])}, in this order, without the "
            f"label {contract['label_column']!r}")


def kept(contract: dict) -> list[str]:
    """The features the model sees, in the data set's order (dataset.json and features.json alike)."""
    return [name for name in contract["features"] if name not in contract["dropped"]]


class Lines:
    """Where the rows of a chunk came from (a Where that a worker process can be sent)."""

    def __init__(self, path: Path, lines: list[int]) -> None:
        self.path, self.lines = path, lines

    def __call__(self, index: int) -> str:
        return f"{self.path} line {self.lines[index]}"


def split_chunks(input_dir: Path, split: str, dataset: dict) -> Iterator[tuple[list[str] | None,
                                                                               list[tuple[str, ...]], Where]]:
    """(labels, feature columns in the data set's order, where) per chunk of a split; test rows have no label."""
    path = input_dir / f"{split}.csv"
    if not path.is_file():
        raise BadInput(f"missing input file {path}")
    columns, label = dataset["columns"], dataset["label_column"]
    with open(path, newline="", encoding="utf-8") as handle:
        chunks = csv_chunks(handle, CHUNK_ROWS)
        if split == "test":
            width, position = len(dataset["features"]), None
        else:
            lines, rows = next(chunks, ((1,), ([],)))
            if stripped(rows[0]) != columns:
                raise BadInput(f"{path} line 1 has columns {','.join(stripped(rows[0]))}; dataset.json says "
                               f"{','.join(columns)}")
            chunks = itertools.chain([(lines[1:], rows[1:])] if len(rows) > 1 else [], chunks)
            width, position = len(columns), columns.index(label)
        expected = f"{width}, the columns of its header" if position is not None else row_shape(dataset)
        count = 0
        for lines, rows in chunks:
            where = Lines(path, list(lines))
            by_column = columns_of(rows, width)
            if by_column is None:
                index = next(index for index, row in enumerate(rows) if len(row) != width)
                raise BadInput(f"{where(index)} has {len(rows[index])} values; expected {expected}")
            labels = None if position is None else list(by_column.pop(position))
            count += len(rows)
            yield labels, by_column, where
    if not count:
        raise BadInput(f"{path} has no rows")


def numbers(values: tuple[str, ...] | list[str] | np.ndarray, column: str, where: Where) -> np.ndarray:
    """A column's numbers, NaN where a value is missing; anything else that is not a finite number is refused.
    Numbers read already (an array: the data job's kept rows, Spill) are taken as they are, copied."""
    if isinstance(values, np.ndarray):
        return values.astype(float)
    floats = floats_of(values)
    if floats is not None:
        parsed = np.array(floats, dtype=float)
        if not np.isinf(parsed).any():  # 1e999 is a number, but beyond a 64-bit float
            return parsed
    index, text = next((index, text) for index, text in enumerate(values) if text not in MISSING
                       and finite_number(text) is None)
    raise BadInput(f"{where(index)}, column {column!r}: {text!r} is not a finite number, and the column is "
                   "numeric; send a number, or an empty cell for a missing value")


# -- fitting and applying ---------------------------------------------------------------------------------
STATS_BLOCK = 1 << 20  # values per block of the running moments: fixed, so no statistic depends on CHUNK_ROWS
SIGN = np.uint64(1 << 63)


def parsed(dataset: dict, features: list[tuple[str, ...]], where: Where) -> tuple[int, dict[str, np.ndarray],
                                                                                 dict[str, set[str]]]:
    """What fitting needs of some training rows, given by column (every feature, in the data set's order): their
    count, each kept numeric column's numbers (missing ones left out) and each kept categorical column's values
    (missing ones left out)."""
    columns = dict(zip(dataset["features"], features))
    numeric = {}
    for name in (c for c in kept(dataset) if c in dataset["numeric"]):
        values = numbers(columns[name], name, where)
        numeric[name] = values[~np.isnan(values)]
    categorical = {name: set(columns[name]) - MISSING for name in kept(dataset) if name in dataset["categorical"]}
    return len(features[0]), numeric, categorical


class Fitter:
    """Learns the training split chunk by chunk in memory that does not grow with the data: per numeric column
    the running count, mean and sum of squared deviations of its values (merged block by block, Chan et al.'s
    pairwise update) and its values spilled to a file for the exact median; per categorical column its set of
    categories (at most 100, which the import checks)."""

    def __init__(self, dataset: dict, spill: Path) -> None:
        self.dataset, self.spill = dataset, spill
        self.numeric = [c for c in kept(dataset) if c in dataset["numeric"]]
        self.seen: dict[str, set] = {c: set() for c in kept(dataset) if c in dataset["categorical"]}
        self.rows = 0
        self.moments = {c: (0, 0.0, 0.0) for c in self.numeric}  # values, their mean, their squared deviations
        self.pending: dict[str, list[np.ndarray]] = {c: [] for c in self.numeric}
        self.files = {c: open(spill / f"{index}.f8", "wb") for index, c in enumerate(self.numeric)}

    def add(self, features: list[tuple[str, ...]], where: Where) -> None:
        """Rows of the training split by column: every feature, in the data set's order."""
        self.take(*self.parse(features, where))

    def parse(self, features: list[tuple[str, ...]], where: Where) -> tuple:
        """What `take` takes of some training rows, parsed wherever they were read (a worker process)."""
        return parsed(self.dataset, features, where)

    def take(self, rows: int, numeric: dict[str, np.ndarray], categorical: dict[str, set[str]]) -> None:
        """What `parsed` read of some rows, in the order the rows come: the same parameters whoever parsed them
        (the Spark data job's executors parse, its driver takes)."""
        self.rows += rows
        for name in self.numeric:
            values = numeric[name]
            values.tofile(self.files[name])
            self.pending[name].append(values)
            if sum(map(len, self.pending[name])) >= STATS_BLOCK:
                self._merge(name)
        for name, seen in self.seen.items():
            seen.update(categorical[name])

    def _merge(self, name: str) -> None:
        """Folds the first STATS_BLOCK pending values of a column into its moments (every block but the last full)."""
        pending = np.concatenate(self.pending[name])
        block, rest = pending[:STATS_BLOCK], pending[STATS_BLOCK:]
        self.pending[name] = [rest] if len(rest) else []
        if not len(block):
            return
        count, mean, squares = self.moments[name]
        # Correctly rounded sums (math.fsum), not numpy's: its summation order differs between releases, and the
        # one-instance and Spark data jobs run in images of different numpy releases yet give the same bytes.
        block_mean = math.fsum(block.tolist()) / len(block)
        block_squares = math.fsum(((block - block_mean) ** 2).tolist())
        total = count + len(block)
        delta = block_mean - mean
        self.moments[name] = (total, mean + delta * len(block) / total,
                              squares + block_squares + delta * delta * count * len(block) / total)

    def parameters(self, source: Path, dataset: dict | None = None, workers: int | None = None) -> dict:
        """What was fitted; `source` names the training split in messages. `dataset`, when given, is the final
        description of the data set: columns it drops since (constant ones) are left out. The columns' medians
        are selected on `workers` CPUs (contract.workers)."""
        dataset = dataset or self.dataset
        names = dataset["features"]
        for name in self.numeric:
            while self.pending[name]:
                self._merge(name)
            self.files[name].close()
        empty = [name for name in kept(dataset) if not (self.seen.get(name) or name in self.numeric
                                                        and self.moments[name][0])]
        if empty:
            raise BadInput(f"{source}, column {empty[0]!r}: every value is missing, so nothing can be fitted; drop "
                           "the column or fill it")
        numeric = {}
        fitted = [(index, name) for index, name in enumerate(self.numeric) if name in kept(dataset)]
        medians = in_order(lambda item: exact_median(self.spill / f"{item[0]}.f8", self.moments[item[1]][0]), fitted,
                           workers)
        for (index, name), median in zip(fitted, medians):
            count, mean, squares = self.moments[name]
            # The missing values, imputed with the median, join the moments as a block of that one value.
            missing = self.rows - count
            delta = median - mean
            total_mean = mean + delta * missing / self.rows
            total_squares = squares + delta * delta * count * missing / self.rows
            std = math.sqrt(total_squares / self.rows)
            if std == 0:  # the import drops constant columns; a standardized constant would divide by zero
                raise BadInput(f"{source}, column {name!r}: every value (missing ones imputed) is {median!r}; a "
                               "constant column cannot be standardized: drop it")
            numeric[name] = {"median": median, "mean": total_mean, "std": std}
        categorical = {name: sorted(categories) for name, categories in self.seen.items() if name in kept(dataset)}
        outputs = [item for name in kept(dataset)
                   for item in ([name] if name in numeric else [f"{name}={value}" for value in categorical[name]])]
        return {"task": dataset["task"], "label_column": dataset["label_column"], "classes": dataset["classes"],
                "features": names, "dropped": [name for name in names if name in dataset["dropped"]],
                "numeric": numeric, "categorical": categorical, "output_features": outputs, "fitted_on": "train"}


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned keys in the floats' order (sign bit flipped for positives, every bit for negatives)."""
    bits = values.view(np.uint64)
    return np.where(bits & SIGN, ~bits, bits | SIGN)


def _kth(path: Path, k: int) -> float:
    """The k-th smallest (from 0) of the floats in the file: four passes of a 16-bit radix select over its blocks,
    memory one block and 65,536 counts, exact."""
    prefix, shift = 0, 64
    for _ in range(4):
        shift -= 16
        counts = np.zeros(1 << 16, dtype=np.int64)
        for block in _blocks(path):
            keys = _sort_keys(block)
            if shift < 48:
                keys = keys[(keys >> np.uint64(shift + 16)) == np.uint64(prefix)]
            counts += np.bincount(((keys >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64),
                                  minlength=1 << 16)
        below = np.cumsum(counts)
        digit = int(np.searchsorted(below, k, side="right"))
        k -= int(below[digit - 1]) if digit else 0
        prefix = (prefix << 16) | digit
    key = np.array([prefix], dtype=np.uint64)
    return float(np.where(key & SIGN, key & ~SIGN, ~key).view(np.float64)[0])


def _blocks(path: Path) -> Iterator[np.ndarray]:
    with open(path, "rb") as handle:
        while True:
            block = np.fromfile(handle, dtype=np.float64, count=STATS_BLOCK)
            if not len(block):
                return
            yield block


def exact_median(path: Path, count: int) -> float:
    """The median of the `count` floats in the file, as numpy's median gives it (the mean of the two middle
    values for an even count)."""
    high = _kth(path, count // 2)
    if count % 2:
        return high
    # The value just below the middle: the middle one again when at least count // 2 values are no larger
    # (duplicates), else the largest value below it; one pass.
    below, largest = 0, -math.inf
    for block in _blocks(path):
        lower = block[block < high]
        below += len(lower)
        largest = max(largest, float(lower.max())) if len(lower) else largest
    low = high if below < count // 2 else largest
    return float(np.mean(np.array([low, high])))


def fit(input_dir: Path, dataset: dict) -> dict:
    """Medians, means, standard deviations and categories of the training split's features."""
    with tempfile.TemporaryDirectory(prefix="fit-", dir=input_dir) as spill:
        fitter = Fitter(dataset, Path(spill))
        for labels, features, where in split_chunks(input_dir, "train", dataset):
            label_texts(dataset, labels, where)  # a bad label fails here, before anything is written
            fitter.add(features, where)
        return fitter.parameters(input_dir / "train.csv")


def transform(parameters: dict, features: list[tuple[str, ...]], where: Where) -> np.ndarray:
    """Raw feature values by column (every feature, in the data set's order) -> the processed feature matrix."""
    columns = dict(zip(parameters["features"], features))
    blocks = []
    for name in kept(parameters):
        values = columns.get(name, ())
        if name in parameters["numeric"]:
            fitted = parameters["numeric"][name]
            column = numbers(values, name, where)
            column[np.isnan(column)] = fitted["median"]
            blocks.append(((column - fitted["mean"]) / fitted["std"])[:, None])
        else:
            categories = parameters["categorical"][name]
            index = {category: position for position, category in enumerate(categories)}
            codes = np.fromiter(map(index.get, values, itertools.repeat(-1)), int, len(values))  # -1: missing, unseen
            blocks.append((codes[:, None] == np.arange(len(categories))).astype(float))
    return np.hstack(blocks)


def label_texts(dataset: dict, labels: list[str], where: Where) -> list[str]:
    """Classification: each label's index in the classes; regression: the label as written."""
    name, classes = dataset["label_column"], dataset["classes"]
    if classes is None:
        for index, text in enumerate(labels):
            if finite_number(text) is None:
                raise BadInput(f"{where(index)}, column {name!r}: the label {text!r} is not a finite number; a "
                               "regression label must be one")
        return labels
    index = {text: str(position) for position, text in enumerate(classes)}
    for position, text in enumerate(labels):
        if text not in index:
            raise BadInput(f"{where(position)}, column {name!r}: the label {text!r} is not one of the classes "
                           f"{', '.join(classes)} that dataset.json lists")
    return [index[text] for text in labels]


def csv_text(matrix: np.ndarray, labels: list[str] | None = None,
             groups: list[tuple[int, int]] = ()) -> str:
    """Rows as CSV without header, the label first when given: one format for the training data and for what
    the served model passes on. A number is its repr (the shortest text that reads back as the same 64-bit
    float) without a trailing ".0". `groups` (one_hot_groups): the one-hot columns, each group written as the
    text of its row's one category (or none), so a row is a few texts joined rather than one per column."""
    starts = dict(groups)
    columns, index = [], 0
    while index < matrix.shape[1]:
        width = starts.get(index)
        if width is None:
            columns.append(number_texts(matrix[:, index]))
            index += 1
            continue
        block = matrix[:, index:index + width]
        table = [",".join("1" if column == one else "0" for column in range(width)) for one in range(width + 1)]
        codes = np.where(block.any(axis=1), block.argmax(axis=1), width)  # width: no category (all zeros)
        columns.append(list(map(table.__getitem__, codes.tolist())))
        index += width
    if labels is not None:
        columns.insert(0, labels)
    return "\n".join(map(",".join, zip(*columns))) + "\n" if len(matrix) else ""


def number_texts(column: np.ndarray) -> list[str]:
    """Each number's repr without a trailing ".0"; a column of only 0 and 1 (one-hot) by table, not by repr."""
    if ((column == 1) | ((column == 0) & ~np.signbit(column))).all():
        return np.where(column == 1, "1", "0").tolist()
    numbers = column.tolist()
    distinct = set(numbers)
    if len(distinct) * 2 > len(numbers):
        texts = list(map(repr, numbers))
    else:  # few distinct values (a standardized count, an age): each written once
        text = dict(zip(distinct, map(repr, distinct)))
        texts = list(map(text.__getitem__, numbers))
    for index in np.flatnonzero(column == np.trunc(column)).tolist():  # only these can end in ".0"
        if texts[index].endswith(".0"):
            texts[index] = texts[index][:-2]
    return texts


# -- the job ------------------------------------------------------------------------------------------------
def served_source() -> bytes:
    """This file as the serving code: in a job, it is the bundle synthesis shipped (the contract inside); run from
    the repository, where it imports contract.data, it is bundled the same way, so both serve the same bytes."""
    if "contract.data" not in sys.modules:
        return Path(__file__).read_bytes()
    return importlib.import_module("contract.bundle").bundle(Path(__file__)).encode()


def package(parameters: dict, target: Path) -> None:
    """The fitted step as a model archive: the parameters, and this file as the serving code (byte-stable)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    files = {PARAMETERS: parameters_text(parameters).encode(), f"code/{SERVING_MODULE}": served_source()}
    with open(target, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, body in sorted(files.items()):
            info = tarfile.TarInfo(name)  # uid, gid 0, no owner names, mtime 0
            info.size, info.mode = len(body), 0o644
            archive.addfile(info, io.BytesIO(body))


def parameters_text(parameters: dict) -> str:
    return json.dumps(parameters, indent=2) + "\n"


def process(input_dir: Path, output_dir: Path, train_parts: int = 1, fitted: dict | None = None) -> dict:
    """`train_parts` > 1 writes the training split as that many files, its rows dealt out in turn, so that a
    training job of as many instances can give each its own (ShardedByS3Key). `fitted`: what a Fitter learnt
    while the training split was written (the data job), so it is not read twice."""
    dataset = load_dataset(input_dir)
    parameters = fitted or fit(input_dir, dataset)
    rows = {}
    for split in SPLITS:
        parts = min(train_parts, dataset["rows"]["train"]) if split == "train" else 1  # no empty part
        targets = split_targets(output_dir, split, parts)
        outs = [open(target, "w", encoding="utf-8", newline="") for target in targets]
        try:
            for texts in transformed(split_jobs(input_dir, split, dataset, parts, rows), parameters, dataset):
                for out, text in zip(outs, texts):
                    out.write(text)
        finally:
            for out in outs:
                out.close()
    return finish(parameters, rows, output_dir)


def split_targets(output_dir: Path, split: str, parts: int) -> list[Path]:
    """A processed split's files (their folder made): one, or a training split's `parts` files, part-00000.csv on."""
    (output_dir / split).mkdir(parents=True, exist_ok=True)
    return ([output_dir / split / f"{split}.csv"] if parts == 1 else
            [output_dir / split / f"part-{index:05d}.csv" for index in range(parts)])


def finish(parameters: dict, rows: dict[str, int], output_dir: Path) -> dict:
    """The fitted parameters with the processed rows of each split, as params/features.json and the served model."""
    parameters["rows"] = rows
    (output_dir / "params").mkdir(parents=True, exist_ok=True)
    (output_dir / "params" / PARAMETERS).write_text(parameters_text(parameters))
    package(parameters, output_dir / "preprocessor" / "model.tar.gz")
    return parameters


def split_jobs(input_dir: Path, split: str, dataset: dict, parts: int, rows: dict) -> Iterator[tuple]:
    """chunk_texts' arguments for each chunk of a split (with the split's row it starts at); the split's rows are
    in rows[split] once every chunk has been read."""
    first = 0
    for labels, features, where in split_chunks(input_dir, split, dataset):
        yield labels, features, where, first, parts
        first += len(features[0])
    rows[split] = first


def chunk_texts(parameters: dict, dataset: dict, labels: list[str] | None, features: list[tuple[str, ...]],
                where: Where, first: int, parts: int) -> list[str]:
    """One chunk of a split (its features by column) as CSV per part file: row i of the split (the chunk starts at
    row `first`) goes to part i % parts."""
    processed = transform(parameters, features, where)
    texts = None if labels is None else label_texts(dataset, labels, where)
    groups = one_hot_groups(parameters)
    return [csv_text(processed[(part - first) % parts::parts],
                     None if texts is None else texts[(part - first) % parts::parts], groups) for part in range(parts)]


def one_hot_groups(parameters: dict) -> list[tuple[int, int]]:
    """(first output column, width) of each categorical feature's one-hot columns, in `transform`'s output."""
    groups, start = [], 0
    for name in kept(parameters):
        width = len(parameters["categorical"][name]) if name in parameters["categorical"] else 1
        if name in parameters["categorical"]:
            groups.append((start, width))
        start += width
    return groups


def transformed(jobs: Iterator[tuple], parameters: dict, dataset: dict) -> Iterator[list[str]]:
    """chunk_texts of each job, in order, computed on every CPU (contract.workers) while this process reads the
    next chunks: the same bytes as one process writes. A chunk's error is raised when its turn comes, so the
    first bad row of the split is the one named."""
    return in_order(lambda job: chunk_texts(parameters, dataset, *job), jobs)


class Spill:
    """The data job's rows of each split, kept as the import splits them (processing/import_dataset.py), by unit
    (a file, or a part of one) and by column: the transform then neither reads nor parses the CSV again, and
    transforms the units on every CPU. A unit's rows of a split are a file of chunks under `work`/<unit>/."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def _path(self, unit: int, name: str) -> Path:
        return self.work / f"{unit:05d}" / name

    def keep(self, unit: int, uri: str, numeric: list[bool], split: int, lines: tuple[int, ...],
             labels: tuple[str, ...], features: list[tuple[str, ...]]) -> list:
        """A chunk of a unit's rows of split number `split` (SPLITS), with their lines in the file at `uri`; each
        feature flagged `numeric` is kept as its numbers (read once, here: the import checked them). Returns the
        features as kept (`parsed` and `transform` take them so)."""
        kept = [np.array(floats_of(values), dtype=float) if flag else values for flag, values in zip(numeric, features)]
        with open(self._path(unit, f"{SPLITS[split]}.chunks"), "ab") as handle:
            write_record(handle, (uri, lines, pack_columns([None if SPLITS[split] == "test" else labels] + [
                values.tobytes() if flag else values for flag, values in zip(numeric, kept)])))
        return kept

    def chunks(self, unit: int, split: str) -> Iterator[tuple[tuple[str, ...] | None, list[tuple[str, ...]], Where]]:
        """(labels, features by column, where) of each kept chunk of a unit's rows of a split, as split_chunks."""
        for uri, lines, packed in records(self._path(unit, f"{split}.chunks")):
            labels, *features = unpack_columns(packed)
            yield labels, [np.frombuffer(values) if isinstance(values, bytes) else values
                           for values in features], Lines(uri, lines)

    def process(self, rows: list[dict[str, int]], parameters: dict, dataset: dict, output_dir: Path,
                train_parts: int) -> dict:
        """`process` for the kept units (`rows`: each one's rows of each split, in the data set's order): each
        unit's rows of each split transformed side by side, written in order; the same bytes as `process` on
        the raw splits."""
        totals = {split: sum(unit[split] for unit in rows) for split in SPLITS}
        parts = min(train_parts, totals["train"])
        firsts = list(itertools.accumulate((unit["train"] for unit in rows), initial=0))  # each unit's first row

        def transform(item: tuple[int, str]) -> list[Path]:
            unit, split = item
            count, first = (parts, firsts[unit]) if split == "train" else (1, 0)
            pieces = [self._path(unit, f"{split}-{part}.out") for part in range(count)]
            with contextlib.ExitStack() as stack:
                outs = [stack.enter_context(open(piece, "w", encoding="utf-8", newline="")) for piece in pieces]
                for labels, features, where in self.chunks(unit, split):
                    for out, text in zip(outs, chunk_texts(parameters, dataset, labels, features, where, first, count)):
                        out.write(text)
                    first += len(features[0])
            return pieces
        items = [(unit, split) for split in SPLITS for unit in range(len(rows))]
        with contextlib.ExitStack() as stack:
            targets = {split: [stack.enter_context(open(target, "w", encoding="utf-8", newline=""))
                               for target in split_targets(output_dir, split, parts if split == "train" else 1)]
                       for split in SPLITS}
            for (unit, split), pieces in zip(items, in_order(transform, items)):
                for target, piece in zip(targets[split], pieces):
                    move_into(piece, target)
                self._path(unit, f"{split}.chunks").unlink(missing_ok=True)
        return finish(parameters, totals, output_dir)


# -- serving: the scikit-learn container's inference contract ---------------------------------------------
def model_fn(model_dir: str) -> dict:
    return json.loads((Path(model_dir) / PARAMETERS).read_text())


def input_fn(body: str | bytes, content_type: str) -> list[list[str]]:
    """Raw CSV rows (no header, no label), each value as text."""
    if content_type.split(";")[0].strip() != CSV:  # text/csv; charset=utf-8 is CSV too
        raise ValueError(f"content type {content_type} is not supported; send {CSV} rows")
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    rows = [stripped(row) for _, chunk in csv_chunks(io.StringIO(text), CHUNK_ROWS) for row in chunk]
    if not rows:
        raise ValueError("the request holds no rows; send one CSV row per line")
    return rows


def predict_fn(rows: list[list[str]], parameters: dict) -> np.ndarray:
    features = parameters["features"]
    for index, values in enumerate(rows):
        if len(values) != len(features):
            raise ValueError(f"row {index + 1} has {len(values)} values; each row needs {row_shape(parameters)}")
    return transform(parameters, list(zip(*rows)), lambda index: f"row {index + 1}")


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    """CSV whatever the Accept: the next container of the pipeline reads CSV."""
    return csv_text(prediction), CSV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input"),
                        help="the import job's raw/ folder")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--train-parts", type=int, default=1, help="files the training split is written as")
    args = parser.parse_args(argv)
    if args.train_parts < 1:
        parser.error("--train-parts must be at least 1")
    try:
        parameters = process(args.input_dir, args.output_dir, args.train_parts)
    except BadInput as error:
        print(f"features: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"rows": parameters["rows"], "output_features": len(parameters["output_features"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
