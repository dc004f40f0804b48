"""One run per event: the claim function against S3's conditional writes (moto enforces If-None-Match: *)."""
from __future__ import annotations

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
