"""The features job, run locally exactly as SageMaker runs it, and the served step it packages."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from contract import workers as workers_module
from contract.bundle import bundle
from offline.runtimes.serving import SklearnFramework
from tests.conftest import ROOT, load_processing_module

SCRIPT = ROOT / "processing" / "features.py"
features = load_processing_module("features")


def write_raw(folder: Path, columns: list[str], splits: dict[str, list[list[str]]], *, label: str, task: str,
              categorical: tuple[str, ...] = (), dropped: tuple[str, ...] = (), classes: list[str] | None = None
              ) -> Path:
    """A raw/ folder as the import job writes it: train and validation with a header and every column, test
    without the header and the label, and dataset.json."""
    folder.mkdir(parents=True, exist_ok=True)
    position = columns.index(label)
    for split, rows in splits.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if split == "test":
            writer.writerows(row[:position] + row[position + 1:] for row in rows)
        else:
            writer.writerows([columns, *rows])
        (folder / f"{split}.csv").write_text(text.getvalue())
    names = [c for c in columns if c != label]
    dataset = {"source": "s3://bucket/datasets/data.csv", "label_column": label, "task": task, "columns": columns,
               "features": names, "categorical": [c for c in names if c in categorical and c not in dropped],
               "numeric": [c for c in names if c not in categorical and c not in dropped], "dropped": list(dropped),
               "classes": classes, "rows": {split: len(rows) for split, rows in splits.items()}}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    return folder


def run(raw: Path, out: Path) -> int:
    return features.main(["--input-dir", str(raw), "--output-dir", str(out)])


def lines(out: Path, split: str) -> list[list[str]]:
    return [line.split(",") for line in (out / split / f"{split}.csv").read_text().splitlines()]


def parameters(out: Path) -> dict:
    return json.loads((out / "params" / "features.json").read_text())


# An id column, a numeric feature with missing values, a text feature, the label in the middle.
COLUMNS = ["id", "size", "label", "colour"]
MIXED = {"train": [["1", "1", "a", "red"], ["2", "", "b", "blue"], ["3", "4", "c", "green"], ["4", "NA", "a", "red"],
                   ["5", "10", "b", ""], ["6", "2.5", "c", "blue"]],
         "validation": [["7", "3", "b", "green"], ["8", "null", "c", "red"]],
         "test": [["9", "", "a", "purple"], ["10", "7", "b", "N/A"], ["11", "4", "c", "blue"]]}


@pytest.fixture
def mixed(tmp_path) -> Path:
    return write_raw(tmp_path / "raw", COLUMNS, MIXED, label="label", task="multiclass", categorical=("colour",),
                     dropped=("id",), classes=["a", "b", "c"])


def test_numeric_columns_are_imputed_and_standardized_with_training_statistics_only(mixed, tmp_path):
    out = tmp_path / "out"
    assert run(mixed, out) == 0
    present = [1.0, 4.0, 10.0, 2.5]
    median = statistics.median(present)
    imputed = [1.0, median, 4.0, median, 10.0, 2.5]
    mean, std = statistics.fmean(imputed), statistics.pstdev(imputed)
    assert parameters(out)["numeric"] == {"size": {"median": median, "mean": pytest.approx(mean, rel=1e-15),
                                                   "std": pytest.approx(std, rel=1e-15)}}
    fitted = parameters(out)["numeric"]["size"]
    scaled = lambda x: (x - fitted["mean"]) / fitted["std"]  # noqa: E731
    assert [float(row[1]) for row in lines(out, "train")] == [scaled(x) for x in imputed]
    # A missing test value is the training median, not the test split's: 3.25, where the test split's own
    # median (of 7 and 4) would be 5.5.
    assert [float(row[0]) for row in lines(out, "test")] == [scaled(3.25), scaled(7.0), scaled(4.0)]
    assert [float(row[1]) for row in lines(out, "validation")] == [scaled(3.0), scaled(3.25)]


def test_categories_are_one_hot_in_sorted_order_and_missing_or_unseen_ones_are_zeros(mixed, tmp_path):
    out = tmp_path / "out"
    run(mixed, out)
    assert parameters(out)["categorical"] == {"colour": ["blue", "green", "red"]}
    assert parameters(out)["output_features"] == ["size", "colour=blue", "colour=green", "colour=red"]
    assert [row[2:] for row in lines(out, "train")] == [["0", "0", "1"], ["1", "0", "0"], ["0", "1", "0"],
                                                        ["0", "0", "1"], ["0", "0", "0"], ["1", "0", "0"]]
    # purple was never seen in training, N/A is missing: both all zeros.
    assert [row[1:] for row in lines(out, "test")] == [["0", "0", "0"], ["0", "0", "0"], ["1", "0", "0"]]


def test_dropped_columns_are_removed_and_classes_become_their_index(mixed, tmp_path):
    out = tmp_path / "out"
    run(mixed, out)
    fitted = parameters(out)
    assert fitted["dropped"] == ["id"] and fitted["features"] == ["id", "size", "colour"]
    assert (fitted["task"], fitted["classes"], fitted["label_column"]) == ("multiclass", ["a", "b", "c"], "label")
    assert fitted["rows"] == {"train": 6, "validation": 2, "test": 3}
    assert [row[0] for row in lines(out, "train")] == ["0", "1", "2", "0", "1", "2"]
    assert [row[0] for row in lines(out, "validation")] == ["1", "2"]
    widths = {split: {len(row) for row in lines(out, split)} for split in ("train", "validation", "test")}
    assert widths == {"train": {5}, "validation": {5}, "test": {4}}  # label + 4 features; test: features only


def test_regression_labels_are_kept_exactly_as_written_and_numbers_are_written_losslessly(tmp_path):
    rows = [["1.50", "0.1"], ["2e3", "0.2"], ["-0.0", "0.7"], ["12345678901234567890", "1e-7"]]
    raw = write_raw(tmp_path / "raw", ["price", "x"], {"train": rows, "validation": rows[:2], "test": rows[2:]},
                    label="price", task="regression")
    out = tmp_path / "out"
    assert run(raw, out) == 0
    assert [row[0] for row in lines(out, "train")] == ["1.50", "2e3", "-0.0", "12345678901234567890"]
    fitted = parameters(out)["numeric"]["x"]
    written = [row[1] for row in lines(out, "train")]
    exact = [(x - fitted["mean"]) / fitted["std"] for x in (0.1, 0.2, 0.7, 1e-7)]
    assert [float(text) for text in written] == exact and written == [repr(x) for x in exact]
    assert parameters(out)["classes"] is None and parameters(out)["task"] == "regression"


def test_binary_labels_by_any_name_and_position_become_0_and_1(tmp_path):
    rows = [["3", "yes"], ["5", "no"], ["4", "yes"]]
    raw = write_raw(tmp_path / "raw", ["x", "churned"], {"train": rows, "validation": rows, "test": rows},
                    label="churned", task="binary", classes=["no", "yes"])
    out = tmp_path / "out"
    assert run(raw, out) == 0
    assert [row[0] for row in lines(out, "train")] == ["1", "0", "1"]


def test_the_missing_values_are_pandas_defaults():
    """What counts as missing here is what pandas (and so the import job's users) read as missing."""
    from pandas._libs.parsers import STR_NA_VALUES

    assert features.MISSING == STR_NA_VALUES | {""}


def served_module(out: Path, model_dir: Path):
    with tarfile.open(out / "preprocessor" / "model.tar.gz") as archive:
        assert archive.getnames() == ["code/features.py", "features.json"]
        archive.extractall(model_dir, filter="data")
    assert (model_dir / "code" / "features.py").read_text() == bundle(SCRIPT)  # as the job's bundle serves
    assert (model_dir / "features.json").read_text() == (out / "params" / "features.json").read_text()
    spec = importlib.util.spec_from_file_location("served_features", model_dir / "code" / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_packaged_model_serves_raw_rows_as_exactly_the_processed_test_rows(mixed, tmp_path):
    """The archive's own code, under the scikit-learn serving contract, turns the raw test rows into the very
    bytes the job wrote for evaluation: the served pipeline scores what evaluation scored."""
    out = tmp_path / "out"
    run(mixed, out)
    module = served_module(out, tmp_path / "model")
    model = module.model_fn(str(tmp_path / "model"))
    body, content_type = module.output_fn(module.predict_fn(
        module.input_fn((mixed / "test.csv").read_bytes(), "text/csv"), model), "text/csv")
    assert content_type == "text/csv" and body == (out / "test" / "test.csv").read_text()
    assert module.input_fn(b"1,2,red\n", "text/csv; charset=utf-8") == [["1", "2", "red"]]
    # One row at a time (surrounding spaces as the import strips them): the same lines.
    one = module.output_fn(module.predict_fn(module.input_fn(" 11 , 4 ,blue\n", "text/csv"), model), "text/csv")
    assert one[0] == (out / "test" / "test.csv").read_text().splitlines(keepends=True)[2]


def test_serving_refuses_rows_it_cannot_read_and_names_what_a_row_holds(mixed, tmp_path):
    out = tmp_path / "out"
    run(mixed, out)
    module = served_module(out, tmp_path / "model")
    model = module.model_fn(str(tmp_path / "model"))
    with pytest.raises(ValueError, match=r"^row 2 has 4 values; each row needs 3 values: id,size,colour, in this "
                                         r"order, without the label 'label'$"):
        module.predict_fn(module.input_fn("9,1,red\n9,1,a,red\n", "text/csv"), model)
    with pytest.raises(ValueError, match=r"^row 1, column 'size': 'big' is not a finite number"):
        module.predict_fn(module.input_fn("9,big,red\n", "text/csv"), model)
    with pytest.raises(ValueError, match="not supported"):
        module.input_fn('[["9", "1", "red"]]', "application/json")
    with pytest.raises(ValueError, match="no rows"):
        module.input_fn("\n", "text/csv")


def test_the_offline_scikit_learn_container_serves_it(mixed, tmp_path):
    """offline/runtimes/serving.py runs the archive as the scikit-learn image would (SAGEMAKER_PROGRAM=features.py from
    the repacked code folder), client errors included."""
    out = tmp_path / "out"
    run(mixed, out)
    container = {"Image": "123.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                 "Environment": {"SAGEMAKER_PROGRAM": features.SERVING_MODULE,
                                 "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                                 "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}}
    served = SklearnFramework(container, (out / "preprocessor" / "model.tar.gz").read_bytes())
    assert served((mixed / "test.csv").read_bytes(), "text/csv", "") == (
        (out / "test" / "test.csv").read_bytes(), "text/csv")
    with pytest.raises(Exception, match="ValueError: row 1 has 2 values; each row needs 3 values") as error:
        served(b"1,red\n", "text/csv", "text/csv")
    assert error.value.status == 400


def test_the_packaged_model_is_byte_stable(mixed, tmp_path):
    for out in (tmp_path / "a", tmp_path / "b"):
        run(mixed, out)
        time.sleep(1.1)  # a timestamp in the gzip or tar headers would differ
    first = (tmp_path / "a" / "preprocessor" / "model.tar.gz").read_bytes()
    assert first == (tmp_path / "b" / "preprocessor" / "model.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a" / "preprocessor" / "model.tar.gz") as archive:
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in archive} == {(0, 0, 0, "", "", 0o644)}


