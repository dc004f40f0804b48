"""cdk-nag: no finding goes unacknowledged, and every acknowledgement is specific and narrowly placed."""
from __future__ import annotations

import pytest

from tests.conftest import CONFIGURATIONS


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_no_unacknowledged_findings(synthesized, configuration):
    report = synthesized[configuration].report
    assert report["pluginReports"], "cdk-nag did not run"
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


@pytest.mark.parametrize(("stack", "prefix", "reads", "jobs"), [
    ("TrainAndTransform", "mlkit-tt", ["input", "model", "predictions"], ["Training", "Transform"]),
    ("PreprocessAndTrain", "mlkit-pt", ["input", "model", "predictions", "processed"],
     ["Processing", "Training", "Transform"]),
])
def test_acknowledged_findings_are_the_expected_ones(synthesized, stack, prefix, reads, jobs):
    acknowledged = sorted(
        (s["acknowledgedAt"], s["ruleName"])
        for p in synthesized["default"].report["pluginReports"] for s in p["suppressedViolations"]
        if s["acknowledgedAt"].startswith(f"{stack}/"))
    policy = f"{stack}/{{}}/Role/DefaultPolicy/Resource".format
    in_account = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}]".format
    bucket = "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/{}/*]".format
    assert acknowledged == sorted([
        (policy("ValidateInput"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("SeedDataset"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("SeedDataset"), bucket("input")),
        (policy("SageMakerRole"), "AwsSolutions-IAM5[Resource::*]"),
        *[(policy("SageMakerRole"), bucket(folder)) for folder in reads],
        *[(policy("SageMakerRole"), in_account("logs", f"log-group:/aws/sagemaker/{job}Jobs:*")) for job in jobs],
        *[(policy("SageMakerRole"), in_account("logs", f"log-group:/aws/sagemaker/{job}Jobs:log-stream:{prefix}-*"))
          for job in jobs],
        (policy("Workflow"), "AwsSolutions-IAM5[Resource::*]"),
        *[(policy("Workflow"), in_account("sagemaker", f"{job.lower()}-job/{prefix}-*")) for job in jobs],
        (policy("Workflow"), in_account("sagemaker", f"model/{prefix}-*")),
    ])
