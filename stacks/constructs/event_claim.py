"""One run per event: the states a workflow started by events puts first, and how a rule names its event.

EventBridge delivers an event at least once, and SageMaker may send several events for one change of a model
version ("SageMaker AI may send multiple events to EventBridge for each state change", SageMaker developer
guide, events sent to EventBridge), so one cause may start two runs. A rule passes what identifies its cause as
`event_claim`; the run's first Task claims it (lambda/claim_event: a conditional S3 write), and a run that finds
it claimed ends at once, successfully, in the state `DuplicateEvent`. Runs started by hand carry no claim.
"""
from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from contract.claims import CLAIMS
from stacks.cdk.permissions import allow
from stacks.cdk.tokens import objects_arn
from stacks.constructs.functions import FunctionSpec


def allow_releasing_claims(role: iam.Role, bucket: s3.IBucket, which: str) -> None:
    """Let a function delete claims (claims/* only) so the same cause can start a run again; `which` says the one."""
    allow(role, ["s3:DeleteObject"], [objects_arn(bucket, f"{CLAIMS}*")],
          wildcard_reason=f"Claims are named by the hash of what they claim; the function deletes only {which}.")


CLAIM_FUNCTION = {"ClaimEvent": FunctionSpec(
    "claim_event", "Lets one run go ahead per event: claims the event's identity in the bucket, once",
    bucket_creates=(CLAIMS,), environment={"DATA_BUCKET": "${DataBucket}"})}

# ASL fragments: "StartAt": "FromEvent", and the states below by these placeholders; ValidateInput's rules get
# "event_claim": "${EventClaimRule}". ValidateInput comes next either way.
CLAIM_FRAGMENTS = {
    "FromEventState": {
        "Type": "Choice", "Comment": "A run a rule started for an event claims it first.",
        "Choices": [{"Variable": "$.event_claim", "IsPresent": True, "Next": "ClaimEvent"}],
        "Default": "ValidateInput"},
    "ClaimEventState": {
        "Type": "Task", "Comment": "The first run to claim its event goes ahead; others end as duplicates.",
        "Resource": "arn:${Partition}:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${ClaimEventFunctionArn}", "Payload": {"event_claim.$": "$.event_claim"}},
        "ResultSelector": {"claimed.$": "$.Payload.claimed"}, "ResultPath": "$.claim",
        "Retry": "${LambdaRetry}", "Catch": "${CatchInvalidInput}", "Next": "FirstForEvent"},
    "FirstForEventState": {
        "Type": "Choice",
        "Choices": [{"Variable": "$.claim.claimed", "BooleanEquals": True, "Next": "ValidateInput"}],
        "Default": "DuplicateEvent"},
    "DuplicateEventState": {
        "Type": "Succeed", "Comment": "Another run took this event (delivered more than once): nothing to do."},
    "EventClaimRule": ["text", r"^\S.{0,1023}$", "what identifies the event a rule started this run for"],
}


def claim_of(*fields: str) -> str:
    """A rule's `event_claim`: the event fields (events.EventField) that identify its cause, joined."""
    return "@".join(fields)
