"""The import job (processing/import_dataset.py): every value reaches the run as written, the splits are stratified
and reproducible, and every problem a later job would meet is named (file, line, column, value, what to do)."""
from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from contract.bundle import bundle
from tests.conftest import BUCKET, ROOT, load_processing_module

importer = load_processing_module("import_dataset")
SOURCE = f"s3://{BUCKET}/datasets/mine/"
DATA = SOURCE + "data.csv"
OUTPUTS = ("raw/train.csv", "raw/validation.csv", "raw/test.csv", "test-labels/labels.csv", "raw/dataset.json")

# Values that a reformatting would change: the 15th significant digit, integers beyond 2^53 (exact in a decimal
# text, not in a float64), long decimals, scientific notation, negative zero, a leading plus.
EXACT = ["0.123456789012345", "0.123456789012346", "9007199254740993", "-9007199254740993",
         "101325.21", "1000001", "3.14159265358979323846264338327950288", "6.02214076e23", "1E-7", "-0", "-0.0",
         "+5", ".5", "5."]
# Texts a CSV writer must quote, or that are not ASCII: each comes back as the same value.
TEXTS = ["Zürich", "a, b", 'say "hi"', "東京", "line\nbreak"]


def run_import(tmp_path: Path, files: dict[str, str | bytes], **settings: str) -> Path:
    """Runs the script on the files (relative path -> content) as the job would; returns its output folder."""
    inputs, output = tmp_path / "input", tmp_path / "output"
    for relative, content in files.items():
        (inputs / relative).parent.mkdir(parents=True, exist_ok=True)
        body = content.encode() if isinstance(content, str) else content
        (inputs / relative).write_bytes(body)
    arguments = {"label-column": "label", "task": "binary", "categorical-columns": "auto", "drop-columns": "none",
                 "seed": "0", "source": SOURCE, **{k.replace("_", "-"): v for k, v in settings.items()}}
    argv = ["--input-dir", str(inputs), "--output-dir", str(output), "--message-file", str(tmp_path / "message")]
    code = importer.main(argv + [part for key, value in arguments.items() for part in (f"--{key}", value)])
    if code:
        raise Refused((tmp_path / "message").read_text(encoding="utf-8"))
    # On success the message (the job's ExitMessage) is what the state machine reads: counts, and the names of
    # the columns dropped as constant.
    summary = json.loads((tmp_path / "message").read_text(encoding="utf-8"))
    description = json.loads((output / "raw" / "dataset.json").read_text(encoding="utf-8"))
    named = summary["constant"]["names"]  # as many as 1 KB holds, in order
    assert named == description["constant"][:len(named)]
    assert summary == {"rows": description["rows"], "num_class": len(description["classes"] or ()),
                       "seed": int(arguments["seed"]),
                       "train_mib": round((output / "raw" / "train.csv").stat().st_size / 2**20, 3),
                       "constant": {"count": len(description["constant"]), "names": named}}
    return output


class Refused(Exception):
    """The script refused the data set; the message file's text."""


def outputs(output: Path) -> dict[str, str]:
    return {name: (output / name).read_text(encoding="utf-8") for name in OUTPUTS}


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def refused(tmp_path: Path, files: dict[str, str | bytes], capsys=None, **settings: str) -> str:
    """The message of a refused data set, without its `InvalidDataset: ` prefix; no output is left behind."""
    with pytest.raises(Refused) as raised:
        run_import(tmp_path, files, **settings)
    message = str(raised.value)
    assert message.startswith("InvalidDataset: ")
    if capsys is not None:
        assert capsys.readouterr().err == message + "\n"
    assert not [p for p in (tmp_path / "output").rglob("*") if p.is_file()]
    return message.removeprefix("InvalidDataset: ")


def two_classes(rows: int = 40, header: str = "label,x,y") -> str:
    return header + "\n" + "".join(f"{i % 2},{i},{i * 3 % 17}\n" for i in range(rows))


def test_every_value_reaches_the_run_exactly_as_written(tmp_path):
    values = EXACT * 4
    text = "label,v,t,i\n" + "".join(
        f"{i % 2},{value},\"{TEXTS[i % len(TEXTS)].replace(chr(34), chr(34) * 2)}\",{i}\n"
        for i, value in enumerate(values))
    written = outputs(run_import(tmp_path, {"data.csv": text.replace("\n0,", "\n 0 ,")}))  # spaces go
    by_index = {}  # the row's `i` -> (v, t), from every split
    for name in ("raw/train.csv", "raw/validation.csv"):
        header, *rows = table(written[name])
        assert header == ["label", "v", "t", "i"]  # the data set's order
        by_index.update({row[3]: (row[1], row[2]) for row in rows})
        assert {row[0] for row in rows} == {"0", "1"}
    by_index.update({row[2]: (row[0], row[1]) for row in table(written["raw/test.csv"])})
    assert by_index == {str(i): (value, TEXTS[i % len(TEXTS)]) for i, value in enumerate(values)}
    assert json.loads(written["raw/dataset.json"])["numeric"] == ["v", "i"]


