"""One run per event: the claim function against S3's conditional writes (moto enforces If-None-Match: *)."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import BUCKET, load_lambda_module

claim = load_lambda_module("claim_event", "handler")


def test_the_first_claim_of_an_event_wins_and_every_later_one_finds_it_taken(s3):
    event = {"event_claim": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3@1764979200000"}
    first = claim.handler(event, None, s3)
    assert first["claimed"] and first["key"].startswith("claims/")
    assert claim.handler(event, None, s3) == {"claimed": False, "key": first["key"]}
    assert s3.get_object(Bucket=BUCKET, Key=first["key"])["Body"].read().decode() == event["event_claim"]
    # Another change of the same version is another event.
    assert claim.handler({"event_claim": event["event_claim"].replace("@1764979200000", "@1764979260000")},
                         None, s3)["claimed"]


def test_the_emulated_s3_refuses_a_second_conditional_create(s3):
    """What the claim relies on, as the offline runs see it: 412 PreconditionFailed once the key exists."""
    s3.put_object(Bucket=BUCKET, Key="claims/x", Body=b"", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=BUCKET, Key="claims/x", Body=b"", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"


def test_a_concurrent_write_is_retried_and_then_finds_the_claim_taken(s3):
    class Racing:
        """S3 answering 409 ConditionalRequestConflict once (another run writing the same key), then 412."""
        def __init__(self) -> None:
            self.answers = ["ConditionalRequestConflict", "PreconditionFailed"]

        def put_object(self, **request):
            raise ClientError({"Error": {"Code": self.answers.pop(0), "Message": "-"}}, "PutObject")

    racing = Racing()
    assert claim.handler({"event_claim": "e"}, None, racing)["claimed"] is False and not racing.answers


@pytest.mark.parametrize("given", [None, "", "  ", 3])
def test_a_run_without_an_event_identity_is_refused(s3, given):
    with pytest.raises(claim.InvalidExecutionInput, match="event_claim must be"):
        claim.handler({"event_claim": given}, None, s3)


# -- approvals: one deployment per approval, whatever the event carries ------------------------------------
VERSION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models/41"
CHANGE = "SageMaker Model Package State Change"


def _status(status: str, **extra) -> dict:
    return {"ModelPackageGroupName": "mlkit-br-models", "ModelPackageArn": VERSION, "ModelApprovalStatus": status,
            **extra}


def _claims(cloud, runs: list[str]) -> list[str]:
    """How each run's claim went: 'claimed' (it went on to check its input) or 'duplicate'."""
    entered = [{e["stateEnteredEventDetails"]["name"] for e in cloud.history(run) if "stateEnteredEventDetails" in e}
               for run in runs]
    return ["duplicate" if "DuplicateEvent" in states else "claimed" if "ValidateInput" in states else "?"
            for states in entered]


def _deploy_runs(cloud, *details: dict) -> list[str]:
    runs = [cloud.events.put("aws.sagemaker", CHANGE, detail, [VERSION])[0]["result"] for detail in details]
    cloud.wait(runs)  # each ends soon: the version does not exist, so its check refuses it
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("times", [("2026-12-07T10:00:00Z", "2026-12-07T10:05:00Z"), (None, None)],
                         ids=["with-LastModifiedTime", "without-LastModifiedTime"])
def test_an_approval_is_claimed_by_its_version_whether_or_not_the_event_carries_its_time(synthesized, times):
    """No AWS page shows LastModifiedTime in the event: with it (changing between two events of one approved
    version) or without it, the version is deployed once."""
    from offline.cloud.account import LocalCloud

    with LocalCloud(synthesized["default"].outdir) as cloud:
        details = [_status("Approved", **({"LastModifiedTime": time} if time else {})) for time in times]
        runs = _deploy_runs(cloud, *details)
        inputs = [json.loads(cloud.sfn.describe_execution(executionArn=run)["input"]) for run in runs]
        assert [i["event_claim"] for i in inputs] == [VERSION, VERSION]
        assert sorted(_claims(cloud, runs)) == ["claimed", "duplicate"]