def test_large_splits_are_processed_in_chunks_with_the_same_result(tmp_path, monkeypatch):
    """Chunking bounds memory; the output must not depend on where a chunk ends."""
    rows = [[str(i % 3), str(i * 7 % 11), "" if i % 5 == 0 else str(i % 4)] for i in range(50)]
    raw = write_raw(tmp_path / "raw", ["label", "x", "z"], {"train": rows, "validation": rows, "test": rows},
                    label="label", task="multiclass", categorical=("z",), classes=["0", "1", "2"])
    run(raw, tmp_path / "whole")
    monkeypatch.setattr(features, "CHUNK_ROWS", 7)
    run(raw, tmp_path / "chunked")
    for name in ("train/train.csv", "validation/validation.csv", "test/test.csv", "preprocessor/model.tar.gz"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes(), name


def replace(folder: Path, name: str, old: str, new: str) -> None:
    (folder / name).write_text((folder / name).read_text().replace(old, new, 1))


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda d: (d / "dataset.json").unlink(), "missing input file {raw}/dataset.json"),
    (lambda d: (d / "test.csv").unlink(), "missing input file {raw}/test.csv"),
    (lambda d: replace(d, "train.csv", "id,size", "id,width"),
     "{raw}/train.csv line 1 has columns id,width,label,colour; dataset.json says id,size,label,colour"),
    (lambda d: replace(d, "train.csv", "3,4,c", "3,four,c"),
     "{raw}/train.csv line 4, column 'size': 'four' is not a finite number, and the column is numeric"),
    (lambda d: replace(d, "validation.csv", "8,null,c", "8,null,d"),
     "{raw}/validation.csv line 3, column 'label': the label 'd' is not one of the classes a, b, c"),
    (lambda d: replace(d, "test.csv", "10,7,", "10,7,7,"),
     "{raw}/test.csv line 2 has 4 values; expected 3 values: id,size,colour, in this order, without the label"),
    (lambda d: replace(d, "validation.csv", "7,3,b,green", "7,3,b"),
     "{raw}/validation.csv line 2 has 3 values; expected 4, the columns of its header"),
    (lambda d: (d / "test.csv").write_text(""), "{raw}/test.csv has no rows"),
    (lambda d: (d / "train.csv").write_text("id,size,label,colour\n1,2,a,red\n2,2,b,blue\n3,NA,c,red\n"),
     "{raw}/train.csv, column 'size': every value (missing ones imputed) is 2.0; a constant column cannot be "
     "standardized: drop it"),
    (lambda d: (d / "train.csv").write_text("id,size,label,colour\n1,2,a,\n2,3,b,NA\n"),
     "{raw}/train.csv, column 'colour': every value is missing"),
    (lambda d: replace(d, "dataset.json", '"multiclass"', '"ranking"'),
     "{raw}/dataset.json: task 'ranking' is not one of binary, multiclass, regression"),
    (lambda d: replace(d, "dataset.json", '"numeric": ["size"]', '"numeric": []'),
     "{raw}/dataset.json: feature 'size' must be in exactly one of numeric and categorical"),
])
def test_bad_input_exits_non_zero_with_where_and_what(mixed, tmp_path, capsys, breakage, message):
    breakage(mixed)
    assert run(mixed, tmp_path / "out") == 1
    assert f"features: {message.format(raw=mixed)}" in capsys.readouterr().err


