"""The AWS behaviours the kit relies on that no service model gives, each with its source: the one table the
workflows are written against, the emulator answers from (offline/services/behaviours.py) and `make preflight` lists.

A row is "stated" when an AWS page or a container's or SDK's source at a named commit says it, "reported" when
only public reports do, and "unverified" when nothing does. Every row that is not stated names the other
behaviours AWS might have (`alternatives`); the emulator can answer with each of them, and the suite runs the
workflows that rely on the row under every alternative: each run must end in a named outcome with a
notification, never in States.Runtime and never in a hang (tests/test_aws_behaviours.py).
"""
from __future__ import annotations

from dataclasses import dataclass

READ = "2026-12-07"  # when the pages below were read


@dataclass(frozen=True)
class Behaviour:
    what: str
    status: str  # stated, reported or unverified
    source: str
    relied_on_by: tuple[str, ...]  # the workflows (stack ids) whose definitions depend on it
    offline: str = "as stated"  # what the emulator answers by default
    alternatives: tuple[str, ...] = ()  # what else AWS might do, each runnable offline

    def __post_init__(self) -> None:
        assert self.status in ("stated", "reported", "unverified"), self.status
        assert self.status == "stated" or self.alternatives, f"{self.what}: a belief needs its alternatives"


SFN = "https://docs.aws.amazon.com/step-functions/latest/dg"
SAGEMAKER = "https://docs.aws.amazon.com/sagemaker/latest"

