"""The delivery pipeline: what it runs, in which order, with which permissions, and every cdk-nag pack clean."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from offline.sources.assembly import StackResolver
from offline.cloud.account import LocalCloud
from stacks.settings.config import KitConfig
from stacks.app.kit import WORKFLOWS, workflow_settings
from stacks.app.pipeline import TOOLS, context_arguments
from tests.cfn import REGION, arn, join, of_type, resource
from tests.conftest import CDK_CONTEXT, PIPELINE, ROOT
from tests.test_iam import iam_of, statements
from tests.test_snapshots import masked


@pytest.fixture(scope="module")
def pipeline(synthesized):
    return synthesized["pipeline"]


@pytest.fixture(scope="module")
def template(pipeline):
    return pipeline.templates["Pipeline"]


def stages(template: dict) -> list[tuple[str, list[str]]]:
    (codepipeline,) = of_type(template, "AWS::CodePipeline::Pipeline").values()
    assert codepipeline["Properties"]["PipelineType"] == "V2"
    return [(s["Name"], [a["Name"] for a in s["Actions"]]) for s in codepipeline["Properties"]["Stages"]]


def test_pipeline_tests_and_synthesizes_updates_itself_deploys_dev_checks_approves_prod(template):
    order = stages(template)
    assert [name for name, _ in order] == ["Source", "Build", "UpdatePipeline", "Assets", "dev", "prod"]
    dev, prod = dict(order)["dev"], dict(order)["prod"]
    assert dev[-1] == "CheckDev" and prod[0] == "PromoteToProd"
    assert {a.split(".")[0] for a in prod[1:]} == set(WORKFLOWS)
    assert {a.split(".")[0] for a in dev[:-1]} == {*WORKFLOWS, "DeliveryCheck"}  # the role the check assumes


def test_every_role_a_service_assumes_is_assumed_only_for_this_account(template):
    """CDK Pipelines' roles and the check's: the service principal (CodeBuild, CodePipeline) with aws:SourceAccount,
    as the workflow stacks' roles have it; roles the pipeline's own role assumes trust an account, not a service."""
    services = []
    for role in of_type(template, "AWS::IAM::Role").values():
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            service = statement["Principal"].get("Service")
            if service:
                services.append(service)
                assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, \
                    service
    assert {"codebuild.amazonaws.com", "codepipeline.amazonaws.com"} <= set(services)


def buildspec(template: dict, path: str) -> dict:
    return json.loads(resource(template, path)["Properties"]["Source"]["BuildSpec"])


def test_synth_step_runs_the_readme_test_command_and_synthesizes_what_was_deployed(template):
    spec = buildspec(template, "Pipeline/Pipeline/Build/Synth/CdkBuildProject/Resource")
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "22"}
    test, synth = spec["phases"]["build"]["commands"]
    assert test == "make test"
    arguments = shlex.split(shlex.split(synth)[2].removeprefix("CDK_ARGS="))
    context = dict(pair.split("=", 1) for pair in arguments[1::2])
    assert context == PIPELINE and KitConfig.from_context(context).pipeline


def test_context_arguments_rebuild_the_same_configuration():
    settings = workflow_settings()
    config = KitConfig.from_context({**CDK_CONTEXT, **PIPELINE, "encryption": "kms", "max_job_runtime_minutes": "30",
                                     "allowed_instance_types": "ml.m5.large,ml.c5.xlarge",
                                     "training_instance_type": "ml.c5.xlarge", "destroy_data_on_delete": "true"},
                                    settings)
    arguments = shlex.split(context_arguments(config))
    assert KitConfig.from_context(dict(pair.split("=", 1) for pair in arguments[1::2]), settings) == config


def test_self_mutation_and_assets_use_the_pinned_tools(pipeline, template):
    mutate = buildspec(template, "Pipeline/UpdatePipeline/SelfMutation/Resource")
    assert f"npm install -g aws-cdk@{TOOLS['aws-cdk']}" in mutate["phases"]["install"]["commands"]
    # Asset projects keep their buildspec as a file in the assembly.
    assets = [(pipeline.outdir / p["Properties"]["Source"]["BuildSpec"]).read_text()
              for p in of_type(template, "AWS::CodeBuild::Project").values()
              if "/Assets/" in p["Metadata"]["aws:cdk:path"]]
    assert assets and all(f"npm install -g cdk-assets@{TOOLS['cdk-assets']}" in a for a in assets)


def test_pinned_asset_publisher_reads_this_cdk_versions_assemblies(synthesized):
    """cdk-assets' latest release refuses the cloud assembly schema this aws-cdk-lib writes; the pin reads it."""
    manifest = synthesized["default"].outdir / "TrainAndTransform.assets.json"
    listed = subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk-assets"), "ls", "-p", str(manifest)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and ".zip" in listed.stdout, listed.stderr


