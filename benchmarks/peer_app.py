"""The kit's TrainAndTransform and PreprocessAndTrain, hand-written as a typical CDK user would: the benchmark's peer.

Built from `aws_stepfunctions_tasks` constructs (the processing job, which has no task construct, as a
CustomState), with the kit's four cdk-nag packs and their findings acknowledged per stack. It is what
`benchmarks/measure.py` compares the kit's synthesis time and jsii round trips against; it is not part of
the kit and is never deployed. Run alone: `python benchmarks/peer_app.py` (writes the assembly to CDK_OUTDIR).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from aws_cdk import Acknowledgment, App, Duration, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, ServerlessChecks
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
# Stack name -> whether it standardizes the data first (PreprocessAndTrain) or not (TrainAndTransform).
PEER_STACKS = {"PeerTrainAndTransform": False, "PeerPreprocessAndTrain": True}
NAG_PACKS = (AwsSolutionsChecks, NIST80053R5Checks, HIPAASecurityChecks, ServerlessChecks)  # the kit's
# A typical app pins one region's images (SageMaker's eu-west-1 registry for both frameworks).
XGBOOST_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
HYPERPARAMETERS = {"objective": "reg:logistic", "eval_metric": "rmse", "num_round": "5"}

# Findings accepted for the whole stack, the way most apps do it: one reason per rule.
ACKNOWLEDGED = {
    "AwsSolutions::AwsSolutions-S1": "Server access logs are not needed for this data bucket.",
    "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy": "CDK grants create inline policies.",
    "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency": "Concurrency is not reserved.",
    "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ": "Step Functions handles the function's errors.",
    "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC": "The functions reach only S3.",
    "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled": "Server access logs are not needed.",
    "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled": "The data can be regenerated.",
    "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS": "S3-managed encryption is enough.",
    "NIST.800.53.R5::NIST.800.53.R5-CloudWatchLogGroupEncrypted": "Log groups use the service key.",
    "HIPAA.Security::HIPAA.Security-IAMNoInlinePolicy": "CDK grants create inline policies.",
    "HIPAA.Security::HIPAA.Security-LambdaConcurrency": "Concurrency is not reserved.",
    "HIPAA.Security::HIPAA.Security-LambdaDLQ": "Step Functions handles the function's errors.",
    "HIPAA.Security::HIPAA.Security-LambdaInsideVPC": "The functions reach only S3.",
    "HIPAA.Security::HIPAA.Security-S3BucketLoggingEnabled": "Server access logs are not needed.",
    "HIPAA.Security::HIPAA.Security-S3BucketReplicationEnabled": "The data can be regenerated.",
    "HIPAA.Security::HIPAA.Security-S3DefaultEncryptionKMS": "S3-managed encryption is enough.",
    "HIPAA.Security::HIPAA.Security-CloudWatchLogGroupEncrypted": "Log groups use the service key.",
    "Serverless::Serverless-LambdaDLQ": "Step Functions handles the function's errors.",
}
# The IAM findings need one acknowledgement each: pasted from cdk-nag's error messages ("Acknowledge with ...").
IAM_FINDINGS = [
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    *(f"AwsSolutions-IAM5[{finding}]" for finding in (
        "Resource::*", "Action::s3:DeleteObject*", "Action::s3:Abort*", "Action::s3:GetObject*",
        "Action::s3:GetBucket*", "Action::s3:List*", "Resource::<Data666C94C7.Arn>/*",
        "Resource::<Data666C94C7.Arn>/model/*", "Resource::<ValidateInput259E93BE.Arn>:*",
        "Resource::<SeedDatasetE6928A89.Arn>:*",
        "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
        *(f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/*"
          for kind in ("processing-job", "training-job", "model", "transform-job"))))]
ACKNOWLEDGED.update({f"AwsSolutions::{finding}": "CDK's grants and the SageMaker tasks use these wildcards."
                     for finding in IAM_FINDINGS})


class PeerWorkflowStack(Stack):
    """Bucket, two functions, a SageMaker role and a state machine; `preprocess` adds the processing job."""

    def __init__(self, scope: Construct, construct_id: str, *, preprocess: bool, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bucket = s3.Bucket(self, "Data", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                           versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                           removal_policy=RemovalPolicy.RETAIN)
        validate = self.function("ValidateInput", "validate_input", bucket)
        seed = self.function("SeedDataset", "seed_dataset", bucket)
        bucket.grant_write(seed)
        sagemaker_role = iam.Role(self, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        bucket.grant_read_write(sagemaker_role)
        sagemaker_role.add_to_policy(iam.PolicyStatement(
            actions=["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                     "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
                     "cloudwatch:PutMetricData"],
            resources=["*"]))
        run_prefix = "$.settings.run_prefix"

        check = tasks.LambdaInvoke(self, "Validate", lambda_function=validate, payload=sfn.TaskInput.from_object({
            "execution_name": sfn.JsonPath.execution_name, "input": sfn.JsonPath.string_at("$$.Execution.Input"),
            "defaults": {"rows": 5000, "training_instance_type": "ml.m5.large",
                         "transform_instance_type": "ml.m5.large", "hyperparameters": HYPERPARAMETERS}}),
            result_selector={"settings.$": "$.Payload"}, result_path="$")
        seeding = tasks.LambdaInvoke(self, "Seed", lambda_function=seed, payload=sfn.TaskInput.from_object({
            "dataset": "scaled" if preprocess else "linear",
            "prefix": sfn.JsonPath.format("{}input/", sfn.JsonPath.string_at(run_prefix)),
            "rows": sfn.JsonPath.number_at("$.settings.rows"), "seed": sfn.JsonPath.number_at("$.settings.seed")}),
            result_selector={"channels.$": "$.Payload.channels", "seed.$": "$.Payload.seed"},
            result_path="$.dataset")
        chain = check.next(seeding)
        train_uri = sfn.JsonPath.string_at("$.dataset.channels.train")
        validation_uri = sfn.JsonPath.string_at("$.dataset.channels.validation")
        test_uri = sfn.JsonPath.string_at("$.dataset.channels.test")
        if preprocess:
            script = s3_assets.Asset(self, "ProcessingScript", path=str(ROOT / "processing" / "features.py"))
            script.grant_read(sagemaker_role)
            chain = chain.next(self.processing_job(script, sagemaker_role, bucket))
            processed = "$.processing.Output"
            train_uri = sfn.JsonPath.format("{}/train/", sfn.JsonPath.string_at(processed))
            validation_uri = sfn.JsonPath.format("{}/validation/", sfn.JsonPath.string_at(processed))
            test_uri = sfn.JsonPath.format("{}/test/", sfn.JsonPath.string_at(processed))

        def channel(name: str, uri: str) -> tasks.Channel:
            return tasks.Channel(channel_name=name, content_type="text/csv", data_source=tasks.DataSource(
                s3_data_source=tasks.S3DataSource(s3_location=tasks.S3Location.from_json_expression(uri),
                                                  s3_data_type=tasks.S3DataType.S3_PREFIX)))

        train = tasks.SageMakerCreateTrainingJob(
            self, "TrainModel", integration_pattern=sfn.IntegrationPattern.RUN_JOB, role=sagemaker_role,
            training_job_name=sfn.JsonPath.format("peer-{}", sfn.JsonPath.uuid()),
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_registry(XGBOOST_IMAGE),
                training_input_mode=tasks.InputMode.FILE),
            hyperparameters=HYPERPARAMETERS,
            enable_network_isolation=True,
            input_data_config=[channel("train", train_uri), channel("validation", validation_uri)],
            output_data_config=tasks.OutputDataConfig(s3_output_location=tasks.S3Location.from_bucket(bucket, "model/")),
            resource_config=tasks.ResourceConfig(
                instance_count=1, volume_size=Size.gibibytes(10),
                instance_type=ec2.InstanceType(sfn.JsonPath.string_at("$.settings.training_instance_type"))),
            stopping_condition=tasks.StoppingCondition(max_runtime=Duration.hours(1)),
            result_selector={"TrainingJobName.$": "$.TrainingJobName",
                             "ModelArtifacts.$": "$.ModelArtifacts.S3ModelArtifacts"},
            result_path="$.training")
        save = tasks.SageMakerCreateModel(
            self, "SaveModel", model_name=sfn.JsonPath.format("peer-{}", sfn.JsonPath.uuid()), role=sagemaker_role,
            primary_container=tasks.ContainerDefinition(
                image=tasks.DockerImage.from_registry(XGBOOST_IMAGE),
                model_s3_location=tasks.S3Location.from_json_expression("$.training.ModelArtifacts")),
            enable_network_isolation=True,
            result_selector={"ModelName.$": "States.ArrayGetItem(States.StringSplit($.ModelArn, '/'), 1)"},
            result_path="$.model")
        transform = tasks.SageMakerCreateTransformJob(
            self, "BatchTransform", integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            transform_job_name=sfn.JsonPath.format("peer-{}", sfn.JsonPath.uuid()),
            model_name=sfn.JsonPath.string_at("$.model.ModelName"), role=sagemaker_role,
            batch_strategy=tasks.BatchStrategy.MULTI_RECORD,
            transform_input=tasks.TransformInput(
                content_type="text/csv", split_type=tasks.SplitType.LINE,
                transform_data_source=tasks.TransformDataSource(s3_data_source=tasks.TransformS3DataSource(
                    s3_uri=test_uri, s3_data_type=tasks.S3DataType.S3_PREFIX))),
            transform_output=tasks.TransformOutput(
                s3_output_path=sfn.JsonPath.format(f"s3://{bucket.bucket_name}/{{}}predictions/",
                                                   sfn.JsonPath.string_at(run_prefix)),
                accept="text/csv", assemble_with=tasks.AssembleWith.LINE),
            transform_resources=tasks.TransformResources(
                instance_count=1, instance_type=ec2.InstanceType(
                    sfn.JsonPath.string_at("$.settings.transform_instance_type"))),
            result_path="$.transform")
        failed = sfn.Fail(self, "WorkflowFailed", error=f"{construct_id}Failed")
        for step in (seeding, train, save, transform):
            step.add_catch(failed, result_path="$.error")
        chain = chain.next(train).next(save).next(transform).next(sfn.Succeed(self, "Succeeded"))
        check.add_catch(failed, result_path="$.error")

        logs_group = logs.LogGroup(self, "WorkflowLogs", retention=logs.RetentionDays.ONE_MONTH)
        machine = sfn.StateMachine(
            self, "StateMachine", definition_body=sfn.DefinitionBody.from_chainable(chain),
            timeout=Duration.hours(4), tracing_enabled=True,
            logs=sfn.LogOptions(destination=logs_group, level=sfn.LogLevel.ALL, include_execution_data=True))
        for statement in self.processing_statements if preprocess else ():
            machine.add_to_role_policy(statement)
        for rule, reason in ACKNOWLEDGED.items():
            Validations.of(self).acknowledge(Acknowledgment(id=rule, reason=reason))

    def function(self, construct_id: str, folder: str, bucket: s3.IBucket) -> lambda_.Function:
        return lambda_.Function(
            self, construct_id, runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler", code=lambda_.Code.from_asset(str(ROOT / "lambda" / folder)),
            environment={"DATA_BUCKET": bucket.bucket_name, "ALLOWED_INSTANCE_TYPES": "ml.m5.large"},
            memory_size=1024, timeout=Duration.minutes(5), tracing=lambda_.Tracing.ACTIVE,
            log_group=logs.LogGroup(self, f"{construct_id}Logs", retention=logs.RetentionDays.ONE_MONTH))

    def processing_job(self, script: s3_assets.Asset, role: iam.IRole, bucket: s3.IBucket) -> sfn.CustomState:
        """No stepfunctions-tasks construct runs a processing job, so the state is written out, with its IAM."""
        def s3_input(name: str, uri: dict, path: str) -> dict:
            return {"InputName": name, "S3Input": {**uri, "LocalPath": path, "S3DataType": "S3Prefix",
                                                   "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
        state = sfn.CustomState(self, "Preprocess", state_json={
            "Type": "Task", "Resource": f"arn:{self.partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": "States.Format('peer-{}', States.UUID())",
                "RoleArn": role.role_arn,
                "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": [
                    "python3", f"/opt/ml/processing/code/{script.s3_object_key}"], "ContainerArguments": [
                    "--input-dir", "/opt/ml/processing/input", "--output-dir", "/opt/ml/processing/output"]},
                "ProcessingInputs": [
                    s3_input("raw", {"S3Uri.$": "$.dataset.channels.raw"}, "/opt/ml/processing/input"),
                    s3_input("code", {"S3Uri": script.s3_object_url}, "/opt/ml/processing/code")],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "processed", "S3Output": {
                    "S3Uri.$": f"States.Format('s3://{bucket.bucket_name}/{{}}processed', $.settings.run_prefix)",
                    "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType.$": "$.settings.processing_instance_type",
                    "VolumeSizeInGB": 10}},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "NetworkConfig": {"EnableNetworkIsolation": True}},
            "ResultSelector": {"Output.$": "$.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"},
            "ResultPath": "$.processing"})
        state.add_catch(sfn.Fail(self, "PreprocessFailed", error="PreprocessFailed"), result_path="$.error")
        self.processing_statements = [
            iam.PolicyStatement(actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                         "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
                                resources=[self.format_arn(service="sagemaker", resource="processing-job",
                                                           resource_name="*")]),
            iam.PolicyStatement(actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                                resources=[self.format_arn(
                                    service="events", resource="rule",
                                    resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule")]),
            iam.PolicyStatement(actions=["iam:PassRole"], resources=[role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        ]
        return state


def build_peer_app(outdir: str | None = None, stacks: Sequence[str] = tuple(PEER_STACKS),
                   context: dict | None = None) -> App:
    """The peer's app with `stacks` (by default both), the four nag packs applied; `context` as `cdk synth` gives
    it (its project's cdk.json and the CLI's own settings)."""
    app = App(outdir=outdir, analytics_reporting=False, context=context)
    for stack in stacks:
        PeerWorkflowStack(app, stack, preprocess=PEER_STACKS[stack])
    Validations.of(app).add_plugins(*(pack(app) for pack in NAG_PACKS))
    return app


if __name__ == "__main__":
    build_peer_app().synth()
