"""Deploy approved: a model version approved in BuildAndRegister's registry → a real-time endpoint that records its
traffic (created, or updated blue/green with automatic rollback) → smoke test against the registered test set
(rolled back when it fails) → handed to the monitoring workflow (MonitorEndpoint), announced as monitored once
its schedule is in place → notify. Starts when a version of that group is approved, or by hand with a version's
ARN."""
from __future__ import annotations

from typing import Mapping

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_s3 as s3

from constructs import Construct

from contract.claims import WITHDRAWN
from contract.run_layout import CAPTURE, DEPLOYMENT, EVALUATION, GROUND_TRUTH, INPUT, MODEL, PREPROCESSOR, glob
from stacks.cdk.compliance import accept, acknowledge_wildcards
from stacks.settings.config import ConfigError, instance_type, one_of, whole_number
from stacks.settings.rollouts import ROLLOUTS, TERMINATION_WAIT_SECONDS, traffic_routing
from stacks.settings.image_table import SERVING_IMAGES
from stacks.constructs.event_claim import CLAIM_FRAGMENTS, CLAIM_FUNCTION, allow_releasing_claims, claim_of
from stacks.constructs.event_targets import invoke_on_event, start_on_event, starter_role
from stacks.constructs.functions import KitFunction
from stacks.cdk.permissions import add_statements, allow, endpoint_key_statements
from stacks.constructs.sagemaker_role import allow_log_streams
from stacks.cdk.tokens import Durations, bucket_arn, format_arn, objects_arn
from stacks.workflows.workflow_stack import DeliveryCheck, FunctionSpec, SageMakerWorkflowStack, WorkflowSpec, register
from stacks.constructs.model_registry import model_package_group_name, model_package_versions
from stacks.workflows.build_and_register import BuildAndRegisterStack, read_shared, share

BUILD_STACK = "BuildAndRegister"
VARIANT, SHADOW_VARIANT = "AllTraffic", "Shadow"  # production's variant; the approved version's during a shadow test
SHADOW_ROWS = 1000  # a shadow test replays at most this many captured production rows
POLL_SECONDS, MAX_POLLS = 30, 150  # up to 75 minutes for a create, or a blue/green update's bake and teardown
SMOKE_TEST_ROWS, SMOKE_TEST_TOLERANCE = 1000, 0.05  # accuracy and AUC may differ from the registered by this
def endpoint_name(prefix: str) -> str:
    """The stack's one endpoint: one name per copy, so clients keep calling it across deployments."""
    return f"{prefix}-endpoint"


def monitor_schedule_name(prefix: str) -> str:
    """The schedule of the workflow that monitors the endpoint of the DeployApproved stack with this prefix."""
    return f"{prefix}-monitor"


# What SageMaker's other ways of serving do not take that a registered version needs: it is two containers called
# in series (the fitted preprocessing, then the model), served isolated and watched through data capture, so these
# settings are refused (docs/design-notes.md says what would serve it there).
REFUSED_SERVING = {
    # Developer guide, "Deploy models with Amazon SageMaker Serverless Inference", Feature exclusions.
    "serverless": "SageMaker Serverless Inference takes no inference pipeline, network isolation, data capture or "
                  "KMS key",
    # Developer guide, the inference options' table of supported features (2023): asynchronous endpoints take no
    # serial inference pipeline, data capture or Model Monitor.
    "async": "SageMaker Asynchronous Inference takes no serial inference pipeline and no data capture",
}


def refused_serving(kind: str) -> str:
    return (f"invalid setting serving={kind}: {REFUSED_SERVING[kind]}, and a registered version is a pipeline (the "
            "fitted preprocessing, then the model) that DeployApproved serves isolated and MonitorEndpoint watches "
            "through data capture: keep serving=realtime (an idle endpoint bills its instances; see "
            "docs/deploy-approved.md, Cost)")