# The dev state machines: in the order the stage builds its stacks, and as CDK sorts a statement's resources.
DEV_MACHINES = [f"mlkit-dev-{cls.spec.slug}" for cls in WORKFLOWS.values()]
CHECK_ROLE = "mlkit-dev-delivery-check"


def test_dev_check_assumes_one_role_in_dev_which_may_only_start_and_watch_its_own_executions(pipeline, template):
    checker = resource(template, "CheckDevRole/Resource")["Properties"]
    assert checker["RoleName"] == "mlkit-pipeline-check"
    own = [s for s in resource(template, "CheckDevRole/DefaultPolicy/Resource")["Properties"]["PolicyDocument"][
        "Statement"] if "sts:AssumeRole" in json.dumps(s)]
    assert own == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": join(
        "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":role/{CHECK_ROLE}")}]
    check = pipeline.templates["dev-DeliveryCheck"]
    role = resource(check, "dev/DeliveryCheck/Role/Resource")["Properties"]
    assert role["RoleName"] == CHECK_ROLE
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": join(
            "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/mlkit-pipeline-check")}}]
    names = sorted(DEV_MACHINES)
    assert statements(check, "dev/DeliveryCheck/Role") == [
        {"Action": "states:StartExecution", "Effect": "Allow",
         "Resource": [arn("states", f"stateMachine:{name}") for name in names]},
        {"Action": "states:DescribeExecution", "Effect": "Allow",
         "Resource": [arn("states", f"execution:{name}:pipeline-check-*") for name in names]},
    ]


def test_every_nag_pack_is_clean_and_each_acceptance_is_on_its_resource(pipeline):
    for plugin in pipeline.report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]
        for finding in plugin["suppressedViolations"]:
            assert {c["constructPath"] for c in finding["violatingConstructs"]} == {finding["acknowledgedAt"]}
            assert len(finding["reason"]) >= 60, finding["acknowledgedId"]


def test_pipeline_template_and_iam_match_reviewed_snapshots(template, snapshot):
    extension = snapshot.use_extension(JSONSnapshotExtension)
    assert masked(template) == extension(name="template")
    assert masked(iam_of(template)) == extension(name="iam")


def comparable(template: dict) -> str:
    """A template without construct paths and the one ID CDK derives from the full path (a Lambda permission's):
    what deploys, whether the stage sits in the app or in the pipeline."""
    resources = {k: {key: v for key, v in r.items() if key != "Metadata"} for k, r in template["Resources"].items()}
    return re.sub(r"AllowEventRule\w+", "AllowEventRule", json.dumps(masked(resources), sort_keys=True))


def test_stages_in_the_pipeline_are_the_same_copies_as_the_plain_app_builds(pipeline, synthesized):
    staged = {name: comparable(t) for name, t in synthesized["stage-dev"].templates.items()}
    in_pipeline = {name: comparable(t) for name, t in pipeline.templates.items()
                   if name.startswith("dev-") and name != "dev-DeliveryCheck"}
    assert in_pipeline == staged


def check_environment(template: dict, cloud) -> dict[str, str]:
    """CheckDev's environment as CodePipeline sets it: each variable from its dev stack's output, here the offline
    copy's (the deploy action with the variable's namespace names the stack)."""
    (codepipeline,) = of_type(template, "AWS::CodePipeline::Pipeline").values()
    actions = [a for s in codepipeline["Properties"]["Stages"] for a in s["Actions"]]
    stacks = {a["Namespace"]: a["Configuration"]["StackName"].removeprefix("dev-") for a in actions if "Namespace" in a}
    (check,) = [a for a in actions if a["Name"] == "CheckDev"]
    variables = {}
    for variable in json.loads(check["Configuration"]["EnvironmentVariables"]):
        namespace, output = re.fullmatch(r"#\{(\w+)\.(\w+)\}", variable["value"]).groups()
        variables[variable["name"]] = cloud.workflows[stacks[namespace]].outputs[output]
    return variables


def project_environment(template: dict) -> dict[str, str]:
    """The variables the CheckDev project sets itself (its check role and region), resolved as offline."""
    project = resource(template, "Pipeline/Pipeline/dev/CheckDev/CheckDev/Resource")["Properties"]
    resolver = StackResolver("Pipeline", template)
    return {v["Name"]: resolver.resolve(v["Value"]) for v in project["Environment"]["EnvironmentVariables"]}


