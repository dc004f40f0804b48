"""Where a job's script is written for its asset: bundled with the contract modules it imports (contract/bundle.py).
A script that takes nothing from the contract ships as it is."""
from __future__ import annotations

from pathlib import Path

from contract.bundle import bundle
from stacks.constructs.built_files import built_file


def job_script(script: Path) -> Path:
    """The file a job downloads: the script itself when it takes nothing from the contract, else its bundle."""
    text = bundle(script)
    return script if text == script.read_text() else built_file("scripts", script.name, text.encode())
