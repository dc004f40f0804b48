"""Monitor endpoint: on a schedule, DeployApproved's captured traffic → drift, data quality and model quality against
the deployed version's baseline (the kit's own statistics, no SageMaker Model Monitor) → a JSON report and an HTML
page → CloudWatch metrics. Alarms on those metrics and on the endpoint's errors and latency notify the copy's topic
(each workflow's stack alarms on its own failed and timed-out runs); with retrain_on_drift the drift alarm starts
BuildAndRegister. A dashboard per copy shows it all."""
from __future__ import annotations

from typing import Mapping

from aws_cdk import ArnFormat, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn

from contract.run_layout import (BASELINE, CAPTURE, DEPLOYMENT, EVALUATION, GROUND_TRUTH, MODEL, PREPROCESSOR, REPORT,
                                 TRAFFIC, glob)
from contract.results import RESULTS
from stacks.settings.config import true_or_false, whole_number
from stacks.constructs.event_targets import dead_lettered_schedule, start_on_event, starter_role
from stacks.constructs.model_registry import model_package_versions
from stacks.constructs.notifications import RUN_ALARMS
from processing.attribution import NDCG_DRIFT
from processing.metrics import BY_TASK
from stacks.cdk.permissions import allow
from stacks.cdk.tokens import Durations, bucket_arn, format_arn, objects_arn
from stacks.workflows.workflow_stack import WORKFLOWS, FunctionSpec, SageMakerWorkflowStack, WorkflowSpec, register
from stacks.workflows.build_and_register import INCOMING, BuildAndRegisterStack, read_shared, share
from stacks.workflows.deploy_approved import VARIANT, DeployApprovedStack, endpoint_name, monitor_schedule_name

# Alarm thresholds. Drift: Evidently's default alert share (../shared/reference/monitoring.md); model quality: the
# live gate metric 0.1 worse than registered (processing/metrics.py `worsening`: 0.1 below for a metric where higher
# is better, 10% above for RMSE and MAE); latency: ModelLatency (microseconds) p90 over a second.
DRIFT_SHARE, QUALITY_WORSENING, LATENCY_P90_MICROSECONDS = 0.3, 0.1, 1_000_000
# Bias: the gap between groups of a bias column on the gate metric, 0.2 wider than on the test set (processing/monitor.py
# `bias`; groups of 100 labelled rows or more, processing/metrics.py MIN_GROUP_ROWS).
BIAS_WIDENING = 0.2
# The metrics PublishMetrics writes (lambda/publish_metrics): name -> what the dashboard calls it. Each of the tasks'
# metrics (processing/metrics.py) on ground truth is Live<Metric>.
MONITOR_METRICS = {"Rows": "rows checked", "DriftShare": "share of features drifted",
                   "DriftedFeatures": "features drifted", "PredictionPSI": "PSI of the model's scores",
                   "DataQualityIssues": "data-quality issues", "LabelledRows": "rows with ground truth",
                   "LiveGateMetric": "the gate metric on ground truth",
                   "GateMetricWorsening": "how much worse the gate metric is than registered",
                   "BiasGapWidening": "how much wider the gap between groups is than on the test set",
                   "AttributionNDCG": "nDCG of the feature attributions against the baseline's",
                   **{f"Live{name[0].upper()}{name[1:]}": f"{name} on ground truth"
                      for name in dict.fromkeys(m for task in BY_TASK.values() for m in task.metrics)}}
ENDPOINT_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency")
EXECUTION_METRICS = ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")
# The SageMaker jobs Step Functions waits for: it publishes their time per integration (AWS/States
# ServiceIntegrationTime, dimension ServiceIntegrationResourceArn), account-wide rather than per state machine.
SYNC_JOBS = ("createTrainingJob.sync", "createProcessingJob.sync", "createTransformJob.sync",
             "createHyperParameterTuningJob.sync")


