"""Delivery through CDK Pipelines: source → tests and synthesis → self-update → dev → check → approval → prod."""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Mapping

from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import pipelines
from constructs import Construct

from stacks.cdk.compliance import INLINE_POLICY_REASON, accept, acknowledge_generated_policies
from stacks.cdk.permissions import condition_service_grants
from stacks.settings.config import SETTINGS, KitConfig
from stacks.constructs.data_bucket import DataBucket
from stacks.app.delivery_check import check_role_name
from stacks.app.stage import KitStage
from stacks.cdk.tokens import AWS, Durations
from stacks.workflows.workflow_stack import workflow_settings

ROOT = Path(__file__).resolve().parents[2]
TOOLS = json.loads((ROOT / "package.json").read_text())["devDependencies"]  # the pinned CLI and asset publisher
# CodeBuild's standard 7.0 image: the Python the kit's requirements are pinned for, and npm to install the
# pinned Node from package.json (the image's own Node is not used).
RUNTIMES = {"python": "3.11", "nodejs": "22"}
PIPELINE_SETTINGS = ("pipeline_repository", "pipeline_connection_arn", "pipeline_branch")
# Why each wildcard in the policies CDK Pipelines generates cannot be narrower (by the cdk-nag finding ID).
GENERATED_WILDCARDS = (
    (r"^Action::s3:(Abort|DeleteObject|GetBucket|GetObject|List)\*$",
     "CDK Pipelines grants reading and writing pipeline artifacts with S3's action groups; every statement "
     "holding them names only this pipeline's artifact bucket and its objects."),
    (r"^Action::kms:(ReEncrypt|GenerateDataKey)\*$",
     "The artifact key's grant uses KMS action groups to encrypt and decrypt artifacts; it names only this "
     "pipeline's artifact key."),
    (r"^Resource::<ArtifactsBucket\w+\.Arn>/\*$",
     "CodePipeline names artifact objects per execution; access is limited to this pipeline's artifact bucket."),
    (r":log-group:/aws/codebuild/",
     "CodeBuild names each build's log stream at run time in the project's log group (the asset role: in the "
     "asset projects' groups, named by CDK at synthesis)."),
    (r":report-group/",
     "CodeBuild names test-report groups after the project at run time; no project here publishes reports."),
    (r"^Resource::arn:\*:iam::(<AWS::AccountId>|\d{12}):role/\*$",
     "Self-mutation assumes the CDK bootstrap roles of this account, whose names carry the bootstrap "
     "qualifier; CDK limits the statement to roles tagged aws-cdk:bootstrap-role."),
    (r"^Resource::\*$",
     "CDK Pipelines' own statements: self-mutation reads stack status (cloudformation:DescribeStacks) and lists "
     "the bootstrap bucket, and the asset role starts and watches the asset CodeBuild projects, whose names "
     "CDK chooses during the build of the pipeline."),
)


def context_arguments(config: KitConfig) -> str:
    """`-c key=value` for every setting that differs from its default, so the pipeline's own synthesis builds
    exactly what was deployed by hand the first time (pipeline settings included)."""
    pairs = []
    for key, (default, parse) in {**SETTINGS, **workflow_settings()}.items():
        value = getattr(config, key) if key in SETTINGS else config.workflow_settings[key]
        if value != parse(key, default) and value is not None:
            text = ",".join(value) if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool) \
                else str(value)
            pairs.append(f"-c {key}={shlex.quote(text)}")
    return " ".join(pairs)


def check_commands(checks: Mapping[str, str]) -> list[str]:
    """Assume the stage's check role ($CHECK_ROLE_ARN, in $CHECK_REGION), start one run of every workflow of the
    stage (variable prefix -> the outcome its DeliveryCheck expects, as status:error), then wait for each and fail
    unless it ended as expected. The state machine ARNs and inputs come from the stage's outputs, as
    <prefix>_STATE_MACHINE and <prefix>_CHECK_INPUT."""
    assume = ('credentials=$(aws sts assume-role --role-arn "$CHECK_ROLE_ARN" --role-session-name '
              '"pipeline-check-$CODEBUILD_BUILD_NUMBER" --query "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]" '
              '--output text) || exit 1; set -- $credentials; export AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 '
              'AWS_SESSION_TOKEN=$3 AWS_REGION=$CHECK_REGION AWS_DEFAULT_REGION=$CHECK_REGION')
    start = [f'run=$(aws stepfunctions start-execution --state-machine-arn "${prefix}_STATE_MACHINE" '
             f'--name "pipeline-check-$CODEBUILD_BUILD_NUMBER" --input "${prefix}_CHECK_INPUT" '
             f'--query executionArn --output text) || exit 1; runs="$runs $run={outcome}"'
             for prefix, outcome in sorted(checks.items())]
    wait = ('for check in $runs; do execution=${check%%=*}; expected=${check#*=}; '
            'while outcome=$(aws stepfunctions describe-execution --execution-arn "$execution" '
            '--query "[status, error]" --output text) && [ "${outcome%%[[:space:]]*}" = RUNNING ]; do sleep 30; '
            'done; set -- $outcome; echo "$execution: $1:${2:-} (expected $expected)"; '
            '[ "$1:${2:-}" = "$expected" ] || exit 1; done')
    return ["\n".join([assume, 'runs=""', *start, wait])]


def stage_environment(config: KitConfig, stage: str) -> Environment | None:
    """Where a stage deploys: `<stage>_environment`, or (None) the pipeline's own account and region."""
    where = config.environment(stage)
    return Environment(account=where[0], region=where[1]) if where else None