BEHAVIOURS: dict[str, Behaviour] = {
    "processing-sync-exit-message": Behaviour(
        "The output of a createProcessingJob.sync task is the job's DescribeProcessingJob answer, ExitMessage "
        "(the container's /opt/ml/output/message, first 1 KB) included",
        "unverified",
        f"{SAGEMAKER}/APIReference/API_DescribeProcessingJob.html states ExitMessage in the answer; no Step "
        "Functions page shows a .sync task's output",
        ("BuildAndRegister",), offline="present", alternatives=("absent",)),
    "sync-failure-cause-json": Behaviour(
        "A failed or stopped .sync SageMaker job fails its task with States.TaskFailed and the job's Describe "
        "answer as JSON in Cause",
        "unverified",
        f"{SFN}/connect-sagemaker.html shows no failure output; {SFN}/concepts-error-handling.html says only "
        "that a Cause may need States.StringToJson",
        ("BuildAndRegister",), offline="json", alternatives=("text",)),
    "describe-missing-endpoint-error": Behaviour(
        "DescribeEndpoint on a missing endpoint fails an aws-sdk:sagemaker task with SageMaker.SageMakerException "
        "(the API answers ValidationException 'Could not find endpoint', a class botocore's model does not name)",
        "unverified",
        f"{SFN}/supported-services-awssdk.html (errors are <Service>.<Exception>, listed by the API reference; "
        "SageMaker's lists none for DescribeEndpoint)",
        ("DeployApproved",), offline="SageMaker.SageMakerException",
        alternatives=("SageMaker.ValidationException", "SageMaker.AmazonSageMakerException")),
    "empty-input-training-transform-tuning": Behaviour(
        "A training, transform or tuning job whose S3 input holds no object is refused at create time "
        "(ValidationException 'No S3 objects found under S3 URL'), as SageMaker.AmazonSageMakerException",
        "reported",
        "aws/amazon-sagemaker-examples issues 2489, 2414 and 2267 (public reports; no AWS page states it)",
        ("TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform", "ScriptTrainAndTransform",
         "BuildAndRegister"),
        offline="create-time", alternatives=("job-failure",)),
    "empty-input-processing": Behaviour(
        "A processing job whose S3Prefix input holds no object fails as a job with FailureReason "
        "'ClientError: No S3 objects found under S3 URL ...'",
        "unverified", "none found: no AWS page or public report says which it is for processing jobs",
        ("BuildAndRegister",), offline="job-failure", alternatives=("create-time",)),
    "optimized-sagemaker-error-name": Behaviour(
        "An optimized SageMaker task names an API error without a class of its own "
        "SageMaker.AmazonSageMakerException (only a Retry matches it by name; every Catch of the kit is States.ALL)",
        "reported",
        "aws-samples and re:Post answers catching SageMaker.AmazonSageMakerException; "
        f"{SFN}/connect-sagemaker.html names no errors",
        ("BuildAndRegister", "DeployApproved", "TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform",
         "ScriptTrainAndTransform", "MonitorEndpoint"),
        offline="SageMaker.AmazonSageMakerException", alternatives=("SageMaker.ValidationException",)),
    "aws-sdk-error-names": Behaviour(
        "An aws-sdk task's error is named <Service>.<ErrorName>, with an Exception suffix added where the "
        "service's name has none (SageMaker.ResourceLimitExceededException)",
        "stated", f"{SFN}/supported-services-awssdk.html, 'Using AWS SDK service integrations'",
        ("DeployApproved", "BuildAndRegister")),
    "lambda-error-cause": Behaviour(
        "A Lambda function's raised error reaches Catch with Error = the exception's type and Cause = JSON with "
        "errorMessage, errorType and stackTrace",
        "stated", f"{SFN}/concepts-error-handling.html (Lambda errors) and {SFN}/tutorial-handling-error-conditions.html",
        ("DeployApproved",)),
    "sync-output-describe": Behaviour(
        "A .sync SageMaker job task returns the job's Describe* answer (ModelArtifacts.S3ModelArtifacts of a "
        "training job, ProcessingOutputConfig of a processing job)",
        "stated", f"{SFN}/sample-train-model.html (AWS's sample project reads $.ModelArtifacts.S3ModelArtifacts "
                  "after createTrainingJob.sync)",
        ("TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform", "ScriptTrainAndTransform",
         "BuildAndRegister")),
    "exit-message": Behaviour(
        "A processing container's /opt/ml/output/message becomes the job's ExitMessage (first 1 KB) whatever its "
        "end; a message that is not UTF-8 fails the job",
        "stated", f"{SAGEMAKER}/dg/build-your-own-processing-container.html; API ProcessingJobSummary.ExitMessage "
                  "(max 1024)",
        ("BuildAndRegister",)),
    "optimized-parameters": Behaviour(
        "Optimized integrations pass only the request fields listed per API and refuse any other (\"The field ... "
        "is not supported by Step Functions\"); the public report shows the refusal as the task runs, so the kit "
        "refuses such a field before either, at synthesis and at the offline CreateStateMachine",
        "stated", "stacks/asl/integration_parameters.py: the guide's 'Supported parameters' lists (awsdocs/aws-step-"
                  "functions-developer-guide at de67ba0a, 2021-10-15) and the fields aws-cdk-lib 2.275.0's task "
                  "classes render; aws-step-functions-data-science-sdk-python issue 15 (the wording)",
        ("BuildAndRegister", "DeployApproved", "TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform",
         "ScriptTrainAndTransform", "MonitorEndpoint")),
    "sns-publish-limits": Behaviour(
        "SNS Publish takes a Subject of fewer than 100 characters (no line breaks) and a Message of at most "
        "256 KB; botocore's model states neither, offline/sources/request_rules.py checks both",
        "stated", "https://docs.aws.amazon.com/sns/latest/api/API_Publish.html (Subject, Message)",
        ("BuildAndRegister", "DeployApproved")),
    "managed-key-services": Behaviour(
        "An AWS managed key (alias/aws/sns) serves only its own service for the account; CloudWatch alarms cannot "
        "publish to a topic under it, and the alarm's history shows the failed action",
        "stated", "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html ('Enable compatibility "
                  "between event sources from AWS services and encrypted topics'); AWS knowledge center "
                  "'cloudwatch-configure-alarm-sns' (the history message)",
        ("BuildAndRegister", "DeployApproved", "TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform",
         "ScriptTrainAndTransform", "MonitorEndpoint")),
    "alarm-key-conditions": Behaviour(
        "CloudWatch, publishing an alarm to a topic, uses the topic's key with aws:SourceArn (the alarm) and "
        "aws:SourceAccount set, so a key policy may scope the service with them",
        "stated", "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html (the CloudWatch example)",
        ("BuildAndRegister", "DeployApproved", "TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform",
         "ScriptTrainAndTransform", "MonitorEndpoint")),
    "execution-metrics": Behaviour(
        "Step Functions publishes ExecutionsFailed and ExecutionsTimedOut (AWS/States, dimension StateMachineArn) "
        "for each execution that ends so",
        "stated", f"{SFN}/procedure-cw-metrics.html",
        ("BuildAndRegister", "DeployApproved", "TrainAndTransform", "PreprocessAndTrain", "TuneAndTransform",
         "ScriptTrainAndTransform", "MonitorEndpoint")),
    "execution-status-event": Behaviour(
        "'Step Functions Execution Status Change' events carry executionArn, stateMachineArn, name, status, "
        "startDate, stopDate, input, output, error and cause",
        "stated", f"{SFN}/cw-events.html", ("BuildAndRegister", "DeployApproved", "TrainAndTransform",
                                             "PreprocessAndTrain", "TuneAndTransform", "ScriptTrainAndTransform",
                                             "MonitorEndpoint")),
    "model-package-event": Behaviour(
        "'SageMaker Model Package State Change' events carry the version's description (ModelPackageArn, "
        "ModelPackageGroupName, ModelApprovalStatus)",
        "stated", f"{SAGEMAKER}/dg/automating-sagemaker-with-eventbridge.html", ("DeployApproved",)),
    "object-created-event": Behaviour(
        "S3's 'Object Created' events carry detail.bucket.name, detail.object.key and a sequencer unique per "
        "change of a key",
        "stated", "https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html", ("BuildAndRegister",)),
    "alarm-state-event": Behaviour(
        "'CloudWatch Alarm State Change' events carry the alarm's ARN in resources and detail.state.value",
        "stated", "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html",
        ("MonitorEndpoint",)),
}

# alias/aws/<name> -> the service principals an AWS managed key serves (row managed-key-services).
MANAGED_KEY_SERVICES: dict[str, tuple[str, ...]] = {"sns": ("sns.amazonaws.com",)}


def unverified() -> dict[str, Behaviour]:
    """The rows a workflow must survive the other way too."""
    return {key: row for key, row in BEHAVIOURS.items() if row.status != "stated"}
