"""Build and register: the user's data (or seeded data) → import under the model contract → fit the preprocessing
→ train the contract's model → evaluate the served model and baseline (in parallel) → gate → register a model
version for approval → notify. Starts by hand, when data arrives under incoming/, or on a schedule
(retrain_schedule). The contract (label, task, features, model, gate) is stacks/settings/model_contract.py's."""
from __future__ import annotations

import functools
from typing import Mapping

from aws_cdk import ArnFormat
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm

from contract.run_layout import ANSWERS, BASELINE, EVALUATION, INPUT, MODEL, PROCESSED
from stacks.settings.config import optional_text
from stacks.constructs.event_claim import CLAIM_FRAGMENTS, CLAIM_FUNCTION, claim_of
from stacks.constructs.event_targets import dead_lettered_schedule, start_on_event, starter_role
from stacks.cdk.compliance import acknowledge_wildcards
from stacks.constructs.model_registry import model_package_group
from stacks.constructs.notifications import notification_topic, topic_key
from stacks.settings.model_contract import SETTINGS as CONTRACT_SETTINGS, ModelContract
from stacks.cdk.permissions import allow
from stacks.cdk.tokens import format_arn, objects_arn
from stacks.workflows.workflow_stack import WORKFLOWS, FunctionSpec, SageMakerWorkflowStack, WorkflowSpec, register

# What other stacks of the same copy (DeployApproved) read of this one: SSM parameters named by this stack's
# prefix, read at deploy time, so no CloudFormation export ties the stacks' updates together.
SHARED_PARAMETERS = ("data-bucket-name", "notification-topic-arn", "topic-key-arn", "key-arn")
INCOMING = "incoming/"  # the data a marker-started (or scheduled) run trains on: every .csv file under it
READY_MARKER = f"{INCOMING}_READY"  # put after an upload: each put starts one run on everything under incoming/
DATASETS = "datasets/"  # data sets a run names with dataset_uri
BUCKET_ENV = {"DATA_BUCKET": "${DataBucket}"}
# The data job's disk (lambda/size_dataset): this much on top of this many GB per GiB of the data set. A seeded
# data set (at most 1,000,000 rows, about 30 MB) gets the minimum.
MIN_VOLUME_GB = 10
VOLUME_PER_INPUT_GIB = 8


def shared_parameter(prefix: str, name: str) -> str:
    """The SSM parameter under which the stack with this prefix shares `name` (one of SHARED_PARAMETERS)."""
    assert name in SHARED_PARAMETERS, name
    return f"/{prefix}/{name}"


def share(stack: SageMakerWorkflowStack, values: Mapping[str, str | None], reader: str) -> None:
    """Publish what later stacks of the copy read (`reader`), as SSM parameters named by the stack's prefix."""
    for name, value in values.items():
        if value:
            ssm.StringParameter(stack, f"Shared{name.title().replace('-', '')}", string_value=value,
                                parameter_name=shared_parameter(stack.job_name_prefix, name),
                                description=f"The {name.replace('-', ' ')} of {stack.job_name_prefix}, for {reader}")


def read_shared(stack: SageMakerWorkflowStack, prefix: str, name: str) -> str:
    """What the stack with `prefix` shares as `name`, resolved at deploy time."""
    return ssm.StringParameter.value_for_string_parameter(stack, shared_parameter(prefix, name))


