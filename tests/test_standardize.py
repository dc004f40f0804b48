"""The processing script, run locally exactly as SageMaker runs it (same arguments, staged folders)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import tarfile
import time
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, load_lambda_module

SCRIPT = ROOT / "processing" / "standardize.py"
spec = importlib.util.spec_from_file_location("standardize", SCRIPT)
standardize = importlib.util.module_from_spec(spec)
sys.modules["standardize"] = standardize
spec.loader.exec_module(standardize)
dataset = load_lambda_module("seed_dataset", "dataset")


@pytest.fixture
def raw(tmp_path):
    """The seeding function's raw files, as SageMaker stages them in the processing input folder."""
    folder = tmp_path / "input"
    folder.mkdir()
    for key, body in dataset.build_files(dataset.PROFILES["scaled"], 1000, seed=4).items():
        if key.startswith("raw/"):
            (folder / key.removeprefix("raw/")).write_text(body)
    return folder


def run(input_dir, output_dir) -> int:
    return standardize.main(["--input-dir", str(input_dir), "--output-dir", str(output_dir)])


def read_raw(folder, split: str) -> pd.DataFrame:
    """A raw split: train and validation with a header, test without (the rows a client sends)."""
    if split == "test":
        return pd.read_csv(folder / "test.csv", header=None, names=["x", "y"])
    return pd.read_csv(folder / f"{split}.csv")


def processed(output_dir, split: str, columns: list[str]) -> pd.DataFrame:
    return pd.read_csv(output_dir / split / f"{split}.csv", header=None, names=columns)


def test_training_split_is_standardized(raw, tmp_path):
    out = tmp_path / "output"
    assert run(raw, out) == 0
    train = processed(out, "train", ["label", "x", "y"])
    for feature in ("x", "y"):
        assert abs(train[feature].mean()) < 1e-9
        assert abs(train[feature].std(ddof=0) - 1) < 1e-9
    original = pd.read_csv(raw / "train.csv")
    assert (train["label"] == original["label"]).all()


def test_validation_and_test_use_training_statistics(raw, tmp_path):
    out = tmp_path / "output"
    run(raw, out)
    train = pd.read_csv(raw / "train.csv")
    mean, std = train[["x", "y"]].mean(), train[["x", "y"]].std(ddof=0)
    for split, columns in (("validation", ["label", "x", "y"]), ("test", ["x", "y"])):
        original = read_raw(raw, split)
        expected = (original[["x", "y"]] - mean) / std
        np.testing.assert_allclose(processed(out, split, columns)[["x", "y"]], expected, rtol=1e-12)
        # Not the split's own statistics: those would centre it exactly.
        assert abs(expected["y"].mean()) > 1e-6


def test_parameters_artifact_round_trips(raw, tmp_path):
    out = tmp_path / "output"
    run(raw, out)
    parameters = json.loads((out / "params" / "standardization.json").read_text())
    assert parameters["features"] == ["x", "y"] and parameters["fitted_on"] == "train"
    assert parameters["rows"] == {"train": 1000, "validation": 200, "test": 200}
    for split, columns in (("validation", ["label", "x", "y"]), ("test", ["x", "y"])):
        again = standardize.apply_parameters(parameters, read_raw(raw, split)[["x", "y"]].to_numpy(dtype=float))
        np.testing.assert_allclose(again, processed(out, split, columns)[["x", "y"]], rtol=1e-12)


def test_outputs_are_xgboost_ready(raw, tmp_path):
    out = tmp_path / "output"
    run(raw, out)
    first = (out / "train" / "train.csv").read_text().splitlines()[0].split(",")
    assert first[0] in ("0", "1") and len(first) == 3  # no header, label first
    assert len((out / "test" / "test.csv").read_text().splitlines()[0].split(",")) == 2


def write(folder, name, text):
    (folder / name).write_text(text)


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda d: (d / "validation.csv").unlink(), "missing input file"),
    (lambda d: write(d, "train.csv", ""), "train.csv is empty"),
    (lambda d: write(d, "train.csv", "label,x,y\n"), "train.csv has no rows"),
    (lambda d: write(d, "test.csv", "1\n2\n"), "test.csv has empty cells"),
    (lambda d: write(d, "test.csv", "x,y\n1,2\n"), "test.csv has non-numeric values in column(s) x, y"),
    (lambda d: write(d, "validation.csv", "label,x,y\n1,2,three\n"), "non-numeric values in column(s) y"),
    (lambda d: write(d, "train.csv", "x,y\n1,2\n3,4\n"), "train.csv lacks column(s) label"),
    (lambda d: write(d, "train.csv", "label\n1\n0\n"), "needs at least one feature column besides 'label'"),
    (lambda d: write(d, "train.csv", "label,x,y\n1,5,10\n0,5,20\n"), "feature(s) x have zero variance"),
    (lambda d: write(d, "train.csv", "label,x,y\n1,5,\n0,6,20\n"), "has empty cells"),
])
def test_bad_input_exits_non_zero_with_its_message(raw, tmp_path, capsys, breakage, message):
    breakage(raw)
    assert run(raw, tmp_path / "output") == 1
    assert message in capsys.readouterr().err


def test_command_line_as_sagemaker_runs_it(raw, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(raw), "--output-dir",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["standardized"] == {"train": 1000, "validation": 200, "test": 200}


def test_the_fitted_step_is_packaged_as_a_model_that_serves_raw_rows_as_training_saw_them(raw, tmp_path):
    """The archive's own code, under the scikit-learn serving contract, turns the raw test rows into exactly the
    text the processing step wrote for evaluation: the served pipeline scores what evaluation scored."""
    out = tmp_path / "output"
    run(raw, out)
    model_dir = tmp_path / "model"
    with tarfile.open(out / "preprocessor" / "model.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["code/standardize.py", "standardization.json"]
        archive.extractall(model_dir, filter="data")
    assert (model_dir / "code" / "standardize.py").read_bytes() == SCRIPT.read_bytes()
    served = importlib.util.spec_from_file_location("served_standardize", model_dir / "code" / "standardize.py")
    module = importlib.util.module_from_spec(served)
    served.loader.exec_module(module)
    model = module.model_fn(str(model_dir))
    body, content_type = module.output_fn(module.predict_fn(
        module.input_fn((raw / "test.csv").read_bytes(), "text/csv"), model), "text/csv")
    assert content_type == "text/csv" and body == (out / "test" / "test.csv").read_text()
    with pytest.raises(ValueError, match="each row needs 2 values"):
        module.predict_fn(module.input_fn("1,2,3\n", "text/csv"), model)
    with pytest.raises(ValueError, match="finite numbers"):
        module.input_fn("1,nan\n", "text/csv")
    with pytest.raises(ValueError, match="not supported"):
        module.input_fn("[[1, 2]]", "application/json")


def test_the_packaged_model_is_byte_stable(raw, tmp_path):
    for out in (tmp_path / "a", tmp_path / "b"):
        run(raw, out)
        time.sleep(1.1)  # a timestamp in the gzip header would differ
    assert ((tmp_path / "a" / "preprocessor" / "model.tar.gz").read_bytes()
            == (tmp_path / "b" / "preprocessor" / "model.tar.gz").read_bytes())