class PipelineStack(Stack):
    """A self-mutating CodePipeline (V2) that tests and synthesizes the kit from its repository, deploys the dev
    stage, runs every workflow there once, waits for a person's approval, and deploys the prod stage."""

    def __init__(self, scope: Construct, construct_id: str, *, config: KitConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, description="Delivers the SageMaker workflow kit to dev and prod",
                         **kwargs)
        key = kms.Key(self, "ArtifactsKey", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                      description="Encrypts the delivery pipeline's artifacts and build logs")
        artifacts = DataBucket(
            self, "Artifacts", destroy_on_delete=False, encryption_key=key,
            noncurrent_version_expiration=Durations.days(30), access_log_expiration=Durations.days(365),
            replication_reason="Pipeline artifacts are rebuilt from the repository on every run; replicating them "
                               "to another region adds no recovery the repository does not already give.")
        source = pipelines.CodePipelineSource.connection(
            config.pipeline_repository, config.pipeline_branch, connection_arn=config.pipeline_connection_arn)
        synth = pipelines.CodeBuildStep(
            "Synth", input=source, primary_output_directory="cdk.out",
            partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": RUNTIMES}}}),
            commands=["make test", f"make synth CDK_ARGS={shlex.quote(context_arguments(config))}"])
        self.pipeline = pipelines.CodePipeline(
            self, "Pipeline", synth=synth, pipeline_type=codepipeline.PipelineType.V2, self_mutation=True,
            cli_version=TOOLS["aws-cdk"], cdk_assets_cli_version=TOOLS["cdk-assets"], artifact_bucket=artifacts.bucket,
            publish_assets_in_parallel=False, cross_account_keys=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
                timeout=Durations.hours(1)))

        stage_config = dataclasses.replace(config, **dict.fromkeys(PIPELINE_SETTINGS[:2]))
        # CheckDev runs as a role of a fixed name, which the dev stage's check role trusts (in its own account);
        # this role may only assume that one.
        checker_name = f"{config.name_prefix}-pipeline-check"
        checker = iam.Role(self, "CheckDevRole", role_name=checker_name,
                           assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                           description="Runs the delivery pipeline's check of the dev stage")
        pipeline_account = (config.environment("pipeline") or (AWS.ACCOUNT_ID,))[0]
        dev_account, dev_region = config.environment("dev") or (AWS.ACCOUNT_ID, self.region)
        dev = KitStage(self, "dev", config=stage_config, env=stage_environment(config, "dev"),
                       checked_by=f"arn:{AWS.PARTITION}:iam::{pipeline_account}:role/{checker_name}")
        check_role = f"arn:{AWS.PARTITION}:iam::{dev_account}:role/{check_role_name(config.name_prefix, 'dev')}"
        checker.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[check_role]))
        outputs = {f"{stack_id.upper()}_{name}": output for stack_id, stack in dev.stacks.items()
                   for name, output in (("STATE_MACHINE", stack.state_machine_arn_output),
                                        ("CHECK_INPUT", stack.check_input_output))}
        checks = {stack_id.upper(): stack.spec.check.outcome for stack_id, stack in dev.stacks.items()}
        check = pipelines.CodeBuildStep(
            "CheckDev", env_from_cfn_outputs=outputs, commands=check_commands(checks), role=checker,
            env={"CHECK_ROLE_ARN": check_role, "CHECK_REGION": dev_region},
            timeout=Durations.minutes(config.workflow_timeout_minutes + 15))
        self.pipeline.add_stage(dev, post=[check])
        prod = KitStage(self, "prod", config=stage_config, env=stage_environment(config, "prod"))
        self.pipeline.add_stage(prod, pre=[pipelines.ManualApprovalStep(
            "PromoteToProd", comment="dev ran every workflow successfully; approve to deploy the same build to prod")])
        self.pipeline.build_pipeline()  # now, so the generated roles and projects can be checked and accepted here
        self._accept_generated(self.pipeline)
        self._accept_generated(checker)  # CDK Pipelines adds its artifact and log access to the check's role
        self._confine_service_trust(pipeline_account)

    def _confine_service_trust(self, account: str) -> None:
        """CDK Pipelines trusts codebuild.amazonaws.com and codepipeline.amazonaws.com with no condition; as the
        workflow stacks' roles do, each service may assume a role only on behalf of this account (both services'
        guides on cross-service confused deputy prevention use aws:SourceAccount)."""
        for role in self.node.find_all():
            if isinstance(role, iam.CfnRole):
                condition_service_grants(role, "AssumeRolePolicyDocument",
                                         self.resolve(role.assume_role_policy_document),
                                         ("codebuild.amazonaws.com", "codepipeline.amazonaws.com"),
                                         {"StringEquals": {"aws:SourceAccount": account}})

    def _accept_generated(self, scope: Construct) -> None:
        """Findings on what CDK Pipelines generates, each on its own resource with its reason."""
        acknowledge_generated_policies(scope, GENERATED_WILDCARDS)
        for construct in scope.node.find_all():
            if isinstance(construct, iam.CfnPolicy):
                accept(construct, "inline-policy", INLINE_POLICY_REASON)
            elif isinstance(construct, codebuild.CfnProject):
                accept(construct, "codebuild-oauth",
                       "The projects take their source from CodePipeline, which reads the repository through a "
                       "CodeConnections connection; no project holds a repository URL or credentials. The rule "
                       "flags every project that does not use OAuth, whatever its source.")
