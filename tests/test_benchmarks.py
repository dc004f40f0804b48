"""`make bench`'s pieces run as it runs them: the kit and its hand-written peer, synthesized under the same context
and counted (the whole benchmark takes minutes and is printed, not asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # two synthesis processes
@pytest.mark.parametrize("kind", ["kit", "peer"])
def test_each_side_is_counted_from_construction_to_its_cloud_assembly(kind, tmp_path, templates):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "measure.py"), "count", kind, "TrainAndTransform",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout.splitlines()[-1])
    assert counted["total"] == sum(counted["by_request"].values()) > counted["construction"] > 0
    (template,) = tmp_path.glob("*TrainAndTransform.template.json")
    resources = json.loads(template.read_text())["Resources"]
    assert counted["resources"] == len(resources)
    if kind == "kit":
        assert counted["resources"] == len(templates["TrainAndTransform"]["Resources"])
    # Both get the context `cdk synth` gives an app: cdk.json's flags and the CLI's construct paths.
    assert all("aws:cdk:path" in resource.get("Metadata", {}) for resource in resources.values())