@pytest.mark.slow
def test_a_version_approved_again_after_a_rejection_deploys_again(synthesized):
    from offline.cloud.account import LocalCloud

    with LocalCloud(synthesized["default"].outdir) as cloud:
        bucket = cloud.workflows["DeployApproved"].data_bucket
        claimed = claim.claim_key(VERSION)  # as a deployment that succeeded leaves it
        cloud.s3.put_object(Bucket=bucket, Key=claimed, Body=VERSION.encode())
        assert _claims(cloud, _deploy_runs(cloud, _status("Approved"))) == ["duplicate"]  # approved still: nothing
        (released,) = cloud.events.put("aws.sagemaker", CHANGE, _status("Rejected"), [VERSION])
        assert released["result"] == {"released": claimed, "version": VERSION}
        assert "Contents" not in cloud.s3.list_objects_v2(Bucket=bucket, Prefix="claims/")
        again = _deploy_runs(cloud, _status("Approved"), _status("Approved"))  # approved again, sent twice
        assert sorted(_claims(cloud, again)) == ["claimed", "duplicate"]


def test_the_release_function_refuses_an_event_that_is_no_withdrawal(s3):
    release = load_lambda_module("release_claim", "handler")
    with pytest.raises(ValueError, match="expected a Model Package State Change event of a withdrawn approval"):
        release.handler({"detail": _status("Approved")}, None, s3)


# -- one build at a time: the function that tells a run whether an earlier build still runs ----------------
class Executions:
    """ListExecutions' pages of RUNNING executions, as boto3's paginator yields them."""

    def __init__(self, *runs: tuple[str, int]) -> None:
        self.runs = [{"executionArn": arn, "startDate": start} for arn, start in runs]

    def get_paginator(self, name):
        assert name == "list_executions"
        return self

    def paginate(self, stateMachineArn, statusFilter):
        assert statusFilter == "RUNNING"
        yield {"executions": self.runs[:1]}
        yield {"executions": self.runs[1:]}  # every page is read


@pytest.mark.parametrize("runs, me, first", [
    ((("arn:b", 2), ("arn:a", 1)), "arn:a", True),  # the oldest goes on
    ((("arn:b", 2), ("arn:a", 1)), "arn:b", False),  # a later one yields
    ((("arn:b", 1), ("arn:a", 1)), "arn:a", True),  # the same instant: the smaller ARN, for both alike
    ((("arn:b", 1), ("arn:a", 1)), "arn:b", False),
    ((), "arn:a", True),  # not listed yet, nothing else running
    ((("arn:a", 1),), "arn:c", False),  # not listed yet, another running
])
def test_the_oldest_running_build_goes_on_and_every_later_one_yields(runs, me, first):
    active = load_lambda_module("active_builds", "handler")
    assert active.handler({"state_machine": "m", "execution": me}, None, Executions(*runs))["first"] is first


def test_a_run_that_did_not_succeed_releases_its_claim(s3):
    """lambda/stop_run_jobs, on the run's end: the claim in its input is deleted; a run without one keeps nothing."""
    cleanup = load_lambda_module("stop_run_jobs", "handler")
    identity = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlkit-br-models/7"
    taken = claim.handler({"event_claim": identity}, None, s3)["key"]
    started = [{"type": "ExecutionStarted", "executionStartedEventDetails": {
        "input": json.dumps({"model_package_arn": identity, "event_claim": identity})}}]
    assert cleanup.released_claim(started, BUCKET, s3) == taken
    assert claim.handler({"event_claim": identity}, None, s3)["claimed"]  # the same cause may go ahead again
    by_hand = [{"type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}}]
    assert cleanup.released_claim(by_hand, BUCKET, s3) is None