@register("MonitorEndpoint")
class MonitorEndpointStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="monitor_endpoint",
        slug="mon",
        description="Monitor DeployApproved's endpoint for drift and data and model quality (the kit's own checks), "
                    "with alarms, retraining on drift and a dashboard, orchestrated by Step Functions",
        reads_from=("BuildAndRegister", "DeployApproved"),
        reads=(TRAFFIC,),
        writes=(REPORT,),
        assets={"MonitorScript": "processing/monitor.py", "MetricsScript": "processing/metrics.py",
                "AttributionScript": "processing/attribution.py"},
        functions={
            "CollectTraffic": FunctionSpec(
                "collect_traffic", "Copies a window's captured traffic and arrived ground truth into one run",
                writes=(TRAFFIC,),
                environment={"DATA_BUCKET": "${DataBucket}", "DEPLOY_BUCKET": "${DeployDataBucket}",
                             "ENDPOINT_NAME": "${EndpointName}", "BUILD_DATA_BUCKET": "${BuildDataBucket}",
                             "XGBOOST_IMAGE": "${XGBoostImage}"},
                memory_size=512, timeout_seconds=300),
            "PublishMetrics": FunctionSpec(
                "publish_metrics", "Publishes a monitor report's numbers as CloudWatch metrics and a results row",
                reads=(REPORT,), bucket_creates=(RESULTS,),
                environment={"DATA_BUCKET": "${DataBucket}", "NAMESPACE": "${MetricNamespace}",
                             "ENDPOINT_NAME": "${EndpointName}"}),
        },
        # One hour's check: offline, a quiet hour (or, before any deployment, no endpoint), a named outcome either way.
        sample_input={"window_end": "2026-01-01T01:00:00Z"},
        settings={
            "monitoring_interval_hours": (1, whole_number(1, 24)),
            "retrain_on_drift": (False, true_or_false),
        },
    )

    def add_resources(self) -> Mapping[str, object]:
        build_prefix = self.config.job_name_prefix(BuildAndRegisterStack.spec.slug)
        self.deploy_prefix = self.config.job_name_prefix(DeployApprovedStack.spec.slug)
        self.endpoint_name = endpoint_name(self.deploy_prefix)
        self.build_bucket = s3.Bucket.from_bucket_name(self, "BuildBucket",
                                                       read_shared(self, build_prefix, "data-bucket-name"))
        self.deploy_bucket = s3.Bucket.from_bucket_name(self, "DeployBucket",
                                                        read_shared(self, self.deploy_prefix, "data-bucket-name"))
        self.build_key = self.deploy_key = None
        if self.key:
            self.build_key = kms.Key.from_key_arn(self, "BuildKey", read_shared(self, build_prefix, "key-arn"))
            self.deploy_key = kms.Key.from_key_arn(self, "DeployKey", read_shared(self, self.deploy_prefix, "key-arn"))
        self.topic = sns.Topic.from_topic_arn(self, "Notifications",
                                              read_shared(self, build_prefix, "notification-topic-arn"))
        self.namespace = self.job_name_prefix  # this copy's metrics only: PutMetricData is limited to it
        # The monitor's job reads the version's baseline, evaluation and two archives (to explain the model) from
        # the build stack's bucket.
        folders = (BASELINE, EVALUATION, PREPROCESSOR, MODEL)
        self._read(self.sagemaker_role, self.build_bucket, self.build_key, folders,
                   "BuildAndRegister keeps each run's baseline, evaluation, preprocessing and model under "
                   "runs/<execution name>/; the monitor's jobs read only those folders of its bucket.")
        # SageMaker lists an S3Prefix input's prefix before it downloads it (offline IAM found this missing).
        allow(self.sagemaker_role, ["s3:ListBucket"], [bucket_arn(self.build_bucket)],
              conditions={"StringLike": {"s3:prefix": [glob(folder) for folder in folders]}})
        share(self, {"data-bucket-name": self.data_bucket.bucket_name, "key-arn": self.key.key_arn if self.key else None},
              "the results site")
        return {"DeployDataBucket": self.deploy_bucket.bucket_name, "EndpointName": self.endpoint_name,
                "BuildDataBucket": self.build_bucket.bucket_name,
                "MetricNamespace": self.namespace,
                "MonitoringIntervalHours": self.config.workflow_settings["monitoring_interval_hours"]}

    def _read(self, role: iam.IRole, bucket: s3.IBucket, key: kms.IKey | None, folders: tuple[str, ...],
              reason: str) -> None:
        """GetObject on these run folders of another stack's bucket (and its key, through S3)."""
        allow(role, ["s3:GetObject"], [objects_arn(bucket, glob(folder)) for folder in folders],
              wildcard_reason=reason)
        if key:
            allow(role, ["kms:Decrypt"], [key.key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})

    def add_permissions(self) -> None:
        collect = self.functions["CollectTraffic"].function
        allow(collect.role, ["sagemaker:DescribeEndpoint"], [format_arn(
            self, service="sagemaker", resource="endpoint", resource_name=self.endpoint_name)])
        allow(collect.role, ["sagemaker:DescribeEndpointConfig"], [format_arn(
            self, service="sagemaker", resource="endpoint-config", resource_name=f"{self.deploy_prefix}-*")],
              wildcard_reason="DeployApproved names each deployment's endpoint config <prefix>-<uuid>; the function "
                              "describes only the configs of that stack.")
        allow(collect.role, ["sagemaker:DescribeModelPackage"],
              [model_package_versions(self, self.config.job_name_prefix(BuildAndRegisterStack.spec.slug))],
              wildcard_reason="SageMaker numbers the versions of BuildAndRegister's model package group; the "
                              "function describes the deployed version's containers, of that one group only.")
        self._read(collect.role, self.deploy_bucket, self.deploy_key, (CAPTURE, DEPLOYMENT),
                   "DeployApproved keeps each deployment's record and captured traffic under runs/<execution "
                   "name>/; the function reads only those folders of its bucket.")
        allow(collect.role, ["s3:GetObject"], [objects_arn(self.deploy_bucket, f"{GROUND_TRUTH}*")],
              wildcard_reason="Operators upload ground truth beside the capture it labels, named by the hour of the "
                              "predictions, under ground-truth/ of DeployApproved's bucket; only there.")
        allow(collect.role, ["s3:ListBucket"], [bucket_arn(self.deploy_bucket)],
              conditions={"StringLike": {"s3:prefix": [glob(CAPTURE), f"{GROUND_TRUTH}*"]}})
        publish = self.functions["PublishMetrics"].function
        allow(publish.role, ["cloudwatch:PutMetricData"], ["*"],
              conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
              wildcard_reason="PutMetricData has no resource-level permissions; the condition confines it to this "
                              "copy's namespace.")

    def add_triggers(self) -> None:
        """The schedule that runs the monitor; the alarms, the retraining rule and the dashboard of the copy."""
        hours = self.config.workflow_settings["monitoring_interval_hours"]
        role = starter_role(self, service="scheduler.amazonaws.com", who="EventBridge Scheduler, every "
                            f"{hours} hour(s)", state_machine=self.state_machine,
                            state_machine_name=self.job_name_prefix, encryption_key=self.key)
        # At minute 5, so the hour just ended has been written by data capture; the run checks whole hours.
        self.schedule = dead_lettered_schedule(
            self, "Schedule", name=monitor_schedule_name(self.deploy_prefix),
            schedule_expression=f"cron(5 */{hours} * * ? *)" if hours > 1 else "cron(5 * * * ? *)",
            description=f"Checks the traffic of {self.endpoint_name} every {hours} hour(s)",
            state_machine=self.state_machine, role=role,
            # A context attribute EventBridge Scheduler fills in (ISO 8601, UTC): the run checks the hours
            # before it, so a delayed or retried start still checks the same window.
            run_input='{"window_end": "<aws.scheduler.scheduled-time>"}',
            encryption_key=self.key, topic=self.topic, alarm_prefix=self.job_name_prefix)
        self._metrics: dict[tuple, cloudwatch.Metric] = {}  # see _metric
        self.alarms = self._alarms(hours)
        if self.config.workflow_settings["retrain_on_drift"]:
            self._retrain_on_drift()
        self.dashboard = self._dashboard(hours)

    # -- alarms -------------------------------------------------------------------------------------
    def _metric(self, namespace: str, name: str, statistic: str, dimensions: Mapping[str, str],
                period: Duration) -> cloudwatch.Metric:
        """One Metric per description, shared by the alarms and the dashboard (a Metric never changes)."""
        key = (namespace, name, statistic, tuple(dimensions.items()), period)
        if key not in self._metrics:
            self._metrics[key] = cloudwatch.Metric(namespace=namespace, metric_name=name, statistic=statistic,
                                                   dimensions_map=dict(dimensions), period=period)
        return self._metrics[key]

    def _monitor_metric(self, name: str, hours: int, statistic: str = "Maximum") -> cloudwatch.Metric:
        return self._metric(self.namespace, name, statistic, {"EndpointName": self.endpoint_name},
                            Durations.hours(hours))

    def _endpoint_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return self._metric("AWS/SageMaker", name, statistic,
                            {"EndpointName": self.endpoint_name, "VariantName": VARIANT}, Durations.minutes(5))

    def _execution_metric(self, workflow: str, name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        machine = format_arn(self, service="states", resource="stateMachine", resource_name=self._machine(workflow),
                             arn_format=ArnFormat.COLON_RESOURCE_NAME)
        return self._metric("AWS/States", name, statistic, {"StateMachineArn": machine}, Durations.minutes(5))

    def _machine(self, workflow: str) -> str:
        """Each workflow's state machine is named by its prefix (stacks/constructs/workflow.py)."""
        return self.config.job_name_prefix(WORKFLOWS[workflow].spec.slug)

    def _alarms(self, hours: int) -> dict[str, cloudwatch.Alarm]:
        """Alarm name suffix -> alarm, each notifying the copy's topic; named <prefix>-<suffix>."""
        above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        below = {"attribution"}  # the alarms that fire under their threshold
        wanted = {
            "drift": (self._monitor_metric("DriftShare", hours), DRIFT_SHARE,
                      f"At least {DRIFT_SHARE:.0%} of the features of {self.endpoint_name}'s traffic drifted from "
                      "the deployed version's training data (see the monitor run's report/report.html)"),
            "data-quality": (self._monitor_metric("DataQualityIssues", hours), 1,
                             f"{self.endpoint_name}'s traffic has missing, out-of-range, unseen or non-numeric "
                             "values beyond what training saw"),
            "model-quality": (self._monitor_metric("GateMetricWorsening", hours), QUALITY_WORSENING,
                              f"On the ground truth that arrived, {self.endpoint_name}'s gate metric is "
                              f"{QUALITY_WORSENING} or more worse than registered with the deployed version (below, "
                              f"or for RMSE and MAE {QUALITY_WORSENING:.0%} above)"),
            "bias": (self._monitor_metric("BiasGapWidening", hours), BIAS_WIDENING,
                     f"On the ground truth that arrived, the gap between the groups of a bias column on "
                     f"{self.endpoint_name}'s gate metric is {BIAS_WIDENING} or more wider than on the test set"),
            "attribution": (self._monitor_metric("AttributionNDCG", hours, "Minimum"), NDCG_DRIFT,
                            f"The built-in XGBoost model's feature attributions (its SHAP values) on "
                            f"{self.endpoint_name}'s traffic rank the features unlike on its training sample "
                            f"(nDCG below {NDCG_DRIFT}): other features now drive its answers"),
            "endpoint-errors": (self._endpoint_metric("Invocation5XXErrors", "Sum"), 1,
                                f"{self.endpoint_name} answered with server errors (5XX)"),
            "endpoint-latency": (self._endpoint_metric("ModelLatency", "p90"), LATENCY_P90_MICROSECONDS,
                                 f"{self.endpoint_name}'s model took over a second for a tenth of its requests"),
        }
        alarms = {}
        for suffix, (metric, threshold, description) in wanted.items():
            alarm = cloudwatch.Alarm(
                self, f"Alarm{suffix.title().replace('-', '')}", alarm_name=f"{self.job_name_prefix}-{suffix}",
                alarm_description=description, metric=metric, threshold=threshold, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD if suffix in below else above,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarms[suffix] = alarm
        return alarms

    def _retrain_on_drift(self) -> None:
        """The drift alarm's change to ALARM starts BuildAndRegister on what is under its incoming/ folder (as its
        retrain_schedule does); the new version waits for approval as always."""
        build = sfn.StateMachine.from_state_machine_name(self, "Build", self._machine("BuildAndRegister"))
        rule_name = f"{self.job_name_prefix}-retrain-on-drift"
        start_on_event(
            self, "OnDrift", rule_name=rule_name, state_machine=build,
            description=f"Retrains {self._machine('BuildAndRegister')} when {self.alarms['drift'].alarm_name} fires",
            pattern=events.EventPattern(source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                                        resources=[self.alarms["drift"].alarm_arn],
                                        detail={"state": {"value": ["ALARM"]}}),
            run_input={"dataset_uri": f"s3://{self.build_bucket.bucket_name}/{INCOMING}"},
            holds="drift alarm state changes", encryption_key=self.key, topic=self.topic,
            role=starter_role(self, service="events.amazonaws.com", who="EventBridge, when the drift alarm fires",
                              state_machine=build, state_machine_name=self._machine("BuildAndRegister"),
                              encryption_key=self.build_key))

    # -- dashboard ----------------------------------------------------------------------------------
    def _dashboard(self, hours: int) -> cloudwatch.Dashboard:
        """A widget per metric: each workflow's executions and durations, job times, the endpoint's traffic,
        errors and latency, the monitor's drift and quality, and the alarms."""
        board = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{self.job_name_prefix}-dashboard",
                                     default_interval=Durations.days(7))
        graph = lambda title, metrics: cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6)  # noqa: E731
        board.add_widgets(*[graph(f"{w}: {m}", [self._execution_metric(w, m)])
                            for w in WORKFLOWS for m in EXECUTION_METRICS])
        board.add_widgets(*[graph(f"{w}: ExecutionTime", [self._execution_metric(w, "ExecutionTime", "Average"),
                                                          self._execution_metric(w, "ExecutionTime", "Maximum")])
                            for w in WORKFLOWS])
        board.add_widgets(*[graph(f"SageMaker job time: {job}", [cloudwatch.Metric(
            namespace="AWS/States", metric_name="ServiceIntegrationTime", statistic="Average",
            dimensions_map={"ServiceIntegrationResourceArn": f"arn:{self.partition}:states:::sagemaker:{job}"},
            period=Durations.hours(1))]) for job in SYNC_JOBS])
        board.add_widgets(*[graph(f"{self.endpoint_name}: {m}", [self._endpoint_metric(
            m, "p90" if m.endswith("Latency") else "Sum")]) for m in ENDPOINT_METRICS])
        board.add_widgets(*[graph(f"Monitor: {meaning} ({name})", [self._monitor_metric(name, hours)])
                            for name, meaning in MONITOR_METRICS.items()])
        # Each workflow's stack alarms on its own failed and timed-out runs (stacks/constructs/notifications.py).
        runs = [cloudwatch.Alarm.from_alarm_name(self, f"{w}{suffix.title().replace('-', '')}",
                                                 f"{self._machine(w)}-{suffix}")
                for w in WORKFLOWS if w != self.node.id for suffix in RUN_ALARMS]
        # This stack's alarms: the monitor's, its runs', and those of the queues that keep what it gave up on.
        own = [*self.alarms.values(), *self.run_alarms.values()]
        own += [c for c in self.node.find_all() if isinstance(c, cloudwatch.Alarm) and c not in own]
        board.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=[*own, *runs], width=24))
        return board
