"""The top-level request fields each optimized Step Functions integration accepts in a Task's Parameters.

Step Functions passes only a listed set of fields to an optimized integration (`arn:aws:states:::sagemaker:...`,
not `aws-sdk:`) and refuses a definition with any other one. Read 2026-12-07 from these sources:

- GUIDE: the Step Functions developer guide, https://docs.aws.amazon.com/step-functions/latest/dg/connect-<service>.html
  (connect-sagemaker, connect-lambda, connect-sns, connect-stepfunctions, connect-eventbridge). The current pages
  name each optimized API but no longer list its fields.
- ARCHIVED_GUIDE: the same guide's last public source, github.com/awsdocs/aws-step-functions-developer-guide
  at de67ba0a1c471f9a6e611e9bda182c71fa0f7eb0 (2021-10-15), doc_source/connect-*.md: a "Supported parameters"
  list per API. Its export kept each list's length but replaced the field names with the API page's URL, except
  connect-eventbridge's, whose link anchor still names its one field.
- CDK: the task classes of aws-cdk-lib 2.275.0 (installed with the kit; aws-stepfunctions-tasks/lib/**.js,
  what each class's render method emits). Where CDK's count equals the archived list's, the list is complete.
- BOTOCORE: the API's request shape in the installed botocore, used only where the archived list's length equals
  the whole request of that API, so the names are certain.
- The aws/aws-step-functions-data-science-sdk-python issues 42 (an AWS maintainer, 2021-09-11: the optimized
  createTrainingJob takes EnableManagedSpotTraining) and 86 (a user, 2020-09-16: CheckpointConfig set by hand in
  the console made the training job work).

A field missing here is refused at synthesis (stacks/asl/task_checks.py) and offline at CreateStateMachine
(offline/cloud/sfn_sagemaker.py); add one only with a source for it.
"""
from __future__ import annotations

import re

# Step Functions' words for a refused field: aws/aws-step-functions-data-science-sdk-python issue 15 (2019-12-27).
NOT_SUPPORTED = 'The field "{field}" is not supported by Step Functions'
# The integration pattern suffix of a Task resource; every pattern of an API takes the same request.
PATTERN = re.compile(r"\.(sync(:2)?|waitForTaskToken)$")

ACCEPTED_PARAMETERS: dict[str, tuple[str, ...]] = {
    # ARCHIVED_GUIDE connect-lambda lists 5; CDK LambdaInvoke renders these 5.
    "lambda:invoke": ("ClientContext", "FunctionName", "InvocationType", "Payload", "Qualifier"),
    # ARCHIVED_GUIDE connect-sns lists 7; CDK SnsPublish renders these 7. The guide's 7 predate FIFO topics, so
    # TargetArn and PhoneNumber may be among Step Functions' own: no source says, so they are not listed.
    "sns:publish": ("Message", "MessageAttributes", "MessageDeduplicationId", "MessageGroupId", "MessageStructure",
                    "Subject", "TopicArn"),
    # ARCHIVED_GUIDE connect-stepfunctions lists 3; CDK StepFunctionsStartExecution renders these 3.
    "states:startExecution": ("Input", "Name", "StateMachineArn"),
    # ARCHIVED_GUIDE connect-eventbridge names it (anchor eventbridge-PutEvents-request-Entries); CDK agrees.
    "events:putEvents": ("Entries",),
    # ARCHIVED_GUIDE connect-sagemaker lists 7 for CreateModel; CDK SageMakerCreateModel renders these 7.
    # InferenceExecutionConfig, in the API since, is not among them.
    "sagemaker:createModel": ("Containers", "EnableNetworkIsolation", "ExecutionRoleArn", "ModelName",
                              "PrimaryContainer", "Tags", "VpcConfig"),
    # ARCHIVED_GUIDE: 4 for CreateEndpointConfig, 3 for CreateEndpoint, 2 for UpdateEndpoint; CDK renders as many.
    "sagemaker:createEndpointConfig": ("EndpointConfigName", "KmsKeyId", "ProductionVariants", "Tags"),
    "sagemaker:createEndpoint": ("EndpointConfigName", "EndpointName", "Tags"),
    "sagemaker:updateEndpoint": ("EndpointConfigName", "EndpointName"),
    # ARCHIVED_GUIDE lists 11 for CreateProcessingJob and 10 for CreateLabelingJob, each the whole request of
    # that API in BOTOCORE; CDK has no class for either.
    "sagemaker:createProcessingJob": ("AppSpecification", "Environment", "ExperimentConfig", "NetworkConfig",
                                      "ProcessingInputs", "ProcessingJobName", "ProcessingOutputConfig",
                                      "ProcessingResources", "RoleArn", "StoppingCondition", "Tags"),
    "sagemaker:createLabelingJob": ("HumanTaskConfig", "InputConfig", "LabelAttributeName", "LabelCategoryConfigS3Uri",
                                    "LabelingJobAlgorithmsConfig", "LabelingJobName", "OutputConfig", "RoleArn",
                                    "StoppingConditions", "Tags"),
    # Incomplete sources: ARCHIVED_GUIDE lists 10 for CreateTrainingJob (names lost, and older than spot
    # training); CDK SageMakerCreateTrainingJob renders the first 12 here; EnableManagedSpotTraining is stated
    # in issue 42 and CheckpointConfig reported in issue 86. EnableInterContainerTrafficEncryption is stated by
    # no source found: it stays because the role's guards require it (stacks/asl/integrations.py), unverified.
    "sagemaker:createTrainingJob": ("AlgorithmSpecification", "EnableNetworkIsolation", "Environment",
                                    "HyperParameters", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                                    "RoleArn", "StoppingCondition", "Tags", "TrainingJobName", "VpcConfig",
                                    "EnableManagedSpotTraining", "CheckpointConfig",
                                    "EnableInterContainerTrafficEncryption"),
    # ARCHIVED_GUIDE lists 10 for CreateTransformJob; CDK SageMakerCreateTransformJob renders these 11, one more
    # than that list (which one the guide lacked is lost).
    "sagemaker:createTransformJob": ("BatchStrategy", "Environment", "MaxConcurrentTransforms", "MaxPayloadInMB",
                                     "ModelClientConfig", "ModelName", "Tags", "TransformInput", "TransformJobName",
                                     "TransformOutput", "TransformResources"),
    # ARCHIVED_GUIDE lists 5 for CreateHyperParameterTuningJob, names lost; CDK has no class. Listed: BOTOCORE's
    # whole request (7), so this catches a field the API lacks, not one of the 2 or more Step Functions leaves out.
    "sagemaker:createHyperParameterTuningJob": ("Autotune", "HyperParameterTuningJobConfig",
                                                "HyperParameterTuningJobName", "Tags", "TrainingJobDefinition",
                                                "TrainingJobDefinitions", "WarmStartConfig"),
}


def api_of(integration: str) -> str:
    """The key in ACCEPTED_PARAMETERS of an optimized integration, e.g. sagemaker:createTrainingJob.sync."""
    return PATTERN.sub("", integration)
