"""The tree shows the layers: every module belongs to a declared layer, imports only its own and lower ones, and
stacks/ and offline/ keep at most eight entries at their top level. contract/, the lowest, imports only the standard
library: it ships unchanged to jobs and functions, where nothing else of the kit is."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "stacks", "offline", "operations")
# Lowest first. A module's layer is the longest entry its dotted name starts with; it may import from its own layer
# and the ones before it. offline/ runs what stacks/ synthesizes, and operations/ uses both.
LAYERS = (
    ("contract",),  # standard-library facts every other layer (and the jobs and functions) reads
    ("stacks.aws_behaviours",),
    ("stacks.cdk",),
    ("stacks.settings",),
    ("stacks.asl",),
    ("stacks.constructs",),
    ("stacks.workflows",),
    ("stacks.app",),
    ("offline.sources",),
    ("offline.runtimes",),
    ("offline.iam",),
    ("offline.services",),
    ("offline.cloud",),
    ("offline.cli", "offline.run"),  # offline/run.py keeps `python -m offline.run` and hands over to offline/cli/
    ("operations",),
)
RANK = {prefix: rank for rank, prefixes in enumerate(LAYERS) for prefix in prefixes}
MAX_TOP_LEVEL = 8


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
ROOTS = {"stacks", "offline"}  # the bare packages: their __init__.py only says what lives below


def layer(module: str) -> str | None:
    matches = [prefix for prefix in RANK if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=len) if matches else None


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) of each import in the file, wherever it is (functions too); `from a import b` names a.b
    when b is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
                      for alias in node.names]
    return found


def test_every_module_belongs_to_a_declared_layer():
    assert [name for name in MODULES if name not in ROOTS and layer(name) is None] == []


@pytest.mark.parametrize("module", sorted(set(MODULES) - ROOTS))
def test_imports_point_only_downward(module):
    own = RANK[layer(module)]
    upward = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target} (layer {layer(target)}, above {layer(module)})"
              for line, target in imported(MODULES[module], module)
              if layer(target) is not None and RANK[layer(target)] > own]
    assert upward == []


@pytest.mark.parametrize("module", sorted(name for name in MODULES if layer(name) == "contract"))
def test_contract_imports_only_the_standard_library(module):
    """Nothing of the kit (not even another contract module), nor boto3: a job's container or a function's asset
    holds the module alone, linked beside its code."""
    outside = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
               for line, target in imported(MODULES[module], module)
               if target.split(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    assert outside == []


@pytest.mark.parametrize("package", ["stacks", "offline"])
def test_top_level_stays_small(package):
    entries = sorted(p.name for p in (ROOT / package).iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_LEVEL, f"{package}/ has {len(entries)} entries: {entries}"


@pytest.mark.parametrize("folder", sorted({path.parent for path in MODULES.values()}), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_folder_says_what_lives_there_in_one_line(folder):
    init = folder / "__init__.py"
    assert init.is_file(), f"{init.relative_to(ROOT)} is missing"
    docstring = ast.get_docstring(ast.parse(init.read_text()))
    assert docstring and docstring.split("\n")[0].strip(), f"{init.relative_to(ROOT)} opens with no one-line docstring"


def test_an_upward_import_is_caught(tmp_path):
    """The check itself: a construct importing the workflow layer, as event_claim once did, is found."""
    probe = ROOT / "stacks" / "constructs" / "event_claim.py"
    source = tmp_path / "event_claim.py"
    source.write_text("from stacks.workflows.workflow_stack import FunctionSpec\nfrom stacks.cdk import tokens\n")
    targets = [target for _, target in imported(source, module_name(probe))]
    assert targets == ["stacks.workflows.workflow_stack", "stacks.cdk.tokens"]
    assert RANK[layer(targets[0])] > RANK[layer(module_name(probe))] >= RANK[layer(targets[1])]
