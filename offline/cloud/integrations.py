"""What runs each service integration offline: the one place where an integration's local behaviour is registered.

moto's Step Functions interpreter calls services through boto3; each entry says which local service answers
(offline/cloud/account.py points the clients at them). A workflow whose Task or ItemReader uses an integration not
listed here, or whose Map uses a feature the local interpreter does not run, is refused before it starts, with one
line saying what to do, instead of failing somewhere inside a run or running differently.
"""
from __future__ import annotations

import json
import re
from typing import Iterator

from offline.runtimes import spark_jobs
from offline.runtimes.serving import repository
from stacks.asl.definition import all_states, integration_of, item_readers, task_states
from stacks.settings.image_table import BY_FRAMEWORK, IMAGE_TABLE

LAMBDA = "the function's real handler, staged in the assembly (offline/services/lambda_service.py)"
SAGEMAKER_JOB = "a job that really runs (offline/runtimes/sagemaker_jobs.py), through the local SageMaker API"
SAGEMAKER_CALL = "the local SageMaker API (offline/services/sagemaker_service.py)"
SPARK_REPOSITORY = BY_FRAMEWORK["spark"].repository
S3 = "moto's S3, as the state machine's role (offline/cloud/sfn_distributed_map.py lists an ItemReader's objects as Step Functions does)"

LOCAL_INTEGRATIONS: dict[str, str] = {
    "lambda:invoke": LAMBDA,
    **{f"sagemaker:create{noun}{pattern}": SAGEMAKER_JOB
       for noun in ("TrainingJob", "ProcessingJob", "TransformJob", "HyperParameterTuningJob")
       for pattern in ("", ".sync")},
    "sagemaker:createModel": SAGEMAKER_CALL,
    **{f"aws-sdk:sagemaker:{action}": SAGEMAKER_CALL
       for action in ("createModelPackage", "describeModelPackage", "listModelPackages", "updateModelPackage")},
    # Hosting: endpoints that serve their model over HTTP (offline/services/sagemaker_hosting.py).
    "sagemaker:createEndpoint": SAGEMAKER_CALL,
    **{f"aws-sdk:sagemaker:{action}": SAGEMAKER_CALL
       for action in ("createEndpointConfig", "describeEndpointConfig", "describeEndpoint", "updateEndpoint",
                      "deleteEndpoint")},
    "sns:publish": "moto's SNS: the stack's topics exist locally; offline/cloud/account.py LocalCloud.notifications()",
    # S3 through moto's S3, every call authorized against the state machine's role (offline/iam/iam.py): the calls
    # offline/iam/iam_requests.py can authorize, as a Task (AWS SDK integration) or a Distributed Map's ItemReader.
    **{f"aws-sdk:s3:{action}": S3 for action in ("listObjectsV2", "headObject", "copyObject", "deleteObject")},
    **{f"s3:{action}": S3 for action in ("listObjectsV2", "getObject")},
}
# What a Distributed Map may use offline (moto's interpreter, with offline/cloud/sfn_distributed_map.py): CSV, JSON
# and JSON Lines items, and item batches with static limits. MANIFEST and PARQUET items and result files are not
# implemented, so a map using them is refused rather than run differently.
READER_INPUT_TYPES = ("CSV", "JSON", "JSONL")
MAP_FIELDS_WITHOUT_RUNNER = ("ResultWriter",)


class UnsupportedIntegration(RuntimeError):
    """A state machine uses an integration or a Map feature that has no local behaviour."""


ADD_RUNNER = ("it has no offline runner; add one in offline/cloud/integrations.py LOCAL_INTEGRATIONS (and serve it in "
              "the local service it names)")
MAP_FEATURE = ("offline/cloud/sfn_distributed_map.py does not run it as AWS does; use a form it runs "
               "(docs/extending.md, Integrations beyond SageMaker)")
INLINE = ("a Distributed Map's field, which an INLINE Map does not take; set ItemProcessor.ProcessorConfig.Mode to "
          "DISTRIBUTED")
DISTRIBUTED_ONLY = ("ItemReader", "ItemBatcher", "ToleratedFailureCount", "ToleratedFailurePercentage", "ResultWriter")


def unsupported(definition: str) -> Iterator[tuple[str, str, str]]:
    """(state, what, what to do) for each Task or ItemReader whose integration has no local behaviour, and each Map
    field or reader input type the local interpreter does not run."""
    parsed = json.loads(definition)
    calls = [*task_states(parsed), *((f"{name} ItemReader", reader) for name, reader in item_readers(parsed))]
    for name, state in calls:
        key = integration_of(name, state, source="definition")
        if key not in LOCAL_INTEGRATIONS:
            yield name, key, ADD_RUNNER
        parameters = state.get("Parameters", {})
        image = parameters.get("AppSpecification", {}).get("ImageUri", "")
        if key.startswith("sagemaker:createProcessingJob") and repository(image) == SPARK_REPOSITORY:
            reason = spark_jobs.unsupported(parameters)  # static fields; a job's own request is checked again
            if reason:
                yield name, "a Spark job offline cannot run as SageMaker would", reason
    for name, state in all_states(parsed):
        if state.get("Type") != "Map":
            continue
        mode = state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
        for field_name in DISTRIBUTED_ONLY if mode != "DISTRIBUTED" else ():
            if field_name in state:
                yield name, field_name, INLINE
        for field_name in MAP_FIELDS_WITHOUT_RUNNER:
            if field_name in state:
                yield name, f"a Map's {field_name}", MAP_FEATURE
        input_type = state.get("ItemReader", {}).get("ReaderConfig", {}).get("InputType")
        if input_type and input_type not in READER_INPUT_TYPES:
            yield name, f"an ItemReader of InputType {input_type}", MAP_FEATURE
        if "ItemBatcher" in state:
            yield from ((name, what, MAP_FEATURE) for what in _batcher_without_runner(state))


def _batcher_without_runner(state: dict) -> Iterator[str]:
    """What of an ItemBatcher offline does not run: limits read from the input and a BatchInput with intrinsic
    functions."""
    batcher = state["ItemBatcher"]
    for field_name in ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"):
        if field_name in batcher:
            yield f"an ItemBatcher's {field_name}"
    paths = batcher.get("BatchInput", {}).items()
    if any(key.endswith(".$") and not str(value).startswith("$") for key, value in paths):
        yield "an ItemBatcher's BatchInput with intrinsic functions"


def check_supported(stack: str, definition: str) -> None:
    missing = list(unsupported(definition))
    if missing:
        name, what, fix = missing[0]
        raise UnsupportedIntegration(f"{stack}: state {name!r} uses {what}: {fix}")


# What each image the kit's definitions name runs as offline: the image table's (stacks/settings/image_table.py), served
# by offline/runtimes/serving.py. An image missing here is refused before a run starts, never replaced by another.
IMAGE_RUNNERS = {row.repository: row.offline for row in IMAGE_TABLE}
IMAGE = re.compile(r"\b\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/[^\"\s]+")


def check_images(stack: str, definition: str) -> None:
    """Every image URI in the definition must have a local runner."""
    for image in sorted(set(IMAGE.findall(definition))):
        if repository(image) not in IMAGE_RUNNERS:
            raise UnsupportedIntegration(f"{stack}: image {image} has no offline runner; register one in "
                                         "stacks/settings/image_table.py IMAGE_TABLE (and offline/runtimes/serving.py SERVERS "
                                         "to serve it)")
