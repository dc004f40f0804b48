#!/usr/bin/env python3
"""CDK entry point: synthesizes every workflow stack; a configuration mistake is reported in one line."""
import sys

from stacks.config import ConfigError
from stacks.definition import WorkflowDefinitionError
from stacks.kit import build_app

try:
    build_app().synth()
except (ConfigError, WorkflowDefinitionError) as error:
    sys.exit(f"error: {error}")
