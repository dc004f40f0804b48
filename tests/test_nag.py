"""cdk-nag: no finding goes unacknowledged, and every acknowledgement is specific and narrowly placed."""
from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import CONFIGURATIONS


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_no_unacknowledged_findings(synthesized, configuration):
    report = synthesized[configuration].report
    assert {p["pluginName"] for p in report["pluginReports"]} == {
        "AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "Serverless"}
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]
        assert plugin["conclusion"] == "success"


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_acknowledgements_are_specific_and_on_the_violating_resource(synthesized, configuration):
    suppressed = [s for p in synthesized[configuration].report["pluginReports"] for s in p["suppressedViolations"]]
    assert suppressed
    for finding in suppressed:
        paths = {c["constructPath"] for c in finding["violatingConstructs"]}
        # Acknowledged on the one CloudFormation resource that violates, never on a stack or parent construct.
        assert paths == {finding["acknowledgedAt"]}, finding["acknowledgedId"]
        assert finding["acknowledgedId"].endswith(finding["ruleName"])
        assert len(finding["reason"]) >= 60, finding["acknowledgedId"]


@pytest.mark.parametrize("configuration", ["default", "kms"])
def test_acknowledged_findings_match_the_reviewed_list(synthesized, workflow_id, configuration, snapshot):
    """Every accepted finding, by resource and rule, per workflow: a new acceptance shows in review
    (tests/__snapshots__/test_nag/), next to its reason in the code."""
    acknowledged = sorted(
        f"{s['acknowledgedAt'].split('/', 1)[1]}  {s['ruleName']}"
        for p in synthesized[configuration].report["pluginReports"] for s in p["suppressedViolations"]
        if s["acknowledgedAt"].startswith(f"{workflow_id}/"))
    assert acknowledged == snapshot.use_extension(JSONSnapshotExtension)(name=workflow_id)
