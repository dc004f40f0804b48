"""cdk-nag: no finding goes unacknowledged, and every acknowledgement is specific and narrowly placed."""
from __future__ import annotations

import pytest

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


WORKFLOWS = {
    "TrainAndTransform": ("mlkit-tt", ["input", "model", "predictions"], ["Training", "Transform"]),
    "PreprocessAndTrain": ("mlkit-pt", ["input", "model", "predictions", "processed"],
                           ["Processing", "Training", "Transform"]),
}


def expected_acknowledgements(stack: str, kms: bool) -> list[tuple[str, str]]:
    """(resource path, rule) of every finding the kit accepts, per pack; anything else must not appear."""
    prefix, folders, jobs = WORKFLOWS[stack]
    path = f"{stack}/{{}}".format
    policy = f"{stack}/{{}}/Role/DefaultPolicy/Resource".format
    in_account = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}]".format
    bucket = "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*/{}/*]".format
    cleanup = "JobCleanup/StopRunJobs"
    functions = ("ValidateInput", "SeedDataset", cleanup)
    roles = ("ValidateInput", "SeedDataset", "SageMakerRole", "Workflow", cleanup)
    found = [
        *[(policy(role), "AwsSolutions-IAM5[Resource::*]") for role in roles],
        (policy("SeedDataset"), bucket("input")),
        *[(policy("SageMakerRole"), bucket(folder)) for folder in folders],
        *[(policy("SageMakerRole"), in_account("logs", f"log-group:/aws/sagemaker/{job}Jobs:*")) for job in jobs],
        *[(policy("SageMakerRole"), in_account("logs", f"log-group:/aws/sagemaker/{job}Jobs:log-stream:{prefix}-*"))
          for job in jobs],
        *[(policy("Workflow"), in_account("sagemaker", f"{job.lower()}-job/{prefix}-*")) for job in jobs],
        (policy("Workflow"), in_account("sagemaker", f"model/{prefix}-*")),
        *[(policy(cleanup), in_account("sagemaker", f"{job.lower()}-job/{prefix}-*")) for job in jobs],
        (policy(cleanup), in_account("states", f"execution:{prefix}:*")),
        (path("Operators/Policy/Resource"), in_account("states", f"execution:{prefix}:*")),
        (path("Operators/Policy/Resource"), "AwsSolutions-IAM5[Resource::<DataBucketE6B0FAA8.Arn>/runs/*]"),
        *[(path("JobCleanup/Undelivered/Resource"), rule) for rule in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy")],
        *[(path(f"{fn}/Function/Resource"), "Serverless-LambdaDLQ") for fn in functions],
    ]
    for pack in ("NIST.800.53.R5", "HIPAA.Security"):
        found += [(path(f"{fn}/Function/Resource"), f"{pack}-{rule}") for fn in functions
                  for rule in ("LambdaDLQ", "LambdaInsideVPC", "LambdaConcurrency")]
        found += [(policy(role), f"{pack}-IAMNoInlinePolicy") for role in roles]
        found += [(path(f"Data/{b}/Resource"), f"{pack}-S3BucketReplicationEnabled") for b in ("AccessLogs", "Bucket")]
        found += [(path("Data/AccessLogs/Resource"), f"{pack}-S3DefaultEncryptionKMS")]
        if not kms:  # what the customer-managed key fixes
            found += [(path("Data/Bucket/Resource"), f"{pack}-S3DefaultEncryptionKMS")]
            found += [(path(f"{name}/Logs/Resource"), f"{pack}-CloudWatchLogGroupEncrypted")
                      for name in ("ValidateInput", "SeedDataset", "Workflow", cleanup)]
    return sorted(found)


@pytest.mark.parametrize("configuration", ["default", "kms"])
@pytest.mark.parametrize("stack", WORKFLOWS)
def test_acknowledged_findings_are_the_expected_ones(synthesized, stack, configuration):
    acknowledged = sorted(
        (s["acknowledgedAt"], s["ruleName"])
        for p in synthesized[configuration].report["pluginReports"] for s in p["suppressedViolations"]
        if s["acknowledgedAt"].startswith(f"{stack}/"))
    assert acknowledged == expected_acknowledgements(stack, kms=configuration == "kms")


def test_every_pack_runs():
    from stacks.kit import NAG_PACKS

    assert [pack.__name__ for pack in NAG_PACKS] == [
        "AwsSolutionsChecks", "NIST80053R5Checks", "HIPAASecurityChecks", "ServerlessChecks"]