def test_the_test_split_is_what_a_client_sends_with_labels_line_aligned(tmp_path):
    text = "label,a,b\n" + "".join(f"{i % 2},{i},{i * 10}\n" for i in range(40))
    written = outputs(run_import(tmp_path, {"data.csv": text}, seed="3"))
    rows, labels = written["raw/test.csv"].splitlines(), written["test-labels/labels.csv"].splitlines()
    assert len(rows) == len(labels) == 6 and all(len(row.split(",")) == 2 for row in rows)  # no header, no label
    assert all(int(row.split(",")[0]) % 2 == int(label) for row, label in zip(rows, labels))


def test_splits_are_stratified_per_class_and_reproducible_with_the_seed(tmp_path):
    text = "label,a\n" + "".join(f"{int(i < 30)},{i}\n" for i in range(200))  # 15% positives
    first = outputs(run_import(tmp_path / "1", {"data.csv": text}, seed="5"))
    assert outputs(run_import(tmp_path / "2", {"data.csv": text}, seed="5")) == first
    assert outputs(run_import(tmp_path / "3", {"data.csv": text}, seed="6")) != first
    labels = {name: [row[0] for row in table(first[name])[1:]] for name in ("raw/train.csv", "raw/validation.csv")}
    labels["test"] = first["test-labels/labels.csv"].split()
    # Per class, int() cuts at 70% and 85% (as floats: 170 * 0.7 is 118.99...): 30 -> 21/4/5, 170 -> 118/26/26.
    assert [Counter(labels[name]) for name in labels] == [{"1": 21, "0": 118}, {"1": 4, "0": 26},
                                                          {"1": 5, "0": 26}]
    assert json.loads(first["raw/dataset.json"])["rows"] == {"train": 139, "validation": 30, "test": 31}


def test_a_label_named_otherwise_in_the_last_column(tmp_path):
    text = "a,b,target\n" + "".join(f"{i},{i % 5},{'yes' if i % 3 else 'no'}\n" for i in range(60))
    output = run_import(tmp_path, {"data.csv": text}, label_column="target")
    written = outputs(output)
    assert table(written["raw/train.csv"])[0] == ["a", "b", "target"]
    test_rows = table(written["raw/test.csv"])
    assert all(len(row) == 2 for row in test_rows)
    assert [("no" if int(row[0]) % 3 == 0 else "yes") for row in test_rows] == written["test-labels/labels.csv"].split()
    assert json.loads(written["raw/dataset.json"]) == {
        "source": SOURCE, "label_column": "target", "task": "binary", "columns": ["a", "b", "target"],
        "features": ["a", "b"], "categorical": [], "numeric": ["a", "b"], "dropped": [], "constant": [],
        "notices": [], "classes": ["no", "yes"], "rows": {"train": 42, "validation": 9, "test": 9}}


def test_multiclass_with_a_text_column(tmp_path):
    rng = random.Random(2)
    text = "size,color,kind\n" + "".join(
        f"{rng.random():.4f},{rng.choice(['red', 'green', 'blue', ''])},{['cat', 'dog', 'bird'][i % 3]}\n"
        for i in range(90))
    description = json.loads(outputs(run_import(tmp_path, {"data.csv": text}, label_column="kind",
                                                task="multiclass"))["raw/dataset.json"])
    assert description["categorical"] == ["color"] and description["numeric"] == ["size"]
    assert description["classes"] == ["bird", "cat", "dog"]
    assert description["rows"] == {"train": 63, "validation": 12, "test": 15}  # 30 each: 21/4/5


def test_numeric_classes_are_ordered_as_numbers(tmp_path):
    text = "label,x\n" + "".join(f"{['10', '9', '2.5'][i % 3]},{i}\n" for i in range(30))
    description = json.loads(outputs(run_import(tmp_path, {"data.csv": text}, task="multiclass"))["raw/dataset.json"])
    assert description["classes"] == ["2.5", "9", "10"]


def test_binary_labels_of_any_text(tmp_path):
    text = "label,x,y\n" + "".join(f"{'MB'[i % 2]},{i},{i * 7 % 11}\n" for i in range(40))
    description = json.loads(outputs(run_import(tmp_path, {"data.csv": text}))["raw/dataset.json"])
    assert description["classes"] == ["B", "M"]


def test_regression_with_missing_values(tmp_path):
    text = "x,price,color\n" + "".join(
        f"{'' if i % 4 == 0 else 'NA' if i % 4 == 1 else i},{i * 1.5 - 3},{'' if i % 5 == 0 else 'abc'[i % 3]}\n"
        for i in range(100))
    written = outputs(run_import(tmp_path, {"data.csv": text}, label_column="price", task="regression"))
    description = json.loads(written["raw/dataset.json"])
    assert (description["classes"], description["numeric"], description["categorical"]) == (None, ["x"], ["color"])
    assert description["rows"] == {"train": 70, "validation": 15, "test": 15}
    train = table(written["raw/train.csv"])
    assert {row[0] for row in train[1:]} >= {"", "NA"}  # missing values stay as written, for the features job


def test_categorical_and_dropped_columns_as_set(tmp_path):
    rows = [f"{i % 2},{i % 4},{['a1', 'inf', 'x'][i % 3]},{i}" for i in range(40)]
    written = outputs(run_import(tmp_path, {"data.csv": "label,zip,id,x\n" + "\n".join(rows) + "\n"},
                                 categorical_columns="zip", drop_columns="id"))
    description = json.loads(written["raw/dataset.json"])
    assert (description["categorical"], description["numeric"], description["dropped"]) == (["zip"], ["x"], ["id"])
    assert description["features"] == ["zip", "id", "x"]
    assert all(len(row) == 3 for row in table(written["raw/test.csv"]))  # a client still sends `id`