def run_check(template: dict, cloud, tmp_path, build: int, **changed: str) -> subprocess.CompletedProcess:
    """CheckDev's buildspec commands as build number `build`, in a shell, their AWS CLI calls answered by the
    offline dev stage; `sleep` is shortened (the runs take seconds offline). Waits until every run has ended."""
    spec = buildspec(template, "Pipeline/Pipeline/dev/CheckDev/CheckDev/Resource")
    (tmp_path / "sleep").write_text("#!/bin/sh\nexec /bin/sleep 0.2\n")
    (tmp_path / "sleep").chmod(0o755)
    # The AWS CLI make installs for this test (.venv-awscli), ahead of any other on the machine.
    environment = {"PATH": f"{tmp_path}:{ROOT / '.venv-awscli' / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path),
                   "CODEBUILD_BUILD_NUMBER": str(build),
                   **cloud.cli_environment(), **project_environment(template), **check_environment(template, cloud),
                   **changed}
    done = subprocess.run(["sh", "-c", "\n".join(spec["phases"]["build"]["commands"])], env=environment,
                          capture_output=True, text=True, timeout=900)
    runs = [e["executionArn"] for arn in cloud.machines.values()
            for e in cloud.sfn.list_executions(stateMachineArn=arn)["executions"]]
    cloud.wait(runs)
    return done


@pytest.fixture(scope="module")
def dev_stage(pipeline):
    with LocalCloud(pipeline.outdir, stage="dev") as cloud:
        yield cloud


def test_dev_check_passes_with_every_workflows_declared_check(template, dev_stage, tmp_path):
    done = run_check(template, dev_stage, tmp_path, 1)
    assert done.returncode == 0, done.stdout + done.stderr
    ended = done.stdout.splitlines()
    assert len(ended) == len(WORKFLOWS) and all(re.search(r": (\S+) \(expected \1\)$", line) for line in ended), ended
    assert sum(line.endswith("(expected SUCCEEDED:None)") for line in ended) == len(WORKFLOWS) - 1
    assert any(":mlkit-dev-da:" in line and "FAILED:ModelPackageNotFound" in line for line in ended), ended
    assert dev_stage.endpoints.assumed[-1] == "arn:aws:iam::123456789012:role/mlkit-dev-delivery-check"


def test_dev_check_fails_when_a_workflows_check_is_wrong(template, dev_stage, tmp_path):
    """The input every workflow once got: DeployApproved refuses it, so the delivery must stop before prod."""
    done = run_check(template, dev_stage, tmp_path, 2, DEPLOYAPPROVED_CHECK_INPUT='{"rows": 500, "seed": 1}')
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(
        ":mlkit-dev-da:pipeline-check-2: FAILED:InvalidExecutionInput (expected FAILED:ModelPackageNotFound)"), done.stdout


# -- stages in separate accounts ------------------------------------------------------------------
PIPELINE_ACCOUNT, STAGE_ACCOUNTS = "111111111111", {"dev": "222222222222", "prod": "333333333333"}
BOOTSTRAP_ROLE = r"cdk-hnb659fds-(deploy|cfn-exec|file-publishing)-role-{account}-eu-west-1"


@pytest.fixture(scope="module")
def cross_account(synthesized):
    return synthesized["pipeline-cross-account-kms"]


