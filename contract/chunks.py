"""How a job reads a CSV's rows a chunk at a time, and keeps them by column between its passes, at C speed.

A job's script reads its data set's rows a chunk at a time (csv_chunks), takes a chunk's values by column
(columns_of) and may keep chunks on its disk for a later pass (write_record, records: one record a chunk, packed
by pack_columns). Standard library only, and no `from __future__` import (see contract/data.py).
"""
import csv
import itertools
import marshal
import operator
import shutil
from pathlib import Path
from typing import Iterator


def csv_chunks(handle, size: int, first_line: int = 1,
               plain: bool = False) -> "Iterator[tuple[tuple[int, ...], tuple[list[str], ...]]]":
    """(line numbers, rows as read) of up to `size` non-blank CSV rows at a time; the first line of `handle` is
    line `first_line`. The reader's work stays in C: no Python per row. A csv.Error gets the line the reader
    stopped at as its `line`. Values keep their surrounding spaces: `stripped` or `columns_of` take them off.
    A `plain` text (plain_csv) is split at line feeds and commas, what the csv reader does with it, faster."""
    if plain:
        yield from _plain_chunks(handle, size, first_line)
        return
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


PLAIN_BLOCK = 1 << 22  # characters of a plain text split at a time


def plain_csv(data: bytes) -> bool:
    """Whether CSV bytes hold no quote, carriage return or NUL: then a row is a line and a value is what lies
    between its commas, for every release of Python's csv reader (3.9's refuses a NUL, later ones read it)."""
    return b'"' not in data and b"\r" not in data and b"\x00" not in data


def _plain_chunks(handle, size: int, first_line: int) -> "Iterator[tuple[tuple[int, ...], tuple[list[str], ...]]]":
    """csv_chunks of a plain text: its lines split at commas, blank lines left out (as the csv reader leaves them
    out), a value above the csv reader's field size limit refused as the reader refuses it."""
    number, rest, block = first_line, "", True
    while block:
        block = handle.read(PLAIN_BLOCK)
        lines = (rest + block).split("\n")
        rest = lines.pop() if block else ""  # a line that goes on in the next block (at the end: the last line)
        numbers = range(number, number + len(lines))
        number += len(lines)
        if max(map(len, lines), default=0) > csv.field_size_limit():
            for line, text in zip(numbers, lines):
                if max(map(len, text.split(","))) > csv.field_size_limit():
                    error = csv.Error(f"field larger than field limit ({csv.field_size_limit()})")
                    error.line = line
                    raise error
        if "" in lines:  # a blank line holds no row
            numbers, lines = zip(*((n, text) for n, text in zip(numbers, lines) if text)) if any(lines) else ((), ())
        for start in range(0, len(lines), size):
            yield tuple(numbers[start:start + size]), tuple(map(str.split, lines[start:start + size],
                                                                itertools.repeat(",")))


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


JOIN = "\x00"  # joins a column's values in a kept chunk; a column holding it is kept value by value


def pack_columns(columns: list) -> list:
    """Columns as a record keeps them: a column of texts joined into one text (a fraction of the cost of keeping
    its values one by one) unless a value holds the joining character; anything else (bytes of numbers) as it is.
    unpack_columns gives them back."""
    packed = []
    for column in columns:
        if isinstance(column, (tuple, list)):
            text = JOIN.join(column)
            column = text if text.count(JOIN) == len(column) - 1 else tuple(column)
        packed.append(column)
    return packed


def unpack_columns(packed: list) -> list:
    return [column.split(JOIN) if isinstance(column, str) else column for column in packed]


def write_record(handle, record: tuple) -> None:
    """A record (texts, numbers, bytes, packed columns) appended to a binary file, its length first: marshal's
    own file reader reads in tiny pieces, so records are read whole (`records`)."""
    data = marshal.dumps(record, 2)  # version 2: no back-references, the fastest to write
    handle.write(len(data).to_bytes(8, "little") + data)


def records(path: Path) -> "Iterator[tuple]":
    """The records of a file write_record wrote, in order; none when there is no such file."""
    if not path.exists():
        return
    with open(path, "rb") as handle:
        while size := handle.read(8):
            yield marshal.loads(handle.read(int.from_bytes(size, "little")))


def move_into(piece: Path, target) -> None:
    """Appends the file `piece` (a worker's output) to `target`, an open text file, byte for byte, and removes it."""
    target.flush()  # what the text layer holds goes first
    with open(piece, "rb") as data:
        shutil.copyfileobj(data, target.buffer, 1 << 20)
    piece.unlink()
