"""What services refuse that their botocore models do not encode, only their API references state: one rule per
(service, operation), each returning None or (code or None for the service's usual one, message)."""
from __future__ import annotations

from typing import Callable, Optional

Refusal = Optional[tuple[Optional[str], str]]


def sagemaker_spot(definition_of: Callable[[dict], dict]) -> Callable[[dict], Refusal]:
    """Managed spot training needs a MaxWaitTimeInSeconds of at least MaxRuntimeInSeconds (SageMaker API
    reference, StoppingCondition; botocore's sagemaker model documents it there), for a training job and a
    tuning job's training jobs alike."""
    def rule(request: dict) -> Refusal:
        definition = definition_of(request)
        if not definition.get("EnableManagedSpotTraining"):
            return None
        stopping = definition.get("StoppingCondition", {})
        wait, run = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
        if wait is None or wait < run:
            return None, (f"Invalid MaxWaitTimeInSeconds: for managed spot training it must be set and at least "
                          f"MaxRuntimeInSeconds ({run}), got {wait}")
        return None
    return rule


def sns_publish(request: dict) -> Refusal:
    """SNS API reference, Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less
    than 100 characters long"; a message is "at most 256 KB in size (262,144 bytes, not 262,144 characters)".
    botocore's sns model gives neither shape (`subject`, `message`) a limit. "Less than 100" is read as written."""
    subject, message = request.get("Subject"), request.get("Message")
    if isinstance(subject, str) and (len(subject) >= 100 or any(ord(c) < 32 or ord(c) == 127 for c in subject)):
        return None, "Invalid parameter: Subject Reason: must be less than 100 characters long, with no line " \
                     "breaks or control characters"
    if isinstance(message, str) and len(message.encode("utf-8")) > 262144:
        return None, "Invalid parameter: Message too long"
    return None


DOCUMENTED_RULES: dict[tuple[str, str], tuple[Callable[[dict], Refusal], ...]] = {
    ("sagemaker", "CreateTrainingJob"): (sagemaker_spot(lambda request: request),),
    ("sagemaker", "CreateHyperParameterTuningJob"): (
        sagemaker_spot(lambda request: request.get("TrainingJobDefinition", {})),),
    ("sns", "Publish"): (sns_publish,),
}
