"""One deployable stack per workflow, assembled from the shared constructs by what its module declares.

A workflow module (in `stacks/workflows/`) subclasses SageMakerWorkflowStack, sets `spec` (its ASL, job
folders, assets, functions, a sample input) and, when it needs more, overrides `add_resources` (topics,
model package groups, ...: returns the ASL placeholders they fill) and `add_triggers` (rules and schedules
that start the state machine). `@register` adds it to the app. Nothing shared is edited to add one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from aws_cdk import ArnFormat, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from contract import run_layout
from stacks.cdk.permissions import allow
from stacks.settings.config import LOG_RETENTION, SPOT_WAIT_FACTOR, ConfigError, KitConfig, Setting
from stacks.constructs.data_bucket import DataBucket
from stacks.asl.integrations import Integration, integration_table
from stacks.asl.definition import (PLACEHOLDER, Value, WorkflowDefinitionError, expand, load_definition,
                                   longest_chain, placeholders)
from stacks.constructs.functions import FunctionSpec, KitFunction
from stacks.settings.images import IMAGES
from stacks.constructs.job_cleanup import StrandedJobCleanup
from stacks.constructs.notifications import alarm_on_failed_runs, notification_topic, topic_key
from stacks.constructs.operator_policy import OperatorPolicy
from stacks.constructs.sagemaker_role import SageMakerExecutionRole
from stacks.constructs.job_script import job_script
from stacks.constructs.source_archive import source_archive
from stacks.cdk.tokens import Durations, bucket_arn, format_arn, objects_arn
from stacks.constructs.workflow import SageMakerWorkflow, created_endpoint, sync_jobs, used_integrations

ROOT = Path(__file__).resolve().parents[2]
RUN_FOLDERS = ("Each execution keeps its data under runs/<execution name>/, a name known only at run time; "
               "the function reaches only the named folders of runs in this stack's bucket.")


# Every workflow starts by checking its input and may seed a synthetic data set.
SHARED_FUNCTIONS: dict[str, FunctionSpec] = {
    "ValidateInput": FunctionSpec("validate_input", "Checks a workflow execution's input before anything runs",
                                  environment={"ALLOWED_INSTANCE_TYPES": "${AllowedInstanceTypes}",
                                               "DATA_BUCKET": "${DataBucket}",
                                               # where a ["dataset"] input may point: what the jobs may read
                                               "DATASET_PREFIXES": "${DatasetPrefixes}"}),
    "SeedDataset": FunctionSpec("seed_dataset", "Writes a synthetic data set under one run's input folder",
                                writes=(run_layout.INPUT,), environment={"DATA_BUCKET": "${DataBucket}"},
                                memory_size=1024, timeout_seconds=300),
}


@dataclass(frozen=True)
class DeliveryCheck:
    """How a delivery checks a deployed copy of the workflow: start one run with `input` (strings may hold the
    stack's text placeholders, ${Name}) and expect it to succeed or, with `error`, to fail with that error. A
    workflow an event starts declares a run that proves its deployed copy works in a fresh stage, where nothing
    has started it yet."""

    input: Mapping[str, Any]
    error: str | None = None

    @property
    def outcome(self) -> str:
        """The ended run's status and error as the AWS CLI prints them (`--query "[status, error]" --output text`,
        joined by a colon)."""
        return f"FAILED:{self.error}" if self.error else "SUCCEEDED:None"


@dataclass(frozen=True)
class WorkflowSpec:
    """What makes a workflow different from the others; everything else is shared."""

    definition: str  # statemachines/<definition>.asl.json
    slug: str  # SageMaker names start with <name_prefix>-<slug>-
    description: str
    reads: tuple[str, ...]  # run folders (runs/<run>/<folder>/) SageMaker jobs read
    writes: tuple[str, ...]  # run folders SageMaker jobs write
    # Prefixes of the data bucket outside runs/ that SageMaker jobs read (user data sets an import job checks).
    job_bucket_reads: tuple[str, ...] = ()
    # Files SageMaker jobs run, shipped as S3 assets so the deployed definition pins their content hash:
    # name -> path; the ASL gets ${<name>S3Uri} and ${<name>File} (the object's file name in the job).
    assets: Mapping[str, str] = field(default_factory=dict)
    # Source folders of script-mode jobs (framework images): name -> folder, packed as the sourcedir.tar.gz the
    # training toolkit unpacks; the ASL gets ${<name>S3Uri} and ${<name>File} as for assets.
    source_dirs: Mapping[str, str] = field(default_factory=dict)
    functions: Mapping[str, FunctionSpec] = field(default_factory=dict)  # construct id -> function
    sample_input: Mapping[str, Any] = field(default_factory=dict)  # a small run, for offline tests and checks
    # How a delivery checks the deployed workflow (the pipeline's CheckDev); by default, its sample input must succeed.
    delivery_check: DeliveryCheck | None = None
    # Settings of its own (name -> (default, parser)), given like the kit's (-c name=value, cdk.json) and read
    # as self.config.workflow_settings[name]; document each in docs/configuration.md's table.
    settings: Mapping[str, Setting] = field(default_factory=dict)
    # Workflows (stack ids) of the same copy whose resources this one reads: deployed before it, read through
    # what they share in SSM (no CloudFormation export, so each stack still updates on its own).
    reads_from: tuple[str, ...] = ()
    # ASL its definition uses in more than one state, written once: a field whose value is "${<name>}" gets a
    # copy (placeholders inside are filled like the rest).
    fragments: Mapping[str, Any] = field(default_factory=dict)
    # Service integrations beyond the kit's own (stacks/asl/integrations.py), keyed like its rows (the Task's
    # Resource after arn:<partition>:states:::, or an ItemReader's): what each needs, scoped to this stack. The
    # offline run serves only those offline/cloud/integrations.py has a runner for, and refuses the others.
    integrations: Mapping[str, Integration] = field(default_factory=dict)

    @property
    def integration_table(self) -> dict[str, Integration]:
        """The kit's integrations and this workflow's own, checked alike (stacks/asl/integrations.py)."""
        return integration_table(self.integrations, f"{self.definition}.asl.json")

    @property
    def check(self) -> DeliveryCheck:
        return self.delivery_check or DeliveryCheck(self.sample_input)


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
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": format_arn(
            stack, service="logs", resource="log-group", resource_name="*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)}}))
    return key


WORKFLOWS: dict[str, type["SageMakerWorkflowStack"]] = {}  # stack id -> class, filled by @register


def workflow_settings() -> dict[str, Setting]:
    """Every registered workflow's own settings."""
    return {name: setting for cls in WORKFLOWS.values() for name, setting in cls.spec.settings.items()}


