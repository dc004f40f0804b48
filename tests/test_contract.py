"""contract/ holds each fact the jobs, functions, the CDK side and the emulator share, once, and ships unchanged to
every place that runs it: a link in a function's or source folder's, a bundle in a job's one file."""
from __future__ import annotations

import ast
import csv
import io
import math
import os
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from contract import bundle as bundler
from contract import chunks
from contract.chunks import columns_of, csv_chunks, pack_columns, stripped, unpack_columns
from contract.data import MISSING, NUMBER, TASKS, BadInput, finite_number, floats_of, missing_among_numbers
from stacks.constructs.job_script import job_script
from stacks.constructs.source_archive import source_archive
from offline.runtimes.spark_jobs import SPARK_PYTHON
from tests.conftest import ROOT

CONTRACT = ROOT / "contract"
MODULES = sorted(p.name for p in CONTRACT.glob("*.py"))
SCRIPTS = sorted((ROOT / "processing").glob("*.py"))
# The kit's code outside contract/, where none of its facts may be defined again.
SEARCHED = ("stacks", "lambda", "processing", "training", "offline", "operations", "examples", "app.py")
# A definition of a contract fact, however it is spelled.
DEFINITIONS = {
    "the number grammar": re.compile(r"re\.compile\(r?[\"']\[\+-\]\?"),
    "the missing values": re.compile(r"[\"']#N/A N/A[\"']"),
    "the task list": re.compile(r"[\"']binary[\"'],\s*[\"']multiclass[\"'],\s*[\"']regression[\"']"),
    "the data error type": re.compile(r"^class BadInput\b", re.M),
}


