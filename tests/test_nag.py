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


def test_acknowledged_findings_are_the_expected_ones(synthesized):
    acknowledged = sorted(
        (s["acknowledgedAt"], s["ruleName"])
        for p in synthesized["default"].report["pluginReports"] for s in p["suppressedViolations"])
    policy = "TrainAndTransform/{}/Role/DefaultPolicy/Resource".format
    sagemaker = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}]".format
    assert acknowledged == sorted([
        (policy("ValidateInput"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("SeedDataset"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("SeedDataset"), "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/input/*]"),
        (policy("SageMakerRole"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("SageMakerRole"), "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/input/*]"),
        (policy("SageMakerRole"), "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/model/*]"),
        (policy("SageMakerRole"), "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/predictions/*]"),
        (policy("SageMakerRole"), sagemaker("logs", "log-group:/aws/sagemaker/TrainingJobs:*")),
        (policy("SageMakerRole"), sagemaker("logs", "log-group:/aws/sagemaker/TransformJobs:*")),
        (policy("SageMakerRole"), sagemaker("logs", "log-group:/aws/sagemaker/TrainingJobs:log-stream:mlkit-tt-*")),
        (policy("SageMakerRole"), sagemaker("logs", "log-group:/aws/sagemaker/TransformJobs:log-stream:mlkit-tt-*")),
        (policy("Workflow"), "AwsSolutions-IAM5[Resource::*]"),
        (policy("Workflow"), sagemaker("sagemaker", "training-job/mlkit-tt-*")),
        (policy("Workflow"), sagemaker("sagemaker", "model/mlkit-tt-*")),
        (policy("Workflow"), sagemaker("sagemaker", "transform-job/mlkit-tt-*")),
    ])