def test_command_line_as_sagemaker_runs_it(mixed, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(mixed), "--output-dir",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"rows": {"train": 6, "validation": 2, "test": 3}, "output_features": 4}


@pytest.mark.parametrize("count", [1, 2, 7, 1000, 4099])
def test_the_median_from_the_spill_file_is_numpys_exactly(tmp_path, monkeypatch, count):
    """The training median comes from a file of the values by radix select in blocks (memory flat at any size):
    the same float numpy's median gives, for odd and even counts, negatives, repeats, -0.0 and extremes."""
    monkeypatch.setattr(features, "STATS_BLOCK", 64)  # many blocks
    rng = np.random.default_rng(count)
    values = np.concatenate([rng.standard_normal(count // 2) * 10.0 ** rng.integers(-300, 300, count // 2),
                             rng.integers(-3, 3, count - count // 2).astype(float)])
    values[::17] = -0.0
    rng.shuffle(values)
    path = tmp_path / "spill.f8"
    values.tofile(path)
    assert features.exact_median(path, count) == float(np.median(values))


def test_the_moments_are_merged_blockwise_within_rounding_of_numpys(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "STATS_BLOCK", 100)
    rng = np.random.default_rng(5)
    values = rng.lognormal(10, 2, 5000)
    rows = [["" if i % 7 == 0 else repr(v)] for i, v in enumerate(values.tolist())]
    dataset = {"features": ["x"], "dropped": [], "numeric": ["x"], "categorical": [], "task": "regression",
               "label_column": "y", "classes": None}
    fitter = features.Fitter(dataset, tmp_path)
    for start in range(0, len(rows), 333):
        fitter.add(list(zip(*rows[start:start + 333])), lambda i: "row")
    fitted = fitter.parameters(tmp_path / "train.csv")["numeric"]["x"]
    present = np.array([float(r[0]) for r in rows if r[0]])
    imputed = np.where([r[0] == "" for r in rows], np.median(present), [float(r[0] or "nan") for r in rows])
    assert fitted["median"] == float(np.median(present))
    assert fitted["mean"] == pytest.approx(imputed.mean(), rel=1e-14)
    assert fitted["std"] == pytest.approx(imputed.std(), rel=1e-14)


def test_worker_processes_transform_the_chunks_to_the_same_bytes_and_name_the_first_bad_row(tmp_path, monkeypatch):
    """Chunks transformed side by side by forked workers come back in order: the same files as one process
    writes; a bad value in a late chunk is named by its own line, the first one of the split."""
    rows = [[str(i % 3), f"{i * 0.37:.3f}", "" if i % 5 == 0 else "abc"[i % 3]] for i in range(200)]
    raw = write_raw(tmp_path / "raw", ["label", "x", "z"], {"train": rows, "validation": rows, "test": rows},
                    label="label", task="multiclass", categorical=("z",), classes=["0", "1", "2"])
    monkeypatch.setattr(features, "CHUNK_ROWS", 7)
    written = {}
    for workers in (1, 3):
        monkeypatch.setattr(workers_module, "WORKERS", workers)
        assert features.process(raw, tmp_path / f"w{workers}", train_parts=2)["rows"]["test"] == 200
        written[workers] = {p.relative_to(tmp_path / f"w{workers}"): p.read_bytes()
                            for p in (tmp_path / f"w{workers}").rglob("*") if p.is_file()}
    assert written[1] == written[3] and len(written[1]) == 6
    validation = (raw / "validation.csv").read_text().splitlines()
    for line in (150, 180):  # two bad values in late chunks: the earlier is named
        cells = validation[line - 1].split(",")
        cells[1] = f"bad{line}"
        validation[line - 1] = ",".join(cells)
    (raw / "validation.csv").write_text("\n".join(validation) + "\n")
    with pytest.raises(features.BadInput, match=r"validation.csv line 150, column 'x': 'bad150' is not a finite"):
        features.process(raw, tmp_path / "bad", train_parts=2)