def test_a_folder_of_files_in_key_order(tmp_path):
    files = {"b.csv": two_classes(30), "a/part.csv": two_classes(30), "notes.txt": "not data"}
    written = outputs(run_import(tmp_path, files))
    lines = [*table(written["raw/train.csv"])[1:], *table(written["raw/validation.csv"])[1:]]
    assert len(lines) + len(table(written["raw/test.csv"])) == 60
    files["b.csv"] = "label,x\n1,2\n"
    assert refused(tmp_path / "again", files) == (f"{SOURCE}b.csv line 1 has columns label,x, but the files before "
                                                  "it have label,x,y; give every file the same header")


def test_a_file_source_names_the_file(tmp_path):
    message = refused(tmp_path, {"data.csv": "label,x\n1,2,3\n"}, source=DATA)
    assert message.startswith(f"{DATA} line 2 has 3 values")


@pytest.mark.parametrize(("text", "settings", "message"), [
    ("label,x\n" + "1,1\n" * 30, {},
     f"column 'label' is '1' in all 30 rows (from {DATA} line 2); a classifier needs rows of at least 2 labels: "
     "add rows of the other classes"),
    ("x,y\n1,2\n", {},
     f"{DATA} line 1 has no column 'label', which the label_column setting names; its columns are x,y: set "
     "label_column to the column to predict, or rename that column"),
    ("label\n1\n", {}, f"{DATA} line 1 names only the label column 'label'; add feature columns"),
    ("label,x,x\n1,2,3\n", {}, f"{DATA} line 1 names column 'x' twice; give each column its own name"),
    ("label,,x\n1,2,3\n", {}, f"{DATA} line 1: column 2 of the header has no name; name every column"),
    ("", {}, f"{DATA} is empty; each file needs a header row naming its columns"),
    ("label,x\n1,2,3\n", {},
     f"{DATA} line 2 has 3 values for the 2 columns of the header; quote a value that holds a comma"),
    ("label,x\n,1\n", {},
     f"{DATA} line 2, column 'label': '' is a missing label; drop the rows without a label, or fill them in"),
    ("label,x\nNA,1\n", {}, f"{DATA} line 2, column 'label': 'NA' is a missing label"),
    (two_classes() + "1,inf,2\n", {},
     f"{DATA} line 42, column 'x': 'inf', which is not a finite number; replace it or leave the cell empty (a "
     "missing value is imputed)"),
    (two_classes() + "1,1e999,2\n", {}, f"{DATA} line 42, column 'x': '1e999', which is beyond a 64-bit float"),
    ("label,x\n" + "".join(f"{i % 2},{i}\n" for i in range(10)), {},
     "the data set has 10 rows; at least 20 are needed to train and evaluate: add rows"),
    ("label,x\n" + "".join(f"{int(i < 3)},{i}\n" for i in range(40)), {},
     f"label '1' has only 3 rows (from {DATA} line 2), too few to put one in each of the train, validation and "
     "test splits: add rows labelled '1' (each label needs at least 4)"),
    ("label,x\n" + "".join(f"{i % 3},{i}\n" for i in range(30)), {},
     f"{DATA} line 4, column 'label': '2' is a third label; the column holds 3 distinct labels ('0', '1', '2') and "
     "task=binary needs exactly 2: set task=multiclass to predict 3 classes"),
    ("label,x\n" + "".join(f"{i * 0.37:.2f},{i}\n" for i in range(30)), {},
     f"{DATA} line 4, column 'label': '0.74' is a third label; the column holds 30 distinct labels ('0.00', "
     "'0.37', '0.74', '1.11', '1.48', '1.85', '2.22', '2.59', '2.96', '3.33', ...) and task=binary needs exactly "
     "2: a label of this many values looks like a number to predict: set task=regression"),
    ("label,x\n" + "".join(f"{'MB'[i % 2]},{i}\n" for i in range(30)), {"task": "multiclass"},
     "column 'label' holds 2 distinct labels ('B', 'M') and task=multiclass needs at least 3: set task=binary"),
    ("label,x\n" + "".join(f"{['1', '0', '1.0'][i % 3]},{i}\n" for i in range(30)), {"task": "multiclass"},
     f"{DATA} line 4, column 'label': '1.0' is the number '1' (from {DATA} line 2) written another way; write each "
     "label one way"),
    ("label,x\n" + "".join(f"{'high' if i % 2 else i},{i}\n" for i in range(30)), {"task": "regression"},
     f"{DATA} line 3, column 'label': 'high' is not a number, and task=regression predicts a number: correct the "
     "value, or set task=binary or task=multiclass to predict classes"),
    ("label,x\n" + "".join(f"{'-inf' if i == 5 else i},{i}\n" for i in range(30)), {"task": "regression"},
     f"{DATA} line 7, column 'label': '-inf', which is not a finite number; replace it or drop the row"),
    (two_classes(), {"task": "ranking"}, "the task setting is 'ranking'; set it to one of binary, multiclass, "
                                         "regression"),
    (two_classes(), {"drop_columns": "z"},
     f"the drop_columns setting names 'z', which is not a column of {DATA} (its columns are label,x,y); correct the "
     "name or remove it from drop_columns"),
    (two_classes(), {"categorical_columns": "x,zz"}, "the categorical_columns setting names 'zz', which is not a "
                                                     "column of"),
    (two_classes(), {"categorical_columns": "label"},
     "the categorical_columns setting names 'label', the label column (label_column); remove it from "
     "categorical_columns"),
    (two_classes(), {"bias_columns": "region"},
     f"the bias_columns setting names 'region', which is not a column of {DATA} (its columns are label,x,y); "
     "correct the name or remove it from bias_columns"),
    (two_classes(), {"drop_columns": "x, y"},
     f"the drop_columns setting drops every feature of {DATA} (x,y); keep at least one"),
    ("label,k,e\n" + "".join(f"{i % 2},7,\n" for i in range(40)), {},
     "column 'k' holds the same value '7' in all 40 rows (for example s3://data/datasets/mine/data.csv line 2); "
     "column 'e' has no value in any of the 28 rows of the training split, nor in any other row of the data set: "
     "no feature column varies in the training split, so there is nothing to learn from; add rows where the "
     "features vary, or columns"),
    (two_classes() + "1,2," + "9" * 200_000 + "\n", {},
     f"{DATA} line 42: field larger than field limit (131072); save the file as plain CSV"),
], ids=["one-class", "no-label", "only-label", "duplicate-column", "unnamed-column", "empty-file", "ragged",
        "missing-label", "na-label", "inf", "overflow", "too-few", "too-few-of-a-label", "three-labels-binary",
        "numbers-binary", "two-labels-multiclass", "one-number-two-spellings", "text-regression", "inf-regression",
        "unknown-task", "drop-unknown", "categorical-unknown", "categorical-label", "bias-unknown", "drop-all",
        "nothing-varies", "huge-field"])