@register("BuildAndRegister")
class BuildAndRegisterStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="build_and_register",
        slug="br",
        description="Import, preprocess, train, evaluate, baseline and register models for approval under a model "
                    "contract, orchestrated by Step Functions",
        reads=(INPUT, PROCESSED, MODEL, ANSWERS),
        writes=(INPUT, PROCESSED, MODEL, ANSWERS, EVALUATION, BASELINE),
        job_bucket_reads=(DATASETS, INCOMING),
        assets={"ImportScript": "processing/import_dataset.py", "FeaturesScript": "processing/features.py",
                "EvaluationScript": "processing/metrics.py", "BaselineScript": "processing/baseline.py",
                "SparkDataJobScript": "processing/spark_data_job.py"},
        functions={
            **CLAIM_FUNCTION,
            "ReadMetrics": FunctionSpec("read_metrics", "Reads a run's evaluation for the registration gate",
                                        reads=(EVALUATION,), environment=BUCKET_ENV),
            "SizeDataset": FunctionSpec("size_dataset", "Weighs a run's data set to size its data job's disk",
                                        bucket_lists=(DATASETS, INCOMING),
                                        environment={"MIN_VOLUME_GB": str(MIN_VOLUME_GB),
                                                     "VOLUME_PER_INPUT_GIB": str(VOLUME_PER_INPUT_GIB)}),
            "ActiveBuilds": FunctionSpec("active_builds", "Tells a run new data started whether an earlier build "
                                                          "still runs (one build at a time per copy)"),
        },
        sample_input={"rows": 1000, "seed": 3},
        fragments={**CLAIM_FRAGMENTS, "MinVolumeGb": MIN_VOLUME_GB},
        settings={
            "retrain_schedule": ("", optional_text(r"^(rate\([^)]+\)|cron\([^)]+\))$",
                                                   "an EventBridge Scheduler expression such as rate(7 days) or "
                                                   "cron(0 3 ? * MON *)")),
            **CONTRACT_SETTINGS,
        },
    )

    @functools.cached_property
    def contract(self) -> ModelContract:
        """The model contract of this copy's settings, read once (a script model's model.json included)."""
        return ModelContract.from_settings(self.config.workflow_settings)

    def definition_fragments(self) -> Mapping[str, object]:
        return {**self.spec.fragments, **self.contract.fragments()}

    def source_folders(self) -> Mapping[str, str]:
        source = self.contract.model.source
        return {**self.spec.source_dirs, **({"ModelSource": source} if source else {})}

    def add_resources(self) -> Mapping[str, str]:
        removal = self.removal_policy
        group = model_package_group(self, prefix=self.job_name_prefix, destroy_on_delete=self.config.destroy_data_on_delete,
                                    removal_policy=removal, log_retention=self.log_retention, encryption_key=self.key)
        # The copy's topic: this stack's approvals and runs, and the alarms of the copy's other stacks.
        # The copy's workflows' alarms, each by its own prefix (so no other copy's alarm matches).
        self.topic_key = topic_key(self, self.key, [f"{self.config.job_name_prefix(cls.spec.slug)}-*"
                                                    for cls in WORKFLOWS.values()])
        self.topic = notification_topic(self, self.topic_key, "SageMaker model registration",
                                        self.config.notification_email)
        shared = {"data-bucket-name": self.data_bucket.bucket_name, "notification-topic-arn": self.topic.topic_arn,
                  "topic-key-arn": self.topic_key.key_arn, "key-arn": self.key.key_arn if self.key else None}
        share(self, shared, "the stacks that deploy its models")
        return {"ModelPackageGroupName": group.model_package_group_name, "NotificationTopicArn": self.topic.topic_arn}

    def add_permissions(self) -> None:
        # ActiveBuilds lists this state machine's runs: named by the prefix, so no reference to itself is needed.
        allow(self.functions["ActiveBuilds"].role, ["states:ListExecutions"], [format_arn(
            self, service="states", resource="stateMachine", resource_name=self.job_name_prefix,
            arn_format=ArnFormat.COLON_RESOURCE_NAME)])

    def add_triggers(self) -> None:
        """The ready marker (incoming/_READY), put after an upload, starts one run on everything under incoming/;
        so does the schedule, when one is set. Operators may also upload data sets and approve or reject the
        versions this workflow registers."""
        uploads = [objects_arn(self.data_bucket, f"{prefix}*") for prefix in (DATASETS, INCOMING)]
        packages = format_arn(self, service="sagemaker", resource="model-package",
                              resource_name=f"{self.job_name_prefix}-*")
        self.operator_policy.add_statements(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=uploads),
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                                         "sagemaker:UpdateModelPackage"], resources=[packages]))
        acknowledge_wildcards(self.operator_policy, uploads, "Operators name their data set files; they may add "
                                                             "them only under datasets/ and incoming/ of this bucket.")
        acknowledge_wildcards(self.operator_policy, [packages], "Model package versions are numbered by SageMaker "
                                                                "in this stack's group, whose name starts with the "
                                                                "stack's prefix.")
        self.data_bucket.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        run_on_incoming = {"dataset_uri": f"s3://{self.data_bucket.bucket_name}/{INCOMING}"}
        rule_name = f"{self.job_name_prefix}-on-incoming-data"
        # One put of the marker is one S3 event, which EventBridge may deliver more than once: the marker's
        # sequencer (unique per change of a key, S3 event message structure) names it.
        start_on_event(
            self, "OnIncomingData", rule_name=rule_name, state_machine=self.state_machine,
            description=f"Starts {self.job_name_prefix} on everything under {INCOMING} when {READY_MARKER} is put",
            pattern=events.EventPattern(source=["aws.s3"], detail_type=["Object Created"], detail={
                "bucket": {"name": [self.data_bucket.bucket_name]}, "object": {"key": [READY_MARKER]}}),
            run_input={**run_on_incoming, "event_claim": claim_of(
                events.EventField.from_path("$.detail.object.key"),
                events.EventField.from_path("$.detail.object.sequencer"))},
            holds="S3 object-created events", encryption_key=self.key, topic=self.topic,
            role=self._starter_role("events.amazonaws.com", "EventBridge, when data arrives under incoming/"))
        schedule = self.config.workflow_settings["retrain_schedule"]
        if schedule:
            role = self._starter_role("scheduler.amazonaws.com", "EventBridge Scheduler, on retrain_schedule")
            dead_lettered_schedule(
                self, "RetrainSchedule", name=None, schedule_expression=schedule,
                description=f"Retrains {self.job_name_prefix} on everything under {INCOMING}",
                state_machine=self.state_machine, role=role, run_input=self.to_json_string(run_on_incoming),
                encryption_key=self.key, topic=self.topic, alarm_prefix=self.job_name_prefix)

    def _starter_role(self, service: str, who: str) -> iam.Role:
        return starter_role(self, service=service, who=who, state_machine=self.state_machine,
                            state_machine_name=self.job_name_prefix, encryption_key=self.key)
