#!/usr/bin/env python3
"""CDK entry point: synthesizes every workflow stack; a configuration mistake is reported in one line."""
import os
import sys
from pathlib import Path

try:
    import aws_cdk  # noqa: F401
except ImportError:
    # `npx cdk ...` in a new shell runs cdk.json's `python3 app.py` with the system Python; the kit's own
    # environment (.venv, from make) has the dependencies. A pipeline that installed requirements.txt
    # into its own Python never gets here.
    kit_python = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
    if kit_python.exists() and Path(sys.executable).resolve() != kit_python.resolve():
        os.execv(str(kit_python), [str(kit_python), *sys.argv])
    sys.exit(f"error: aws-cdk-lib is not installed for {sys.executable}; run `make synth` once (it installs "
             "into .venv) or `pip install -r requirements.txt`")

from stacks.settings.config import ConfigError  # noqa: E402
from stacks.asl.definition import WorkflowDefinitionError  # noqa: E402
from stacks.app.kit import build_app  # noqa: E402

try:
    build_app().synth()
except (ConfigError, WorkflowDefinitionError) as error:
    sys.exit(f"error: {error}")