@pytest.mark.parametrize("chunk_rows", [3, 20_000])
def test_data_problems_are_named_before_any_job(tmp_path, capsys, monkeypatch, text, settings, message, chunk_rows):
    """Chunks of 3 rows: most rows are taken a chunk at once, the first one of interest row by row; one chunk: the
    row-by-row way throughout. Both name the same problem."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", chunk_rows)
    assert message in refused(tmp_path, {"data.csv": text}, capsys, **settings)


@pytest.mark.parametrize(("text", "settings", "notice"), [
    # With seed 1, the one row (line 2) that differs lands outside the training split.
    ("label,x,k\n" + "".join(f"{i % 2},{i},{7 if i else 8}\n" for i in range(40)), {"seed": "1"},
     f"column 'k' holds the same value '7' in all 28 rows of the training split (for example {DATA} line 4)"),
    ("label,x,k\n" + "".join(f"{i % 2},{i},{'' if i % 3 else '5.0'}\n" for i in range(40)), {},
     f"column 'k' holds the same value '5.0' in all 14 rows that hold a value (26 are missing) (for example "
     f"{DATA} line 2)"),
    ("label,x,k\n" + "".join(f"{i % 2},{i},{5 if i % 3 else '5.00'}\n" for i in range(40)), {},
     f"column 'k' holds the same value '5.00' in all 40 rows (for example {DATA} line 2)"),  # one number, 2 ways
    ("label,x,k\n" + "".join(f"{i % 2},{i},{'NA' if i else 'word'}\n" for i in range(40)), {"seed": "1"},
     "column 'k' has no value in any of the 28 rows of the training split"),
    ("label,x,k\n" + "".join(f"{i % 2},{i},\n" for i in range(40)), {},
     "column 'k' has no value in any of the 28 rows of the training split, nor in any other row of the data set"),
], ids=["constant-in-training", "constant-with-missing", "constant-number-spellings", "empty-in-training",
        "empty-everywhere"])
@pytest.mark.parametrize("chunk_rows", [3, 20_000])
def test_a_column_without_signal_is_dropped_with_a_notice_that_names_it(tmp_path, capsys, monkeypatch, text, settings,
                                                                        notice, chunk_rows):
    """A constant (or empty) column cannot be learned from or standardized, but harms nothing: the data set is
    trained on without it, and the notice says so (the job's log, its summary, dataset.json)."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", chunk_rows)
    output = run_import(tmp_path, {"data.csv": text}, **settings)
    description = json.loads((output / "raw" / "dataset.json").read_text(encoding="utf-8"))
    assert description["notices"] == [f"{notice}; dropped, as it carries no signal"]
    assert description["constant"] == ["k"] and description["dropped"] == ["k"]
    assert description["numeric"] == ["x"] and description["categorical"] == []
    assert f"notice: {notice}; dropped, as it carries no signal\n" in capsys.readouterr().err
    # The raw splits keep the column as the user wrote it: only the model leaves it out.
    assert table((output / "raw" / "train.csv").read_text(encoding="utf-8"))[0] == ["label", "x", "k"]


def test_the_summary_names_constant_columns_as_far_as_the_exit_message_holds(tmp_path):
    names = [f"flag_{i:03d}_{'x' * 20}" for i in range(60)]  # 60 names of 29 characters: more than 1 KB
    text = "label,x," + ",".join(names) + "\n" + "".join(f"{i % 2},{i}" + ",1" * 60 + "\n" for i in range(40))
    run_import(tmp_path, {"data.csv": text})
    message = (tmp_path / "message").read_bytes()
    summary = json.loads(message)
    assert len(message) <= 1024 and summary["constant"]["count"] == 60
    assert 20 < len(summary["constant"]["names"]) < 60 and summary["constant"]["names"] == \
        names[:len(summary["constant"]["names"])]


def test_an_id_column_is_too_many_categories(tmp_path):
    text = "label,x,user\n" + "".join(f"{i % 2},{i},u{i}\n" for i in range(200))
    message = refused(tmp_path, {"data.csv": text})
    line = int(message.split(" line ")[1].split(",")[0])
    assert message == (f"{DATA} line {line}, column 'user': 'u{line - 2}' is its value number 101 in the training "
                       "split; a categorical column of more than 100 values is likely an id or free text, which "
                       "one-hot encoding cannot learn from: add 'user' to drop_columns, or encode it as numbers")
    description = json.loads(outputs(run_import(tmp_path / "dropped", {"data.csv": text}, drop_columns="user"))
                             ["raw/dataset.json"])
    assert description["dropped"] == ["user"]


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    body = two_classes().encode() + "1,2,caf\xe9\n".encode("latin-1")
    assert refused(tmp_path, {"a.csv": two_classes(), "b.csv": body}) == \
        f"{SOURCE}b.csv line 42 is not UTF-8 text (byte {len(two_classes().encode()) + 7} of the file); save it as " \
        "UTF-8 CSV"
    assert refused(tmp_path / "none", {"data.txt": "x"}) == \
        f"no .csv file under {SOURCE}; upload the data set as CSV files with a header row"


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    body = "\ufeff" + two_classes().replace("\n", "\r\n")
    written = outputs(run_import(tmp_path, {"data.csv": body.encode()}))
    assert table(written["raw/train.csv"])[0] == ["label", "x", "y"]


def test_the_message_fits_the_exit_message_without_cutting_a_character(tmp_path):
    name = "é" * 600  # 1200 bytes of UTF-8
    message = refused(tmp_path, {"data.csv": two_classes(header=f"label,x,{name}")}, drop_columns=f"{name}x")
    assert len(("InvalidDataset: " + message).encode()) <= 1024
    assert message.startswith(f"the drop_columns setting names '{'é' * 100}")


def test_every_split_of_a_class_gets_a_row_from_the_minimum_up():
    for rows in range(importer.MIN_CLASS_ROWS, 2000):
        assert all(importer.split_counts([[rows]], 0)[0][0]), rows
    assert importer.split_counts([[importer.MIN_CLASS_ROWS - 1]], 0)[0][0] == (2, 0, 1)


def test_each_file_gives_each_split_its_share_of_each_class_and_the_cut_of_the_whole_holds():
    rng = random.Random(2)
    for _ in range(300):
        files = [[rng.randint(0, 40) for _ in range(3)] for _ in range(rng.randint(1, 6))]
        counts = importer.split_counts(files, rng.randint(0, 99))
        for group in range(3):
            total = sum(per_file[group] for per_file in files)
            ends = [int(total * cut) for cut in importer.CUTS]
            assert [sum(c[group][split] for c in counts) for split in range(3)] == [
                ends[0], ends[1] - ends[0], total - ends[1]]
            for per_file, shares in zip(files, counts):
                assert sum(shares[group]) == per_file[group] and min(shares[group]) >= 0
                assert abs(shares[group][0] - per_file[group] * ends[0] / max(total, 1)) < 1  # its share, rounded
    split = importer.file_assignment((5, 2, 3), 7, 1, 0)
    assert sorted(split) == [0] * 5 + [1] * 2 + [2] * 3 and split == importer.file_assignment((5, 2, 3), 7, 1, 0)
    assert split != importer.file_assignment((5, 2, 3), 7, 2, 0)  # each file shuffles with its own generator


@pytest.mark.slow
def test_a_large_file_streams_through_with_no_row_lost(tmp_path):
    """50 MB in, bounded memory: the rows are never held, only a byte per row."""
    rng = random.Random(7)
    inputs, output = tmp_path / "input", tmp_path / "output"
    inputs.mkdir()
    block = []  # 1 MiB of random rows, written 50 times: the size is what matters here, and drawing 50 MB is slow
    while sum(map(len, block)) + len(block) < 2**20:
        block.append(f"{rng.random():.15g},{rng.randint(-999, 999) if rng.random() > 0.1 else ''},"
                     f"{rng.choice(['red', 'green', 'NA', ''])},{rng.choice('abc')},{rng.gauss(0, 1e6):.6e}")
    lines = block * 50
    with open(inputs / "data.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("a,b,color,label,c\n")
        handle.writelines(line + "\n" for line in lines)
    # The script's own peak: VmHWM is its address space's (ru_maxrss would count this process's, copied by fork).
    runner = ("import re, runpy, sys; sys.argv = sys.argv[1:]; code = 0\n"
              "try: runpy.run_path(sys.argv[0], run_name='__main__')\n"
              "except SystemExit as exit: code = exit.code\n"
              "status = open('/proc/self/status').read()\n"
              "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1), file=sys.stderr); sys.exit(code)")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", runner, str(ROOT / "processing" / "import_dataset.py"),
                           "--input-dir", str(inputs), "--output-dir", str(output), "--label-column", "label",
                           "--task", "multiclass", "--seed", "1", "--source", SOURCE,
                           "--message-file", str(tmp_path / "message")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    peak_kib = int(done.stderr.split()[-1])
    assert peak_kib < 80 * 1024, f"{peak_kib} KiB for 50 MB: rows are held in memory"
    description = json.loads((output / "raw" / "dataset.json").read_text())
    counts = Counter(line.split(",")[3] for line in lines)
    expected = {"train": 0, "validation": 0, "test": 0}
    for count in counts.values():
        expected["train"] += int(count * 0.7)
        expected["validation"] += int(count * 0.85) - int(count * 0.7)
        expected["test"] += count - int(count * 0.85)
    assert description["rows"] == expected
    assert description["numeric"] == ["a", "b", "c"] and description["categorical"] == ["color"]
    written = []
    for name in ("train", "validation"):
        with open(output / "raw" / f"{name}.csv", encoding="utf-8") as handle:
            assert next(handle) == "a,b,color,label,c\n"
            written += handle.read().splitlines()
    with open(output / "raw" / "test.csv", encoding="utf-8") as rows, \
            open(output / "test-labels" / "labels.csv", encoding="utf-8") as labels:
        for row, label in zip(rows, labels):
            a, b, color, c = row.rstrip("\n").split(",")
            written.append(f"{a},{b},{color},{label.rstrip()},{c}")
    assert len(written) == len(lines) and Counter(written) == Counter(lines)
    print(f"50 MB: {time.monotonic() - started:.1f} s, peak {peak_kib / 1024:.0f} MiB")


# -- the job, as the offline SageMaker runs it ----------------------------------------------------------------
ROLE = "arn:aws:iam::111122223333:role/jobs"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
# A container that writes `argv[2] * argv[3]` (hex) to the message file argv[1] and exits with argv[4].
TELL = ("import pathlib, sys\npathlib.Path(sys.argv[1]).write_bytes(bytes.fromhex(sys.argv[2]) * int(sys.argv[3]))\n"
        "sys.exit(int(sys.argv[4]))\n")


@pytest.fixture
def sagemaker(s3):
    from offline.iam.iam import LocalIam
    from offline.iam.iam_policy import Statement
    from offline.services.sagemaker_service import LocalSageMaker

    s3.put_object(Bucket=BUCKET, Key="code/import_dataset.py", Body=bundle(ROOT / "processing" / "import_dataset.py").encode())
    s3.put_object(Bucket=BUCKET, Key="code/tell.py", Body=TELL.encode())
    # The job's role may use the bucket (IAM is checked once a LocalCloud of another test has started).
    bucket = Statement("Allow", ("s3:*",), False, (f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"), False, {})
    return LocalSageMaker(LocalIam(roles={ROLE: [bucket]}))


def processing_job(sagemaker, name: str, script: str, arguments: list[str], data: str | None = None) -> dict:
    """Runs a processing job with the shipped code (and the data set, when given) to its end; its description."""
    inputs = [{"InputName": "code", "S3Input": {"S3Uri": f"s3://{BUCKET}/code/{script}", "LocalPath": "/opt/ml/processing/code",
                                                "S3DataType": "S3Prefix", "S3InputMode": "File"}}]
    if data:
        inputs.append({"InputName": "data", "S3Input": {"S3Uri": data, "LocalPath": "/opt/ml/processing/input",
                                                        "S3DataType": "S3Prefix", "S3InputMode": "File"}})
    sagemaker.handle("CreateProcessingJob", {
        "ProcessingJobName": name, "RoleArn": ROLE, "ProcessingInputs": inputs,
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", f"/opt/ml/processing/code/{script}"],
                             "ContainerArguments": arguments},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "run", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/runs/{name}/input", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}}})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = sagemaker.handle("DescribeProcessingJob", {"ProcessingJobName": name})
        if described["ProcessingJobStatus"] != "InProgress":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{name} did not end")


def import_arguments(source: str) -> list[str]:
    return ["--input-dir", "/opt/ml/processing/input", "--output-dir", "/opt/ml/processing/output",
            "--label-column", "label", "--task", "binary", "--categorical-columns", "auto", "--drop-columns", "none",
            "--seed", "1", "--source", source, "--message-file", "/opt/ml/output/message"]


def test_a_refused_data_set_is_the_import_jobs_exit_message(s3, sagemaker):
    s3.put_object(Bucket=BUCKET, Key="datasets/mine/data.csv", Body=b"label,x\n" + b"1,1\n" * 30)
    failed = processing_job(sagemaker, "refused", "import_dataset.py", import_arguments(SOURCE), SOURCE)
    message = (f"InvalidDataset: column 'label' is '1' in all 30 rows (from {DATA} line 2); a classifier needs rows "
               "of at least 2 labels: add rows of the other classes")
    assert (failed["ProcessingJobStatus"], failed["ExitMessage"]) == ("Failed", message)
    assert failed["FailureReason"] == f"AlgorithmError: exit code 1: {message}"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")  # nothing of a failed job
    s3.put_object(Bucket=BUCKET, Key="datasets/mine/data.csv", Body=two_classes().encode())
    done = processing_job(sagemaker, "imported", "import_dataset.py", import_arguments(SOURCE), SOURCE)
    assert done["ProcessingJobStatus"] == "Completed"
    assert json.loads(done["ExitMessage"])["rows"] == {"train": 28, "validation": 6, "test": 6}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/imported/")["Contents"]}
    assert keys == {f"runs/imported/input/{name}" for name in OUTPUTS}


@pytest.mark.parametrize(("unit", "times", "code", "status", "expected"), [
    ("done: 3 files", 1, 0, "Completed", {"ExitMessage": "done: 3 files"}),
    ("abcé", 300, 0, "Completed", {"ExitMessage": "abcé" * 204 + "abc"}),  # 1 KB ends inside an é: not kept
    ("\udcff", 1, 0, "Failed", {"FailureReason": "ClientError: /opt/ml/output/message is not UTF-8 encoded",
                                "ExitMessage": None}),
    ("out of memory", 1, 3, "Failed", {"ExitMessage": "out of memory",
                                       "FailureReason": "AlgorithmError: exit code 3: no output"}),
], ids=["completed", "first-kb", "not-utf8", "failed"])
def test_a_processing_jobs_message_file_is_its_exit_message(sagemaker, unit, times, code, status, expected):
    body = unit.encode("utf-8", errors="surrogateescape").hex()
    described = processing_job(sagemaker, "told", "tell.py", ["/opt/ml/output/message", body, str(times), str(code)])
    assert described["ProcessingJobStatus"] == status
    assert {key: described.get(key) for key in expected} == expected
    assert ("FailureReason" in described) == (status == "Failed")


def test_the_data_job_preprocesses_as_the_features_script_would_on_its_splits(tmp_path, monkeypatch):
    """One job, one read of the data: the preprocessing learns the training split while it is written (a chunk of
    CHUNK_ROWS at a time, its units side by side) and gives, byte for byte, what processing/features.py gives on the raw splits alone; the
    column dropped as constant is left out of both; nothing of the fitting is left in the output."""
    features = load_processing_module("features")
    monkeypatch.setattr(importer, "CHUNK_ROWS", 7)
    monkeypatch.setattr(features, "STATS_BLOCK", 16)
    monkeypatch.setattr(importer, "load_script", lambda path, name: features)
    rng = random.Random(3)
    text = "label,x,flag,color,z\n" + "".join(
        f"{i % 3},{rng.gauss(0, 1):.6g},1,{rng.choice(['red', 'blue', 'NA'])},{'' if i % 5 == 0 else rng.randint(0, 9)}\n"
        for i in range(300))
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "data.csv").write_text(text)
    code = importer.main(["--input-dir", str(tmp_path / "input"), "--output-dir", str(tmp_path / "output"),
                          "--label-column", "label", "--task", "multiclass", "--seed", "5", "--source", SOURCE,
                          "--message-file", str(tmp_path / "message"), "--processed-dir", str(tmp_path / "job"),
                          "--train-parts", "2"])
    assert code == 0, (tmp_path / "message").read_text()
    features.process(tmp_path / "output" / "raw", tmp_path / "alone", 2)
    written = sorted(p.relative_to(tmp_path / "job").as_posix() for p in (tmp_path / "job").rglob("*") if p.is_file())
    assert written == ["params/features.json", "preprocessor/model.tar.gz", "test/test.csv",
                       "train/part-00000.csv", "train/part-00001.csv", "validation/validation.csv"]
    for name in written:
        assert (tmp_path / "job" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes(), name
    fitted = json.loads((tmp_path / "job" / "params" / "features.json").read_text())
    assert fitted["dropped"] == ["flag"] and set(fitted["numeric"]) == {"x", "z"}


def test_a_full_disk_is_named_with_what_to_do(tmp_path, monkeypatch, capsys):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/opt/ml/processing/output/raw/train.csv")
    monkeypatch.setattr(importer, "write_splits", full)
    with pytest.raises(Refused) as raised:
        run_import(tmp_path, {"data.csv": two_classes()})
    assert str(raised.value).startswith("VolumeFull: the job's disk (")
    assert "filled up while it wrote /opt/ml/processing/output/raw/train.csv; BuildAndRegister sizes it from the " \
           "data set's size" in str(raised.value)


# Three files whose columns change kind or constancy only across files: `k` is text only in the second (categorical
# from then on), `c` is 1 in the first file and varies after, `m` is missing in the first, a label appears late.
FOLDED = {"a.csv": "label,x,k,c,m,color\n" + "".join(f"{i % 2},{i},{i},1,,red\n" for i in range(30)),
          "b.csv": "label,x,k,c,m,color\n" + "".join(f"{i % 2},{i},w{i},{i % 3},{i},blue\n" for i in range(30)),
          "c.csv": "label,x,k,c,m,color\n" + "".join(f"{i % 3},{-i},{i},{i},NA,\n" for i in range(30))}


def _state(thing) -> dict:
    return {name: value for name, value in vars(thing).items() if name not in ("settings", "columns", "files")}


@pytest.mark.parametrize("chunk_rows", [4, 20_000])
def test_the_scans_of_each_file_folded_in_order_are_the_scan_of_them_all(tmp_path, monkeypatch, chunk_rows):
    """What the data job's units (side by side, or on Spark) rely on: a file's scan and a file's training rows,
    taken in one by one in the files' order, give exactly what one pass over all of them gives, and so the same
    split; whether a chunk is taken at once or row by row."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", chunk_rows)
    (tmp_path / "input").mkdir()
    for name, text in FOLDED.items():
        (tmp_path / "input" / name).write_text(text)
    settings = importer.Settings("label", "multiclass", "auto", "none")
    files = importer.sources(tmp_path / "input", SOURCE)
    whole = importer.Scan(settings, files)
    folded = importer.Scan(settings, files[:1])
    for source in files[1:]:
        folded.absorb(importer.Scan(settings, [source], folded.columns, later=True))
    assert _state(folded) == _state(whole) and folded.files == whole.files
    classes, numeric = whole.classes(), whole.numeric()
    assert numeric == [1, 3, 4]  # x, c, m: k turned categorical in b.csv
    counts = importer.split_counts(importer.groups_of(whole, classes), 9)
    outputs, training = [], importer.Training(whole.columns, numeric)
    trainings = []
    for number, source in enumerate(files):
        texts = [io.StringIO() for _ in range(4)]
        importer.split_file(source, whole.columns, classes, counts[number], 9, number, tuple(texts), training)
        trainings.append(importer.Training(whole.columns, numeric, later=number > 0))
        importer.split_file(source, whole.columns, classes, counts[number], 9, number,
                            tuple(io.StringIO() for _ in range(4)), trainings[-1])
        outputs.append([text.getvalue() for text in texts])
    for later in trainings[1:]:
        trainings[0].absorb(later)
    assert _state(trainings[0]) == _state(training)
    assert trainings[0].constant(whole) == training.constant(whole) == {}
    assert [sum(text.count("\n") for text in (o[split] for o in outputs)) for split in range(3)] == list(
        importer.split_rows(counts).values())


def two_files(tmp_path: Path, first: str, second: str) -> list:
    """The data set's two files, a.csv and b.csv, as the job finds them."""
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.csv").write_text(first)
    (tmp_path / "input" / "b.csv").write_text(second)
    return importer.sources(tmp_path / "input", SOURCE)


def test_a_later_files_scan_names_the_label_one_too_many_in_the_read_order(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_LABELS", 3)
    settings = importer.Settings("label", "multiclass", "auto", "none")
    files = two_files(tmp_path, "label,x\na,1\nb,2\n", "label,x\nb,1\nc,2\nd,3\ne,4\nf,5\n")  # b: too many too
    with pytest.raises(importer.InvalidDataset) as whole:
        importer.Scan(settings, files)
    folded = importer.Scan(settings, files[:1])
    with pytest.raises(importer.InvalidDataset) as later:
        folded.absorb(importer.Scan(settings, files[1:], folded.columns, later=True))
    assert str(later.value) == str(whole.value) == (
        f"{SOURCE}b.csv line 4, column 'label': 'd' is one label too many: the column holds more than 3 distinct "
        "labels, too many classes to learn; check that label_column names the column to predict")


def test_a_large_file_without_quotes_is_read_in_parts_at_line_breaks_with_its_own_line_numbers(tmp_path):
    text = "label,x,y\r\n" + "".join(f"{i % 2},{i},\r\n" if i % 7 else "\r\n" for i in range(400))  # blank lines too
    (tmp_path / "data.csv").write_bytes(("\ufeff" + text).encode())  # a byte order mark
    (tmp_path / "quoted.csv").write_text('label,x\n0,"a"\n' + "1,2\n" * 200)
    files = importer.sources(tmp_path, SOURCE)
    parted = importer.parts(files, 500)
    pieces = [p for p in parted if p.uri.endswith("data.csv")]
    assert len(pieces) > 5 and [p for p in parted if p.uri.endswith("quoted.csv")] == files[1:]  # quotes: one unit
    body = (tmp_path / "data.csv").read_bytes()
    assert b"".join(body[p.start:p.end] for p in pieces) == body and all(body[p.start - 1:p.start] == b"\n"
                                                                         for p in pieces[1:])
    whole = list(files[0].rows())
    assert [row for piece in pieces for row in piece.rows()] == whole  # the same rows at the same line numbers
    assert [p.header for p in pieces] == [True] + [False] * (len(pieces) - 1)


def test_a_problem_in_a_later_part_names_its_line_in_the_file(tmp_path):
    text = "label,x\n" + "".join(f"{i % 2},{i}\n" for i in range(300)) + "1,2,3\n"
    message = refused(tmp_path, {"data.csv": text}, part_bytes="300")
    assert message == (f"{DATA} line 302 has 3 values for the 2 columns of the header; quote a value that holds a "
                       "comma")


def test_a_later_units_training_rows_name_the_category_one_too_many_in_the_read_order(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_CATEGORIES", 3)
    settings = importer.Settings("label", "binary", "c", "none")
    files = two_files(tmp_path, "label,c\n0,u\n1,v\n", "label,c\n0,w\n1,x\n0,y\n1,z\n")  # b: too many too
    columns = importer.Scan(settings, files[:1]).columns
    trainings = [importer.Training(columns, [], later=number > 0) for number in range(2)]
    def rows(source):
        return [row for lines, chunk in importer.read_header(source, columns.names)[1] for row in zip(lines, chunk)]
    for training, source in zip(trainings, files):
        for line, values in rows(source):
            training.add(source.uri, line, values)  # every row a training row
    with pytest.raises(importer.InvalidDataset) as folded:
        trainings[0].absorb(trainings[1])
    whole = importer.Training(columns, [])
    with pytest.raises(importer.InvalidDataset) as one:
        for source in files:
            for line, values in rows(source):
                whole.add(source.uri, line, values)
    assert str(folded.value) == str(one.value) and str(one.value).startswith(f"{SOURCE}b.csv line 3, column 'c': 'x' ")
