"""Snapshots of every synthesized template, so any CloudFormation change shows in review."""
from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import CONFIGURATIONS, WORKFLOW_IDS

# Asset hashes change with every edit of function code; the functions have their own tests.
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def masked(template: dict) -> dict:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_templates_match_snapshots(synthesized, configuration, snapshot_json):
    templates = synthesized[configuration].templates
    assert sorted(templates) == WORKFLOW_IDS
    for stack, template in sorted(templates.items()):
        assert masked(template) == snapshot_json(name=stack)


def test_synthesis_is_byte_identical_across_runs(synthesized, tmp_path):
    from tests.conftest import synthesize

    again = synthesize(tmp_path, CONFIGURATIONS["default"])
    for stack, template in synthesized["default"].templates.items():
        assert json.dumps(again.templates[stack], sort_keys=False) == json.dumps(template, sort_keys=False)