@register("DeployApproved")
class DeployApprovedStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="deploy_approved",
        slug="da",
        description="Deploy approved models behind a monitored SageMaker endpoint, orchestrated by Step "
                    "Functions",
        reads_from=(BUILD_STACK,),
        reads=(),
        writes=(CAPTURE,),  # the endpoint's data capture
        functions={
            **CLAIM_FUNCTION,
            "CheckModelPackage": FunctionSpec(
                "check_model_package", "Checks that a model version may be deployed and reads what it registered",
                environment={"MODEL_PACKAGES": "${BuildModelPackages}", "BUILD_DATA_BUCKET": "${BuildDataBucket}",
                             **{row.environment: f"${{{row.placeholder}}}" for row in SERVING_IMAGES}}),
            "SmokeTest": FunctionSpec(
                "smoke_test", "Scores the registered test rows on the endpoint and compares with the registered "
                              "metrics", environment={"BUILD_DATA_BUCKET": "${BuildDataBucket}",
                                                      "ENDPOINT_NAME": "${EndpointName}"},
                memory_size=512, timeout_seconds=120),
            "CompareShadow": FunctionSpec(
                "compare_shadow", "Replays production's captured requests to the shadow variant and decides whether "
                                  "it replaces production", reads=(CAPTURE,), bucket_reads=(GROUND_TRUTH,),
                environment={"DATA_BUCKET": "${DataBucket}", "BUILD_DATA_BUCKET": "${BuildDataBucket}",
                             "ENDPOINT_NAME": "${EndpointName}", "PRODUCTION_VARIANT": "${VariantName}",
                             "SHADOW_VARIANT": "${ShadowVariantName}"},
                memory_size=512, timeout_seconds=600),
            "MonitorDeployment": FunctionSpec(
                "monitor_deployment", "Records a deployment for the monitor and checks that its schedule is enabled",
                writes=(DEPLOYMENT,), environment={"DATA_BUCKET": "${DataBucket}", "ENDPOINT_NAME": "${EndpointName}",
                                                     "MONITOR_SCHEDULE": "${MonitorScheduleName}"}),
        },
        sample_input={},  # needs an approved version: offline runs approve one BuildAndRegister registered
        # A fresh stage has no approved version: the check asks for one that cannot exist, which proves the
        # deployed input check, version check (its IAM on the build group) and failure notice work end to end.
        delivery_check=DeliveryCheck({"model_package_arn": "${BuildModelPackages}999999999"},
                                     error="ModelPackageNotFound"),
        settings={
            "endpoint_instance_type": ("ml.m5.large", instance_type),
            "data_capture_percentage": (100, whole_number(1, 100)),
            # How an approved version replaces the serving one (stacks/settings/rollouts.py).
            "rollout": ("all_at_once", one_of(*ROLLOUTS)),
            "rollout_step_percent": (50, whole_number(10, 50)),
            # The longest shadow test a run may ask for, and with rollout=shadow every run's: its hours are added
            # to the state machine's timeout (run_timeout_minutes).
            "shadow_hours": (24, whole_number(1, 720)),
            # realtime: instances behind the endpoint. The others are refused at synthesis (REFUSED_SERVING).
            "serving": ("realtime", one_of("realtime", *REFUSED_SERVING)),
            "endpoint_instance_count": (1, whole_number(1, 20)),
        },
        # Failures after the version was accepted are notified (NotifyError) before the run fails.
        fragments={**CLAIM_FRAGMENTS,
                   "CatchAndNotify": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyError"}]},
    )

    def add_resources(self) -> Mapping[str, object]:
        settings = self.config.workflow_settings
        if settings["serving"] in REFUSED_SERVING:
            raise ConfigError(refused_serving(settings["serving"]))
        endpoint_type = settings["endpoint_instance_type"]
        if endpoint_type not in self.config.allowed_instance_types:
            raise ConfigError(f"invalid setting endpoint_instance_type={endpoint_type!r}: expected one of "
                              f"allowed_instance_types ({', '.join(self.config.allowed_instance_types)}), or add "
                              "it to allowed_instance_types")
        # The build stack of this copy (reads_from): its registry, data and topic, shared through SSM.
        build_prefix = self.config.job_name_prefix(BuildAndRegisterStack.spec.slug)
        shared = {name: read_shared(self, build_prefix, name) for name in ("data-bucket-name", "notification-topic-arn")}
        self.build_bucket = s3.Bucket.from_bucket_name(self, "BuildBucket", shared["data-bucket-name"])
        self.build_group = model_package_group_name(build_prefix)
        self.build_key = (kms.Key.from_key_arn(self, "BuildKey", read_shared(self, build_prefix, "key-arn"))
                          if self.key else None)
        self.topic = sns.Topic.from_topic_arn(self, "Notifications", shared["notification-topic-arn"])
        self.topic_key = kms.Key.from_key_arn(self, "TopicKey", read_shared(self, build_prefix, "topic-key-arn"))
        self.endpoint_name = endpoint_name(self.job_name_prefix)
        self.endpoint_arn = format_arn(self, service="sagemaker", resource="endpoint", resource_name=self.endpoint_name)
        above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        self.rollback_alarms = (
            self._rollback_alarm("Errors", "Invocation5XXErrors", "Sum", 1, above,
                                 f"Server errors of {self.endpoint_name}"),
            self._rollback_alarm(  # ModelLatency is in microseconds
                "Latency", "ModelLatency", "p90", 1_000_000, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                f"{self.endpoint_name}'s model took over a second for a tenth of its requests"))
        for alarm in self.rollback_alarms:
            accept(alarm.node.default_child, "alarm-action",
                   "SageMaker's deployment guardrails watch this alarm and roll an update back when it fires; that "
                   "is its action. The run's outcome is notified on the build stack's topic.")
        instances = settings["endpoint_instance_count"]
        routing = traffic_routing(settings["rollout"], settings["rollout_step_percent"], instances)
        self._allow_sagemaker_role()
        share(self, {"data-bucket-name": self.data_bucket.bucket_name, "key-arn": self.key.key_arn if self.key else None},
              "the stack that monitors its endpoint")
        return {
            "BuildModelPackages": format_arn(self, service="sagemaker", resource="model-package",
                                             resource_name=f"{self.build_group}/"),
            "BuildDataBucket": self.build_bucket.bucket_name,
            "NotificationTopicArn": shared["notification-topic-arn"],
            "EndpointName": self.endpoint_name, "VariantName": VARIANT, "EndpointInstanceType": endpoint_type,
            "DataCapturePercentage": settings["data_capture_percentage"],
            "RollbackAlarms": [{"AlarmName": alarm.alarm_name} for alarm in self.rollback_alarms],
            "TrafficRouting": routing, "TerminationWaitSeconds": TERMINATION_WAIT_SECONDS,
            "ShadowVariantName": SHADOW_VARIANT, "ShadowRows": SHADOW_ROWS, "ShadowHourSeconds": 3600,
            "ShadowHours": settings["shadow_hours"] if settings["rollout"] == "shadow" else 0,
            "ShadowHoursMax": settings["shadow_hours"],
            "EndpointInstanceCount": instances,
            "MonitorScheduleName": monitor_schedule_name(self.job_name_prefix),
            "EndpointPollSeconds": POLL_SECONDS, "EndpointMaxPolls": MAX_POLLS,
            "EndpointWaitLimit": f"{MAX_POLLS} checks {POLL_SECONDS} s apart",
            "SmokeTestRows": SMOKE_TEST_ROWS, "SmokeTestTolerance": str(SMOKE_TEST_TOLERANCE),
        }

    def run_timeout_minutes(self) -> int:
        """A shadow test waits its hours on top of a deployment's own time."""
        return super().run_timeout_minutes() + 60 * self.config.workflow_settings["shadow_hours"]

    def _rollback_alarm(self, what: str, metric: str, statistic: str, threshold: float,
                        comparison: cloudwatch.ComparisonOperator, meaning: str) -> cloudwatch.Alarm:
        """An alarm on the endpoint's variant, over a minute, that SageMaker watches while an update bakes."""
        return cloudwatch.Alarm(
            self, f"Endpoint{what}", alarm_name=f"{self.endpoint_name}-{what.lower()}",
            alarm_description=f"{meaning}: while an update bakes, SageMaker rolls back to the previous model when "
                              "this alarm fires",
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric,
                                     dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
                                     statistic=statistic, period=Durations.minutes(1)),
            threshold=threshold, evaluation_periods=1, comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)

    def _allow_sagemaker_role(self) -> None:
        """The endpoint's containers download their artifacts (the fitted preprocessing and the model) from the
        build stack's bucket and log into the endpoint's log group."""
        self._read_build_data(self.sagemaker_role, (MODEL, PREPROCESSOR),
                              "BuildAndRegister keeps each run's model and fitted preprocessing under "
                              "runs/<execution name>/; the role reads only those folders of its bucket.")
        allow_log_streams(self.sagemaker_role, {f"/aws/sagemaker/Endpoints/{self.endpoint_name}": f"{VARIANT}/*"},
                          "SageMaker names the endpoint's log group after it and its streams <variant>/<instance "
                          "id>.")

    def _read_build_data(self, role: iam.Role, folders: tuple[str, ...], reason: str) -> None:
        """Read these run folders of the build stack's bucket (through S3 with its key, under kms)."""
        objects = [objects_arn(self.build_bucket, glob(folder)) for folder in folders]
        allow(role, ["s3:GetObject"], objects, wildcard_reason=reason)
        if self.build_key:
            allow(role, ["kms:Decrypt"], [self.build_key.key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})

    def add_permissions(self) -> None:
        check = self.functions["CheckModelPackage"].function
        packages = model_package_versions(self, self.config.job_name_prefix(BuildAndRegisterStack.spec.slug))
        allow(check.role, ["sagemaker:DescribeModelPackage"], [packages],
              wildcard_reason="SageMaker numbers the versions of BuildAndRegister's model package group; the "
                              "function describes versions of that one group only.")
        smoke = self.functions["SmokeTest"].function
        allow(smoke.role, ["sagemaker:InvokeEndpoint"], [self.endpoint_arn])
        shadow = self.functions["CompareShadow"].function
        allow(shadow.role, ["sagemaker:InvokeEndpoint"], [self.endpoint_arn])
        allow(shadow.role, ["s3:ListBucket"], [bucket_arn(self.data_bucket)],
              conditions={"StringLike": {"s3:prefix": [glob(CAPTURE)]}})
        self._read_build_data(shadow.role, (EVALUATION,), "A registered version names its run's evaluation (task, "
                                                          "classes, gate metric) under runs/<execution name>/.")
        self._read_build_data(smoke.role, (EVALUATION, INPUT),
                              "A registered version names its run's evaluation, raw test rows (input/raw/) and "
                              "test labels (input/test-labels/) under runs/<execution name>/ of the build bucket.")
        allow(smoke.role, ["s3:ListBucket"], [bucket_arn(self.build_bucket)],
              conditions={"StringLike": {"s3:prefix": [glob()]}})
        # Deployment guardrails need "your IAM execution role" to DescribeAlarms the rollback alarm
        # (deployment-guardrails-configuration.html); the page names no role, so both may: the model's role and the
        # state machine's, which calls UpdateEndpoint. On exactly this alarm.
        for role in (self.sagemaker_role, self.workflow.role):
            allow(role, ["cloudwatch:DescribeAlarms"], [alarm.alarm_arn for alarm in self.rollback_alarms])
        if self.key:  # the state machine calls CreateEndpoint and UpdateEndpoint with configs under the key
            add_statements(self.workflow.role, endpoint_key_statements(self.key.key_arn))
        monitor = self.functions["MonitorDeployment"].function
        allow(monitor.role, ["scheduler:GetSchedule"], [format_arn(
            self, service="scheduler", resource="schedule",
            resource_name=f"default/{monitor_schedule_name(self.job_name_prefix)}")])
        # Operators watch and call the endpoint, and tear down what runs created (make delete-endpoint).
        made = [format_arn(self, service="sagemaker", resource=kind, resource_name=f"{self.job_name_prefix}-*")
                for kind in ("endpoint-config", "model")]
        self.operator_policy.add_statements(
            iam.PolicyStatement(actions=["sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
                                         "sagemaker:InvokeEndpoint"], resources=[self.endpoint_arn]),
            iam.PolicyStatement(actions=["sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"], resources=made),
            # Back to production's config, an endpoint a shadow test left behind (docs/deploy-approved.md).
            iam.PolicyStatement(actions=["sagemaker:UpdateEndpoint"], resources=[self.endpoint_arn, made[0]]),
            iam.PolicyStatement(actions=["sagemaker:ListEndpointConfigs", "sagemaker:ListModels"], resources=["*"]))
        if self.key:  # operators may update the endpoint to a config under the key
            self.operator_policy.add_statements(*endpoint_key_statements(self.key.key_arn))
        acknowledge_wildcards(self.operator_policy, made, "Each deployment makes an endpoint config and a model "
                                                          "named <prefix>-<uuid>; operators delete only those.")
        acknowledge_wildcards(self.operator_policy, ["*"], "ListEndpointConfigs and ListModels have no "
                                                           "resource-level permissions; they reveal names only.")
        # Operators upload the true labels of the endpoint's answers beside its capture (contract/run_layout.py);
        # the monitor scores the model on them, and a shadow test compares the versions on them.
        uploads = objects_arn(self.data_bucket, f"{GROUND_TRUTH}*")
        self.operator_policy.add_statements(iam.PolicyStatement(actions=["s3:PutObject"], resources=[uploads]))
        acknowledge_wildcards(self.operator_policy, [uploads], "Operators name their ground-truth files by the "
                                                               "hour of the predictions; only under ground-truth/.")

    def add_triggers(self) -> None:
        """Approving a version of the build stack's group starts a deployment of it; nothing else does; withdrawing
        the approval (Rejected, PendingManualApproval) releases its claim, so approving it again deploys it."""
        rule_name = f"{self.job_name_prefix}-on-approval"
        start_on_event(
            self, "OnApproval", rule_name=rule_name, state_machine=self.state_machine,
            description=f"Deploys a version of {self.build_group} when it is approved",
            pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self.build_group], "ModelApprovalStatus": ["Approved"]}),
            # One deployment per approval: the claim is the version alone (no AWS page shows the event's
            # LastModifiedTime, so the claim must not rest on it); withdrawing the approval releases it (below).
            run_input={"model_package_arn": events.EventField.from_path("$.detail.ModelPackageArn"),
                       "event_claim": claim_of(events.EventField.from_path("$.detail.ModelPackageArn"))},
            holds="model approval events", encryption_key=self.key, topic=self.topic,
            role=starter_role(self, service="events.amazonaws.com", who="EventBridge, on a model approval",
                              state_machine=self.state_machine, state_machine_name=self.job_name_prefix,
                              encryption_key=self.key))
        self._release_claims_on_withdrawal()

    def _release_claims_on_withdrawal(self) -> None:
        scope = Construct(self, "ClaimRelease")
        release = KitFunction(scope, "ReleaseClaim", folder="release_claim",
                              description="Releases a version's deployment claim when its approval is withdrawn",
                              environment={"DATA_BUCKET": self.data_bucket.bucket_name},
                              timeout=Durations.seconds(30), log_retention=self.log_retention,
                              removal_policy=self.removal_policy, encryption_key=self.key,
                              dead_letter_reason="An invocation that fails after Lambda's two retries goes to the "
                                                 "on-failure destination ClaimRelease/GaveUp (an event invoke "
                                                 "config, which this check does not read), a watched queue.")
        allow_releasing_claims(release.role, self.data_bucket, "the claim of the version whose approval was withdrawn")
        invoke_on_event(
            scope, "OnWithdrawal", rule_name=f"{self.job_name_prefix}-on-withdrawal",
            description=f"Releases the deployment claim of a version of {self.build_group} whose approval is withdrawn",
            pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self.build_group],
                        "ModelApprovalStatus": list(WITHDRAWN)}),
            function=release.function, role=release.role, holds="withdrawn approval events",
            encryption_key=self.key, topic=self.topic, gave_up_alarm=f"{self.job_name_prefix}-release-gave-up",
            gave_up_description="Releasing the deployment claim of a version whose approval was withdrawn failed "
                                "after Lambda's retries: approving that version again will end as DuplicateEvent. "
                                "Delete the object claims/<sha256 of the version ARN> from the stack's bucket (the "
                                "record in this alarm's queue names the version), then approve it again.")
