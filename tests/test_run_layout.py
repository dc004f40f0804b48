"""The run layout (runs/<execution name>/<folder>/) is contract/run_layout.py's: written once, shipped to the
functions that check a run's prefix or URI in the contract package they link, and the only place that spells a run
as a pattern."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from contract import run_layout
from stacks.workflows.workflow_stack import SHARED_FUNCTIONS, WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "contract" / "run_layout.py"
# A run spelled as a pattern: runs/ then one segment, [^/]+ (or * ...), as the handlers once wrote it each.
RUN_REGEX = re.compile(r"runs/\\?\[\^/\]")
# Code of the kit outside contract/: the CDK side, functions, jobs (processing/monitor.py runs alone in its
# container, yet has no pattern of its own), the emulator and operations.
SEARCHED = ("stacks", "lambda", "processing", "training", "offline", "operations", "app.py")


def _imports_run_layout(path: Path) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "contract"
               and any(a.name == "run_layout" for a in node.names)
               for node in ast.walk(ast.parse(path.read_text())))


USERS = sorted({path.parent.name for path in (ROOT / "lambda").glob("*/*.py")
                if not path.is_symlink() and _imports_run_layout(path)})


def test_the_run_pattern_is_written_once():
    files = [p for entry in SEARCHED for p in ([ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"))
             if not p.is_symlink()]  # lambda/<function>/metrics.py is processing/metrics.py; contract links aren't walked
    assert len(files) > 50
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in RUN_REGEX.finditer(p.read_text())]
    assert found == []
    assert RUN_REGEX.search(MODULE.read_text()) is None  # built from RUNS there, not spelled out
    assert run_layout.run_prefix_pattern().pattern == r"runs/[^/]+/"


def test_the_check_finds_a_handler_that_writes_its_own():
    assert RUN_REGEX.search('''PREFIX = re.compile(r"^runs/[^/]+/input/$")''')


def test_the_functions_that_check_run_paths_take_the_module():
    """Each gets it in the contract package its folder links (tests/test_contract.py checks links and assets)."""
    assert USERS == ["check_model_package", "collect_traffic", "compare_shadow", "monitor_deployment", "publish_metrics",
                     "read_metrics", "seed_dataset", "smoke_test", "validate_input"]


def test_the_workflows_name_only_folders_of_the_layout():
    named = {folder for cls in WORKFLOWS.values() for folder in (*cls.spec.reads, *cls.spec.writes)}
    named |= {folder for cls in WORKFLOWS.values()
              for function in (*cls.spec.functions.values(), *SHARED_FUNCTIONS.values())
              for folder in (*function.reads, *function.writes)}
    assert named and named <= set(run_layout.FOLDERS)


def test_the_definitions_name_only_folders_of_the_layout():
    """Each ASL path built from a run's prefix starts with one of its folders."""
    formats = [m for path in sorted((ROOT / "statemachines").glob("*.asl.json"))
               for m in re.findall(r"States\.Format\('(?:s3://\$\{DataBucket\}/)?\{\}([^']*)'[^)]*run_prefix",
                                   path.read_text())]
    assert formats
    assert {f.split("/")[0] for f in formats} <= set(run_layout.FOLDERS)


@pytest.mark.parametrize("name", ["exec-1", "a.b_c", "x" * 80])
def test_a_run_prefix_is_what_the_functions_accept(name):
    prefix = run_layout.run_prefix(name)
    assert prefix == f"runs/{name}/"
    assert run_layout.run_prefix_pattern().fullmatch(prefix)
    assert run_layout.folder_prefix_pattern(run_layout.INPUT).fullmatch(f"{prefix}input/")


@pytest.mark.parametrize("text", ["runs/a/b/", "runs//", "runs/a", "run/a/", "runs/a/\n", "/runs/a/"])
def test_a_run_prefix_is_one_segment_under_runs(text):
    assert not run_layout.run_prefix_pattern().fullmatch(text)


def test_uri_patterns_name_the_bucket_the_key_and_the_run():
    found = run_layout.uri_pattern(run_layout.PREPROCESSOR, "model.tar.gz").fullmatch(
        "s3://b/runs/r/processed/preprocessor/model.tar.gz")
    assert (found["bucket"], found["key"], found["run"]) == ("b", "runs/r/processed/preprocessor/model.tar.gz",
                                                             "runs/r/")
    assert not run_layout.uri_pattern(run_layout.PREPROCESSOR, "model.tar.gz").fullmatch(
        "s3://b/runs/r/processed/preprocessor/modelXtar.gz")  # the file is literal, not a pattern
    model = run_layout.uri_pattern(run_layout.MODEL)
    assert model.fullmatch("s3://b/runs/r/model/job/output/model.tar.gz")["run"] == "runs/r/"
    assert not model.fullmatch("s3://b/runs/r/model/") and not model.fullmatch("s3://b/runs/r/x/model/a")
    anything = run_layout.uri_pattern()
    assert anything.fullmatch("s3://b/runs/r/input/raw/test.csv")["key"] == "runs/r/input/raw/test.csv"
    assert not anything.fullmatch("s3://b/datasets/a.csv") and not anything.fullmatch("s3://b/runs/r/")
    capture = run_layout.folder_uri_pattern(run_layout.CAPTURE)
    assert capture.fullmatch("s3://b/runs/r/capture")["run"] == capture.fullmatch("s3://b/runs/r/capture/")["run"]
    assert not capture.fullmatch("s3://b/runs/r/capture/x")


def test_patterns_are_compiled_once():
    assert run_layout.uri_pattern(run_layout.MODEL) is run_layout.uri_pattern(run_layout.MODEL)
    assert run_layout.run_prefix_pattern() is run_layout.run_prefix_pattern()


def test_globs_are_the_iam_resources():
    assert run_layout.glob() == "runs/*"
    assert run_layout.glob(run_layout.PREPROCESSOR) == "runs/*/processed/preprocessor/*"
    assert run_layout.DEPLOYMENT_RECORD == "deployment/version.json"