def register(stack_id: str):
    """Class decorator adding a workflow stack to the app under `stack_id`."""
    def add(cls: type["SageMakerWorkflowStack"]) -> type["SageMakerWorkflowStack"]:
        if stack_id in WORKFLOWS and WORKFLOWS[stack_id] is not cls:
            raise ValueError(f"two workflows register the stack id {stack_id!r}")
        WORKFLOWS[stack_id] = cls
        return cls
    return add


class SageMakerWorkflowStack(Stack):
    """Data bucket, functions, SageMaker role and the state machine of one workflow, exposed as attributes."""

    spec: ClassVar[WorkflowSpec]

    def __init__(self, scope: Construct, construct_id: str, *, config: KitConfig, **kwargs) -> None:
        """Top-down, one phase a step: the settings and the definition, the stack's own resources, what the
        definition names (images, assets, functions), the state machine with the grants its tasks need, what
        operators get, and the outputs. Acknowledgements wait for the stack's validation (stacks/cdk/compliance)."""
        super().__init__(scope, construct_id, description=self.spec.description, **kwargs)
        self.config = config
        definition, used = self._read_definition(construct_id)
        self._depend_on_upstream(scope, construct_id)
        self._add_storage_and_role(definition, used)
        self._add_placeholders()
        self._add_functions(used)
        self._add_state_machine(definition, construct_id)
        self._add_operator_access()
        self._add_outputs()

    # -- the phases, in order ---------------------------------------------------------------------
    def _read_definition(self, construct_id: str) -> tuple[dict, set[str]]:
        """The definition with its fragments, the placeholders it (and the functions it calls) uses, and the
        settings derived for this stack; a timeout too short for its jobs stops synthesis."""
        spec, config = self.spec, self.config
        self.source = f"{spec.definition}.asl.json"
        self.integrations = spec.integration_table
        definition = expand(load_definition(ROOT / "statemachines" / self.source), self.definition_fragments())
        used = placeholders(definition)
        # What the functions the definition calls are told counts as used too (an image a check accepts is one
        # the stack's models run in).
        used |= placeholders([dict(f.environment) for function_id, f in {**SHARED_FUNCTIONS, **spec.functions}.items()
                              if f"{function_id}FunctionArn" in used])
        self._check_timeout(definition, config, construct_id)
        self.job_name_prefix = config.job_name_prefix(spec.slug)
        self.removal_policy = RemovalPolicy.DESTROY if config.destroy_data_on_delete else RemovalPolicy.RETAIN
        self.log_retention = LOG_RETENTION[config.log_retention_days]
        return definition, used

    def _depend_on_upstream(self, scope: Construct, construct_id: str) -> None:
        for stack_id in self.spec.reads_from:
            upstream = scope.node.try_find_child(stack_id)
            if isinstance(upstream, Stack):
                self.add_stack_dependency(upstream, f"{construct_id} reads what {stack_id} shares")

    def _add_storage_and_role(self, definition: dict, used: set[str]) -> None:
        """The key (encryption=kms), the data bucket and the role SageMaker jobs run as, reaching what the
        workflow declares."""
        spec, config = self.spec, self.config
        self.key: kms.Key | None = encryption_key(self, self.removal_policy) if config.encryption == "kms" else None
        # The topic the workflow notifies and its key: add_resources may make or name one (another stack's);
        # a stack without one gets its own, for the alarms on its runs.
        self.topic: sns.ITopic | None = None
        self.topic_key: kms.IKey | None = self.key
        data = DataBucket(self, "Data", destroy_on_delete=config.destroy_data_on_delete, encryption_key=self.key,
                          noncurrent_version_expiration=Durations.days(config.noncurrent_version_expiration_days),
                          access_log_expiration=Durations.days(config.access_log_expiration_days))
        self.data_bucket = data.bucket
        self.images = {name: image for name, image in IMAGES.items() if name in used}
        # Spot training jobs keep checkpoints under the run's checkpoints/ folder, to resume after interruption.
        checkpoints = (run_layout.CHECKPOINTS,) if config.spot_training and "SpotCheckpoints" in used else ()
        self.sagemaker = SageMakerExecutionRole(
            self, "SageMakerRole", bucket=data.bucket, reads=spec.reads + checkpoints, writes=spec.writes + checkpoints,
            images=self.images.values(), job_name_prefix=self.job_name_prefix, encryption_key=self.key,
            bucket_reads=spec.job_bucket_reads,
            job_log_groups=[i.job_log_group for _, _, i in used_integrations(definition, self.source, self.integrations)
                            if i.job_log_group])
        self.sagemaker_role = self.sagemaker.role

    def _add_placeholders(self) -> None:
        """What fills the definition's placeholders: settings, images, the shipped assets, add_resources'."""
        config, prefix = self.config, self.job_name_prefix
        self.placeholders: dict[str, Value] = {
            **{name: image.uri(self) for name, image in self.images.items()},
            "DataBucket": self.data_bucket.bucket_name,
            "JobNamePrefix": prefix,
            "SageMakerRoleArn": self.sagemaker_role.role_arn,
            "AllowedInstanceTypes": ",".join(config.allowed_instance_types),
            "DatasetPrefixes": ",".join(self.spec.job_bucket_reads),
            "TrainingInstanceType": config.training_instance_type,
            "ProcessingInstanceType": config.processing_instance_type,
            "TransformInstanceType": config.transform_instance_type,
            "MaxJobRuntimeSeconds": config.max_job_runtime_minutes * 60,
            # Managed spot training: fields left out of every training job unless spot_training=true.
            "SpotTraining": True if config.spot_training else None,
            "SpotMaxWaitSeconds": config.max_job_runtime_minutes * 60 * SPOT_WAIT_FACTOR if config.spot_training else None,
            "SpotCheckpoints": {"S3Uri.$": f"States.Format('s3://${{DataBucket}}/{{}}{run_layout.CHECKPOINTS}/', "
                                         "$.settings.run_prefix)"}
                               if config.spot_training else None,
            "KmsKeyArn": self.key.key_arn if self.key else None,  # leaves the job's KMS fields out
        }
        for name, path in {**self.spec.assets, **self.source_folders()}.items():
            asset = s3_assets.Asset(self, name, path=str(self._asset_file(name, path)))
            self.sagemaker.allow_asset(asset)
            self.placeholders.update({f"{name}S3Uri": asset.s3_object_url, f"{name}File": asset.s3_object_key})
        self.placeholders.update(self.add_resources())

    def _add_functions(self, used: set[str]) -> None:
        """The functions the definition calls (shared and the workflow's own), each with the access it declares."""
        self.functions: dict[str, KitFunction] = {}
        for function_id, function in {**SHARED_FUNCTIONS, **self.spec.functions}.items():
            if f"{function_id}FunctionArn" in used:
                self.functions[function_id] = self._function(function_id, function)
                self.placeholders[f"{function_id}FunctionArn"] = self.functions[function_id].function.function_arn

    def _add_state_machine(self, definition: dict, construct_id: str) -> None:
        """The state machine, its role granted what its tasks need (stacks/asl/integrations.py), the alarms on
        its runs and the cleanup of what a run that gives up leaves billing."""
        config, prefix, removal = self.config, self.job_name_prefix, self.removal_policy
        self.workflow = SageMakerWorkflow(
            self, "Workflow", definition=definition, source=self.source, job_name_prefix=prefix,
            sagemaker_role=self.sagemaker_role, timeout=Durations.minutes(self.run_timeout_minutes()),
            log_retention=self.log_retention, removal_policy=removal, encryption_key=self.key,
            topic_key=self.topic_key, workflow_error=f"{construct_id}Failed", guards=job_guards(config, self.key),
            integrations=self.integrations, bucket=self.data_bucket,
            substitutions=self.placeholders)
        self.state_machine = self.workflow.state_machine
        if self.topic is None:
            self.topic = notification_topic(self, topic_key(self, self.key, [f"{prefix}-*"]),
                                            f"{construct_id} runs", config.notification_email)
        self.run_alarms = alarm_on_failed_runs(self, self.state_machine, prefix, self.topic)
        jobs = sync_jobs(definition, stack=self, source=self.source, job_name_prefix=prefix, table=self.integrations)
        endpoints = created_endpoint(definition, stack=self, source=self.source, job_name_prefix=prefix,
                                     table=self.integrations)
        if jobs or endpoints:  # what a run that gives up could leave billing
            StrandedJobCleanup(self, "JobCleanup", state_machine=self.state_machine, state_machine_name=prefix,
                               sync_jobs=jobs, endpoints=endpoints, encryption_key=self.key, topic=self.topic,
                               endpoint_name=self.placeholders.get("EndpointName") if endpoints else None,
                               claims_bucket=self.data_bucket if "ClaimEvent" in self.functions else None,
                               log_retention=self.log_retention, removal_policy=removal)

    def _add_operator_access(self) -> None:
        """What operators need; a workflow adds to it what its own use needs (add_triggers)."""
        self.operator_policy = OperatorPolicy(self, "Operators", state_machine=self.state_machine,
                                              state_machine_name=self.job_name_prefix, bucket=self.data_bucket,
                                              encryption_key=self.key).policy
        self.add_permissions()
        self.add_triggers()

    def _add_outputs(self) -> None:
        self.state_machine_arn_output = CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        self.check_input_output = CfnOutput(self, "DeliveryCheckInput", value=self._check_input(),
                                            description="The input of the run a delivery checks this copy with")
        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        CfnOutput(self, "OperatorPolicyArn", value=self.operator_policy.managed_policy_arn,
                  description="Attach to the users or roles that start and watch this workflow's runs")

    # -- extension points -----------------------------------------------------------------------
    def definition_fragments(self) -> Mapping[str, Any]:
        """The ASL fragments the definition takes (spec.fragments); override to add some that depend on
        settings (`self.config` is set)."""
        return self.spec.fragments

    def source_folders(self) -> Mapping[str, str]:
        """Script-mode source folders to ship (spec.source_dirs); override to add some that settings name."""
        return self.spec.source_dirs

    def run_timeout_minutes(self) -> int:
        """How long a run may take before Step Functions ends it (workflow_timeout_minutes; a workflow that waits
        on purpose adds its wait)."""
        return self.config.workflow_timeout_minutes

    def add_resources(self) -> Mapping[str, Value]:
        """Override to add resources the state machine uses (topics, model package groups, ...); returns the
        ASL placeholders they fill. The bucket, key and SageMaker role exist already."""
        return {}

    def add_permissions(self) -> None:
        """Override to grant what the declaration cannot say (another stack's bucket, an alarm, ...); the
        functions (`self.functions`), the state machine's role and the operator policy exist."""

    def add_triggers(self) -> None:
        """Override to add what starts the state machine (rules, schedules); `self.state_machine` exists."""

    # -- helpers ----------------------------------------------------------------------------------
    def _check_timeout(self, definition: dict, config: KitConfig, stack_id: str) -> None:
        """The state machine's timeout must leave room for the longest chain of its jobs, one after another, each up
        to its cap: a tuning job for each round of parallel training jobs, a spot training job for its capacity
        wait too."""
        runs_of = {}
        for name, state, integration in used_integrations(definition, self.source, self.integrations):
            if not integration.stoppable_job:
                continue
            limits = state.get("Parameters", {}).get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {})
            rounds = -(-limits.get("MaxNumberOfTrainingJobs", 1) // limits.get("MaxParallelTrainingJobs", 1))
            spot = SPOT_WAIT_FACTOR if config.spot_training and "${SpotTraining}" in json.dumps(state) else 1
            runs_of[name] = rounds * spot
        runs = longest_chain(definition, lambda name, state: runs_of.get(name, 0))
        if config.workflow_timeout_minutes < runs * config.max_job_runtime_minutes:
            raise ConfigError(
                f"invalid setting workflow_timeout_minutes={config.workflow_timeout_minutes}: expected at least "
                f"{runs} x max_job_runtime_minutes ({runs * config.max_job_runtime_minutes}) for {stack_id}, whose "
                "jobs run one after another")

    def _asset_file(self, name: str, path: str) -> Path:
        """The file a job gets: an asset's file, or a source folder packed as the toolkit unpacks it."""
        if name in self.source_folders():
            if not (ROOT / path).is_dir():
                raise WorkflowDefinitionError(f"{self.source}: source_dirs {name}={path!r} is not a folder")
            return source_archive(ROOT / path)
        if not (ROOT / path).is_file():
            raise WorkflowDefinitionError(
                f"{self.source}: assets {name}={path!r} is not a file; CDK uploads a folder as a .zip, which "
                "SageMaker's training toolkit cannot unpack: declare a script-mode source folder in source_dirs")
        return job_script(ROOT / path)

    def _function(self, function_id: str, spec: FunctionSpec) -> KitFunction:
        environment = {name: self._placeholder_value(value, f"function {function_id} environment {name}")
                       for name, value in spec.environment.items()}
        function = KitFunction(self, function_id, folder=spec.folder, description=spec.description,
                               environment=environment, memory_size=spec.memory_size,
                               timeout=Durations.seconds(spec.timeout_seconds), log_retention=self.log_retention,
                               removal_policy=self.removal_policy, encryption_key=self.key)
        bucket = self.data_bucket
        if spec.reads:
            allow(function.role, ["s3:GetObject"], [objects_arn(bucket, run_layout.glob(f)) for f in spec.reads],
                  wildcard_reason=RUN_FOLDERS)
        if spec.bucket_reads:
            allow(function.role, ["s3:ListBucket"], [bucket_arn(bucket)],
                  conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in spec.bucket_reads]}})
            allow(function.role, ["s3:GetObject"], [objects_arn(bucket, f"{p}*") for p in spec.bucket_reads],
                  wildcard_reason="Users add data set files of their own naming under these prefixes; the "
                                  "function reads only them, never another run's folders.")
        if spec.bucket_lists:
            allow(function.role, ["s3:ListBucket"], [bucket_arn(bucket)],
                  conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in spec.bucket_lists]}})
        if spec.writes:
            allow(function.role, ["s3:PutObject"], [objects_arn(bucket, run_layout.glob(f)) for f in spec.writes],
                  wildcard_reason=RUN_FOLDERS)
        if spec.bucket_creates:
            allow(function.role, ["s3:PutObject"], [objects_arn(bucket, f"{p}*") for p in spec.bucket_creates],
                  conditions={"StringEquals": {"s3:if-none-match": "*"}},
                  wildcard_reason="The function names its objects under these prefixes itself, and may only create "
                                  "them (If-None-Match: *), never overwrite one.")
        reads, writes = spec.reads or spec.bucket_reads, spec.writes or spec.bucket_creates
        if self.key and (reads or writes):  # SSE-KMS objects, through S3 only
            actions = [*(["kms:Decrypt"] if reads else []), *(["kms:GenerateDataKey"] if writes else [])]
            allow(function.role, actions, [self.key.key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})
        return function

    def _check_input(self) -> str:
        """The delivery check's input as JSON, its ${Name} placeholders filled with the stack's values."""
        def fill(match) -> str:
            return str(self._placeholder_value(match.group(0), "delivery_check input"))
        return PLACEHOLDER.sub(fill, json.dumps(self.spec.check.input, separators=(",", ":")))

    def _placeholder_value(self, text: str, where: str) -> str:
        whole = PLACEHOLDER.fullmatch(text)
        if not whole:
            return text
        value = self.placeholders.get(whole.group(1))
        if not isinstance(value, str):
            raise WorkflowDefinitionError(f"{self.source}: {where} names {text}, which is not a text placeholder; "
                                          f"known: {', '.join(sorted(k for k, v in self.placeholders.items() if isinstance(v, str)))}")
        return value