def strings(node, path=()):
    """Every text of a template with where it sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, (*path, index))
    elif isinstance(node, str):
        yield path, node


def test_cross_account_pipeline_is_nag_clean(cross_account):
    test_every_nag_pack_is_clean_and_each_acceptance_is_on_its_resource(cross_account)


def test_the_pipeline_grants_other_accounts_nothing_wider_than_their_bootstrap_roles_and_the_check_role(cross_account):
    template = cross_account.templates["Pipeline"]
    named = {}
    for path, text in strings(template["Resources"]):
        for stage, account in STAGE_ACCOUNTS.items():
            if account in text and path[-1] == "BuildSpec":  # the settings the pipeline synthesizes with
                assert f"-c {stage}_environment=aws://{account}/eu-west-1" in text
            elif account in text:
                named.setdefault(stage, set()).add(text)
                allowed = BOOTSTRAP_ROLE.format(account=account) + ("|mlkit-dev-delivery-check" if stage == "dev" else "")
                assert re.fullmatch(rf"(arn:\$\{{AWS::Partition\}})?:iam::{account}:role/({allowed})", text), (path, text)
    assert set(named) == set(STAGE_ACCOUNTS)
    # No stage account is trusted whole (its ":root" or a bare account ID) in the bucket or key policies.
    for path, text in strings(template["Resources"]):
        assert text not in STAGE_ACCOUNTS.values() and not re.search(r"(222222222222|333333333333):root", text), path


def deploy_actions(template: dict, stage: str) -> list[dict]:
    (codepipeline,) = of_type(template, "AWS::CodePipeline::Pipeline").values()
    (actions,) = [s["Actions"] for s in codepipeline["Properties"]["Stages"] if s["Name"] == stage]
    return [a for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation"]


def role_in(account: str, name: str) -> dict:
    return join("arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:role/{name}")


def test_each_stage_deploys_with_its_own_accounts_bootstrap_roles(cross_account):
    template = cross_account.templates["Pipeline"]
    for stage, account in STAGE_ACCOUNTS.items():
        actions = deploy_actions(template, stage)
        assert actions and {json.dumps(a["RoleArn"]) for a in actions} == {
            json.dumps(role_in(account, f"cdk-hnb659fds-deploy-role-{account}-eu-west-1"))}
        assert {json.dumps(a["Configuration"].get("RoleArn")) for a in actions if "RoleArn" in a["Configuration"]} == {
            json.dumps(role_in(account, f"cdk-hnb659fds-cfn-exec-role-{account}-eu-west-1"))}


def test_assets_are_published_into_each_stage_accounts_bootstrap_bucket_by_its_own_role(cross_account):
    template = cross_account.templates["Pipeline"]
    assumed = [s for s in resource(template, "Pipeline/Assets/FileRole/DefaultPolicy/Resource")["Properties"][
        "PolicyDocument"]["Statement"] if s["Action"] == "sts:AssumeRole"]
    assert assumed == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-file-publishing-role-{account}-eu-west-1"}
        for account in STAGE_ACCOUNTS.values()]}]
    for stage, account in STAGE_ACCOUNTS.items():
        manifests = list((cross_account.outdir / f"assembly-Pipeline-{stage}").glob("*.assets.json"))
        destinations = [d for m in manifests for f in json.loads(m.read_text())["files"].values()
                        for d in f["destinations"].values()]
        assert destinations and all(
            d["bucketName"] == f"cdk-hnb659fds-assets-{account}-eu-west-1" and d["assumeRoleArn"] ==
            f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-file-publishing-role-{account}-eu-west-1"
            for d in destinations), destinations


def test_dev_trusts_only_the_pipelines_check_role_and_the_check_assumes_it_there(cross_account):
    pipeline = cross_account.templates["Pipeline"]
    check = cross_account.templates["dev-DeliveryCheck"]
    assert resource(check, "dev/DeliveryCheck/Role/Resource")["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow",
         "Principal": {"AWS": role_in(PIPELINE_ACCOUNT, "mlkit-pipeline-check")}}]
    environment = {v["Name"]: v["Value"] for v in resource(pipeline, "Pipeline/Pipeline/dev/CheckDev/CheckDev/Resource")[
        "Properties"]["Environment"]["EnvironmentVariables"]}
    assert environment == {"CHECK_ROLE_ARN": role_in(STAGE_ACCOUNTS["dev"], "mlkit-dev-delivery-check"),
                           "CHECK_REGION": "eu-west-1"}
    # Nothing else in a stage names the pipeline's account.
    for name, template in cross_account.templates.items():
        if name != "Pipeline":
            texts = [text for _, text in strings(template["Resources"]) if PIPELINE_ACCOUNT in text]
            assert texts == ([":iam::111111111111:role/mlkit-pipeline-check"] if name == "dev-DeliveryCheck" else []), name


def test_dev_check_uses_the_stage_keys_only_through_step_functions(cross_account):
    """Under encryption=kms the check reads its runs' input and output through Step Functions only, with dev's own
    keys (the stage's account and region are literal where the stage names its environment)."""
    check = cross_account.templates["dev-DeliveryCheck"]
    dev = f"eu-west-1:{STAGE_ACCOUNTS['dev']}"
    assert statements(check, "dev/DeliveryCheck/Role")[-1] == {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": f"arn:aws:kms:{dev}:key/*",
        "Condition": {"StringEquals": {"kms:ViaService": "states.eu-west-1.amazonaws.com"},
                      "ForAnyValue:StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": [
                          f"arn:aws:states:{dev}:stateMachine:{name}" for name in DEV_MACHINES]}}}
