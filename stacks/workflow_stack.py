"""One deployable stack per workflow, assembled from the shared constructs by a small WorkflowSpec."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Mapping

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from stacks.config import LOG_RETENTION, KitConfig
from stacks.data_bucket import DataBucket
from stacks.definition import load_definition, placeholders
from stacks.functions import KitFunction
from stacks.images import SKLEARN, XGBOOST
from stacks.compliance import allow
from stacks.sagemaker_role import SageMakerExecutionRole
from stacks.job_cleanup import StrandedJobCleanup
from stacks.operator_policy import OperatorPolicy
from stacks.workflow import SageMakerWorkflow, sync_jobs, used_integrations

ROOT = Path(__file__).resolve().parent.parent
# ASL placeholders that name a framework image; the SageMaker role may pull exactly the ones a workflow uses.
IMAGE_PLACEHOLDERS = {"XGBoostImage": XGBOOST, "SklearnImage": SKLEARN}


@dataclass(frozen=True)
class WorkflowSpec:
    """What makes a workflow different from the others; everything else is shared."""

    definition: str  # statemachines/<definition>.asl.json
    slug: str  # job names start with <name_prefix>-<slug>-
    description: str
    reads: tuple[str, ...]  # run folders (runs/<run>/<folder>/) SageMaker jobs read
    writes: tuple[str, ...]  # run folders SageMaker jobs write
    # Files SageMaker jobs run, shipped as S3 assets so the deployed definition pins their content hash:
    # name -> path; the ASL gets ${<name>S3Uri} and ${<name>File} (the object's file name in the job).
    assets: Mapping[str, str] = field(default_factory=dict)


def job_guards(config: KitConfig, key: kms.IKey | None) -> dict[str, dict]:
    """IAM conditions the state machine role must meet to create SageMaker jobs and models."""
    guards = {
        # ForAllValues passes when the key is absent, so the Null check makes the instance type mandatory.
        "sagemaker:InstanceTypes": {"ForAllValues:StringEquals": list(config.allowed_instance_types),
                                    "Null": "false"},
        "sagemaker:MaxRuntimeInSeconds": {"NumericLessThanEquals": config.max_job_runtime_minutes * 60},
        "sagemaker:NetworkIsolation": {"Bool": "true"},
        "sagemaker:InterContainerTrafficEncryption": {"Bool": "true"},
    }
    if key:
        guards["sagemaker:VolumeKmsKey"] = guards["sagemaker:OutputKmsKey"] = {"StringEquals": key.key_arn}
    return guards


def encryption_key(stack: Stack, removal: RemovalPolicy) -> kms.Key:
    """The stack's customer-managed key, which CloudWatch Logs may use for this account's log groups."""
    key = kms.Key(stack, "Key", enable_key_rotation=True, removal_policy=removal,
                  description=f"Encrypts the {stack.stack_name} workflow's data, job volumes, logs and state")
    key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
                 "kms:ReEncryptTo"],
        resources=["*"],  # in a key policy, "*" is this key
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": stack.format_arn(
            service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME)}}))
    return key


class SageMakerWorkflowStack(Stack):
    """Data bucket, input-check and seeding functions, SageMaker role and the state machine of one workflow."""

    spec: ClassVar[WorkflowSpec]

    def __init__(self, scope: Construct, construct_id: str, *, config: KitConfig, **kwargs) -> None:
        spec = self.spec
        super().__init__(scope, construct_id, description=spec.description, **kwargs)
        source = f"{spec.definition}.asl.json"
        definition = load_definition(ROOT / "statemachines" / source)
        used = placeholders(definition)
        prefix = f"{config.name_prefix}-{spec.slug}"
        removal = RemovalPolicy.DESTROY if config.destroy_data_on_delete else RemovalPolicy.RETAIN
        retention = LOG_RETENTION[config.log_retention_days]
        function_settings = dict(log_retention=retention, removal_policy=removal)

        key = encryption_key(self, removal) if config.encryption == "kms" else None
        function_settings["encryption_key"] = key
        data = DataBucket(self, "Data", destroy_on_delete=config.destroy_data_on_delete, encryption_key=key,
                          noncurrent_version_expiration=Duration.days(config.noncurrent_version_expiration_days),
                          access_log_expiration=Duration.days(config.access_log_expiration_days))
        validate = KitFunction(
            self, "ValidateInput", folder="validate_input",
            description="Checks a workflow execution's input before anything runs",
            environment={"ALLOWED_INSTANCE_TYPES": ",".join(config.allowed_instance_types)}, **function_settings)
        seed = KitFunction(
            self, "SeedDataset", folder="seed_dataset",
            description="Writes a synthetic data set under one run's input folder",
            environment={"DATA_BUCKET": data.bucket.bucket_name}, memory_size=1024,
            timeout=Duration.minutes(5), **function_settings)
        allow(seed.role, ["s3:PutObject"], [data.bucket.arn_for_objects("runs/*/input/*")],
              wildcard_reason="The function writes one run's inputs under runs/<execution name>/input/; the "
                              "execution name is known only at run time.")
        if key:  # SSE-KMS writes need a data key, through S3 only
            allow(seed.role, ["kms:GenerateDataKey"], [key.key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})

        images = {name: image for name, image in IMAGE_PLACEHOLDERS.items() if name in used}
        sagemaker = SageMakerExecutionRole(
            self, "SageMakerRole", bucket=data.bucket, reads=spec.reads, writes=spec.writes,
            images=images.values(), job_name_prefix=prefix, encryption_key=key,
            job_log_groups=[i.job_log_group for _, _, i in used_integrations(definition, source) if i.job_log_group])
        assets = {}
        for name, path in spec.assets.items():
            asset = s3_assets.Asset(self, name, path=str(ROOT / path))
            sagemaker.allow_asset(asset)
            assets.update({f"{name}S3Uri": asset.s3_object_url, f"{name}File": asset.s3_object_key})

        self.workflow = SageMakerWorkflow(
            self, "Workflow", definition=definition, source=source, job_name_prefix=prefix,
            sagemaker_role=sagemaker.role, timeout=Duration.minutes(config.workflow_timeout_minutes),
            log_retention=retention, removal_policy=removal, encryption_key=key,
            guards=job_guards(config, key),
            substitutions={
                **{name: image.uri(self) for name, image in images.items()},
                **assets,
                "DataBucket": data.bucket.bucket_name,
                "JobNamePrefix": prefix,
                "SageMakerRoleArn": sagemaker.role.role_arn,
                "ValidateInputFunctionArn": validate.function.function_arn,
                "SeedFunctionArn": seed.function.function_arn,
                "TrainingInstanceType": config.training_instance_type,
                "ProcessingInstanceType": config.processing_instance_type,
                "TransformInstanceType": config.transform_instance_type,
                "MaxJobRuntimeSeconds": config.max_job_runtime_minutes * 60,
                "KmsKeyArn": key.key_arn if key else None,  # leaves the job's KMS fields out
            })
        jobs = sync_jobs(definition, stack=self, source=source, job_name_prefix=prefix)
        if jobs:
            StrandedJobCleanup(self, "JobCleanup", state_machine=self.workflow.state_machine,
                               state_machine_name=prefix, sync_jobs=jobs, **function_settings)
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "DataBucketName", value=data.bucket.bucket_name)
        operators = OperatorPolicy(self, "Operators", state_machine=self.workflow.state_machine,
                                   state_machine_name=prefix, bucket=data.bucket, encryption_key=key)
        CfnOutput(self, "OperatorPolicyArn", value=operators.policy.managed_policy_arn,
                  description="Attach to the users or roles that start and watch this workflow's runs")
