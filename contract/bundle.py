"""A job's script as one file, with the contract modules it imports bundled in: what a processing job runs.

A processing job gets its code as one S3 object named by its hash, so a script cannot import a module beside
it. Each top-level `from contract.<module> import ...` line of the script is replaced by that module's source
(contract/ is standard library only) between two comment lines naming it; the rest of the script is byte for
byte its own. Synthesis ships the bundle (stacks/constructs/job_script.py); a script that ships itself on (the
preprocessing, as the served model's code) bundles itself the same way when run from the repository.
"""
import ast
from pathlib import Path

CONTRACT = Path(__file__).resolve().parent
FUTURE = "from __future__ import annotations\n"


class BundleError(ValueError):
    """A script imports the contract in a way the bundle cannot ship."""


def _contract_imports(script: Path, tree: ast.Module) -> list[ast.ImportFrom]:
    """The script's top-level `from contract.<module> import ...`; any other import of the contract is refused."""
    found = []
    for node in ast.walk(tree):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        if not any(n == "contract" or n.startswith("contract.") for n in names):
            continue
        if not (isinstance(node, ast.ImportFrom) and node in tree.body and node.module.count(".") == 1
                and (CONTRACT / f"{node.module.split('.')[1]}.py").is_file()):
            raise BundleError(f"{script.name} line {node.lineno}: import the contract at the top level as "
                              "`from contract.<module> import <names>` so its job can get it bundled")
        found.append(node)
    return found


def _module_source(script: Path, module: str, futures: bool) -> str:
    path = CONTRACT / f"{module}.py"
    text = path.read_text()
    if _contract_imports(path, ast.parse(text)):
        raise BundleError(f"contract/{module}.py imports the contract itself; a bundled module must stand alone")
    if FUTURE in text:
        if not futures:
            raise BundleError(f"contract/{module}.py uses `{FUTURE.strip()}`, which {script.name} does not: "
                              "the bundled module would read its annotations differently")
        text = text.replace(FUTURE, "", 1)
    return text


def bundle(script: Path) -> str:
    """The script's text with each contract import replaced by the module it names."""
    text = script.read_text()
    tree = ast.parse(text, str(script))
    lines = text.splitlines(keepends=True)
    futures = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                  any(a.name == "annotations" for a in n.names) for n in tree.body)
    imports = _contract_imports(script, tree)
    modules = [node.module for node in imports]
    if len(set(modules)) < len(modules):
        raise BundleError(f"{script.name} imports a contract module in two lines; import it once")
    for node in reversed(imports):
        module = node.module.split(".")[1]
        body = _module_source(script, module, futures)
        lines[node.lineno - 1:node.end_lineno] = [
            f"# -- contract/{module}.py, bundled here for `{ast.unparse(node)}` --\n",
            body if body.endswith("\n") else body + "\n",
            f"# -- end of contract/{module}.py --\n"]
    return "".join(lines)