def _kit_files() -> list[Path]:
    files = [p for entry in SEARCHED for p in ([ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"))
             if not p.is_symlink()]  # processing/contract, lambda/<f>/contract are links: rglob does not enter them
    assert len(files) > 50
    return files


def test_each_fact_of_the_data_contract_is_defined_once():
    assert [f"{name}: {p.relative_to(ROOT)}" for p in _kit_files() for name, pattern in DEFINITIONS.items()
            if pattern.search(p.read_text())] == []
    source = (CONTRACT / "data.py").read_text()
    assert all(pattern.search(source) for pattern in DEFINITIONS.values())  # the patterns find the real ones


def test_the_search_would_find_a_script_that_defines_its_own():
    planted = 'TASKS = ("binary", "multiclass", "regression")\nNUMBER = re.compile(r"[+-]?\\d+")\nclass BadInput(X):'
    assert [name for name, pattern in DEFINITIONS.items() if pattern.search(planted)] == [
        "the number grammar", "the task list", "the data error type"]


def test_the_contract_is_standard_library_only_and_imports_nothing_of_the_kit():
    for name in MODULES:
        tree = ast.parse((CONTRACT / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= set(sys.stdlib_module_names), (name, imported - set(sys.stdlib_module_names))


def test_the_grammar_reads_numbers_as_the_training_data_does():
    assert [finite_number(t) for t in ("10", "-1.5", ".5", "2e3", "+7.")] == [10.0, -1.5, 0.5, 2000.0, 7.0]
    for text in ("1_0", " 1", "nan", "inf", "1e999", "0x10", "1,5", "abc", "", "٣", "３", "1e٣"):
        assert finite_number(text) is None, text
    assert NUMBER.fullmatch("1e999") and "" in MISSING and issubclass(BadInput, ValueError)
    assert TASKS == ("binary", "multiclass", "regression")


def test_a_columns_floats_are_the_grammars_value_by_value():
    """floats_of reads a whole column at C speed; it must take exactly what NUMBER takes (and MISSING as NaN), and
    give float()'s value, whichever of its two ways (every value, or each distinct one) it goes."""
    rng = random.Random(7)
    alphabet = "0123456789.+-eE _naifINFx٣\n"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(20000)]
    texts += sorted(MISSING) + ["1e999", "-1e999", "1.5e-3", "+.5", "5.", "-0"]
    for text in texts:
        got = floats_of((text,))
        if text in MISSING:
            assert got is not None and math.isnan(got[0]), text
        elif NUMBER.fullmatch(text):
            assert got == [float(text)], text
        else:
            assert got is None, text
        number = text in MISSING or finite_number(text) is not None
        assert missing_among_numbers((text,)) == ((text in MISSING) if number else None), text
    texts += ["1" * 301, "1" * 400, "-" + "9" * 300, "1\n2", "1e5e5", "e", "1e", "1.5e-7", "-.5E+3", "2e400"]
    for _ in range(3000):  # columns of a few values: a bad one anywhere, or none
        column = tuple(rng.sample(texts, 4))
        numbers = all(t in MISSING or finite_number(t) is not None for t in column)
        assert missing_among_numbers(column) == (sum(t in MISSING for t in column) if numbers else None), column
    numbers = [t for t in texts if NUMBER.fullmatch(t) and math.isfinite(float(t))]
    column = tuple(rng.choice(numbers[:5] + ["", "NA"]) for _ in range(100))  # few distinct: read once each
    assert [repr(x) for x in floats_of(column)] == [repr(math.nan if t in MISSING else float(t)) for t in column]
    assert floats_of(column + ("1.2.3",)) is None and floats_of(tuple(numbers) + ("inf",)) is None


def test_the_chunked_reader_gives_every_rows_lines_and_values_as_a_row_by_row_read():
    rng = random.Random(3)
    spaces = ["", " ", "\t", "\xa0", "\x1c", "\u2003"]
    lines = []
    for number in range(300):
        cells = [rng.choice(spaces) + rng.choice(["a", "1.5", "", "New York"]) + rng.choice(spaces) for _ in range(3)]
        if number % 50 == 7:
            cells[1] = '"two\nlines"'
        lines.append(",".join(cells) if number % 40 != 3 else "")  # a blank line now and then
    text = "\n".join(lines) + "\n"
    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        if row:
            expected.append((reader.line_num + 9, stripped(row)))
    got = []
    for numbers, rows in csv_chunks(io.StringIO(text, newline=""), 17, first_line=10):
        by_column = columns_of(rows, 3)
        assert by_column is not None and [list(r) for r in zip(*by_column)] == [stripped(r) for r in rows]
        got += list(zip(numbers, map(stripped, rows)))
    assert got == expected
    assert columns_of((["a", "b"], ["c"]), 2) is None


@pytest.mark.parametrize("block", [7, 64, 1 << 22])
def test_a_plain_text_is_read_as_the_csv_reader_reads_it(monkeypatch, block):
    """Split at line feeds and commas, whatever the block boundaries: the rows, their line numbers and the
    field-size refusal are the csv reader's."""
    monkeypatch.setattr(chunks, "PLAIN_BLOCK", block)
    rng = random.Random(block)
    for _ in range(40):
        lines = [",".join(rng.choice(["a", " b ", "", "1.5", "x y", "\t"]) for _ in range(rng.randint(1, 4)))
                 if rng.random() > 0.15 else "" for _ in range(rng.randint(0, 30))]
        text = "\n".join(lines) + rng.choice(["", "\n"])
        assert chunks.plain_csv(text.encode())
        plain = list(csv_chunks(io.StringIO(text, newline=""), 5, 3, plain=True))
        read = list(csv_chunks(io.StringIO(text, newline=""), 5, 3))
        flat = [[(n, list(r)) for numbers, rows in way for n, r in zip(numbers, rows)] for way in (plain, read)]
        assert flat[0] == flat[1] and all(len(rows) <= 5 for _, rows in plain), text
    huge = "a,b\n1," + "9" * (csv.field_size_limit() + 1) + "\n"
    errors = []
    for plain in (True, False):
        with pytest.raises(csv.Error) as error:
            list(csv_chunks(io.StringIO(huge, newline=""), 5, 1, plain=plain))
        errors.append((str(error.value), error.value.line))
    assert errors[0] == errors[1] == (f"field larger than field limit ({csv.field_size_limit()})", 2)
    assert not any(chunks.plain_csv(data) for data in (b'a,"b"\n', b"a\r\n", b"a\x00b\n"))


def test_work_spread_over_the_cpus_comes_back_in_order_and_fails_at_the_first_failing_item():
    from concurrent.futures.process import BrokenProcessPool

    from contract.workers import in_order
    assert list(in_order(lambda x: x * x, range(30), workers=2)) == [x * x for x in range(30)]
    assert os.getpid() not in set(in_order(lambda _: os.getpid(), range(8), workers=2))  # done by the workers

    def fails(x):
        if x in (7, 12):
            raise ValueError(f"item {x}")
        return x
    with pytest.raises(ValueError, match="item 7"):
        list(in_order(fails, range(30), workers=2))

    def dies(x):
        if x == 3:
            os._exit(9)  # as a worker killed for memory ends
        return x
    with pytest.raises(BrokenProcessPool):
        list(in_order(dies, range(6), workers=2))


# -- what ships ---------------------------------------------------------------------------------------------------
def _folders_that_import_the_contract() -> list[Path]:
    found = []
    for folder in [*(ROOT / "lambda").iterdir(), *(ROOT / "training").iterdir()]:
        sources = [p for p in folder.glob("*.py")]
        if any(re.search(r"^(from|import) contract\b", p.read_text(), re.M) for p in sources):
            found.append(folder)
    return found


def test_every_folder_whose_code_imports_the_contract_links_it():
    folders = _folders_that_import_the_contract()
    assert {f.name for f in folders} >= {"check_model_package", "read_metrics", "smoke_test", "sklearn_linear"}
    for folder in folders:
        link = folder / "contract"
        assert link.is_symlink() and link.resolve() == CONTRACT, link
    linked = {p.parent for p in [*(ROOT / "lambda").glob("*/contract"), *(ROOT / "training").glob("*/contract")]}
    assert linked == set(folders)  # no link where nothing uses it


def test_each_function_asset_holds_the_contract_itself(synthesized):
    """CDK copies a link's target into the asset (SymlinkFollowMode.EXTERNAL): the package, not a link out of it."""
    users = {(f / "handler.py").read_text() for f in _folders_that_import_the_contract() if f.parent.name == "lambda"}
    shipped = [p for p in synthesized["default"].outdir.glob("asset.*") if (p / "handler.py").is_file()
               and (p / "handler.py").read_text() in users]
    assert {(p / "handler.py").read_text() for p in shipped} == users
    for asset in shipped:
        assert not (asset / "contract").is_symlink()
        assert sorted(p.name for p in (asset / "contract").glob("*.py")) == MODULES
        for name in MODULES:
            assert (asset / "contract" / name).read_bytes() == (CONTRACT / name).read_bytes()


def test_the_script_mode_source_folder_packs_the_contract():
    with tarfile.open(fileobj=io.BytesIO(source_archive(ROOT / "training" / "sklearn_linear").read_bytes())) as tar:
        names = tar.getnames()
        assert tar.extractfile("contract/data.py").read() == (CONTRACT / "data.py").read_bytes()
    assert "train.py" in names and not any("__pycache__" in n for n in names)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_jobs_bundle_is_its_script_and_the_modules_it_imports_and_runs_alone(script, tmp_path):
    """Outside the repository (no contract package anywhere), the bundle starts and answers --help; every line of the
    script but its contract import is in it, in order."""
    text = bundler.bundle(script)
    source = script.read_text()
    imports = {number for node in ast.parse(source).body if isinstance(node, ast.ImportFrom)
               and (node.module or "").startswith("contract.") for number in range(node.lineno, node.end_lineno + 1)}
    own = [line for number, line in enumerate(source.splitlines(), 1) if number not in imports]
    kept = iter(text.splitlines())
    assert all(any(line == other for other in kept) for line in own)  # a subsequence: nothing changed or lost
    assert not re.search(r"^(from|import) contract\b", text, re.M)
    shipped = tmp_path / script.name
    shipped.write_text(text)
    # The Spark data job runs in the Spark image's Python, which has PySpark (offline: .venv-spark).
    python = str(SPARK_PYTHON) if script.name == "spark_data_job.py" else sys.executable
    done = subprocess.run([python, "-I", str(shipped), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_jobs_of_the_synthesized_app_get_the_bundles(synthesized):
    """Every .py file asset CDK stages is one of the processing scripts' bundles, and each script ships."""
    import json

    outdir = synthesized["default"].outdir
    staged = {(outdir / entry["source"]["path"]).read_text()
              for manifest in outdir.glob("*.assets.json")
              for entry in json.loads(manifest.read_text())["files"].values()
              if entry["source"]["path"].endswith(".py")}
    assert staged == {bundler.bundle(script) for script in SCRIPTS}
    assert job_script(ROOT / "training" / "sklearn_linear" / "inference.py") == \
        ROOT / "training" / "sklearn_linear" / "inference.py"  # nothing to bundle: shipped as it is


@pytest.mark.parametrize("source, message", [
    ("def f():\n    from contract.data import TASKS\n", "line 2: import the contract at the top level"),
    ("import contract.data\n", "line 1: import the contract at the top level"),
    ("from contract import data\n", "line 1: import the contract at the top level"),
    ("from contract.nothing import X\n", "line 1: import the contract at the top level"),
    ("from contract.data import TASKS\nfrom contract.data import NUMBER\n", "imports a contract module in two lines"),
    ("from contract.run_layout import RUNS\n", "contract/run_layout.py uses `from __future__ import annotations`"),
])
def test_the_bundle_refuses_imports_it_cannot_ship(tmp_path, source, message):
    script = tmp_path / "job.py"
    script.write_text(source)
    with pytest.raises(bundler.BundleError, match=re.escape(message)):
        bundler.bundle(script)
