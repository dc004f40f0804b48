"""Exact IAM statements of every role: the least-privilege claim, proven statement by statement."""
from __future__ import annotations

import json
import re

import pytest

from syrupy.extensions.json import JSONSnapshotExtension

from stacks.asl.definition import integration_of, placeholders, task_states
from stacks.settings.images import IMAGES
from stacks.asl.integrations import SERVICE_INTEGRATIONS
from stacks.app.kit import WORKFLOWS as REGISTERED
from tests.conftest import expanded_definition
from tests.test_snapshots import masked
from tests.cfn import ACCOUNT, PARTITION, REGION, arn, get_att, join, logical_id, of_type, ref, resource
from tests.conftest import CONFIGURATIONS, ROOT, WORKFLOW_IDS


def declared(stack: str) -> dict:
    """What a workflow's module and ASL declare that its IAM must follow (every statement is still asserted
    whole, in the tests and in the reviewed IAM snapshots)."""
    spec = REGISTERED[stack].spec
    definition = expanded_definition(REGISTERED[stack])
    used = [SERVICE_INTEGRATIONS[integration_of(n, s, source=spec.definition)] for n, s in task_states(definition)]
    return {"prefix": f"mlkit-{spec.slug}", "reads": sorted(spec.reads), "writes": sorted(spec.writes),
            "bucket_reads": sorted(spec.job_bucket_reads),
            "repositories": sorted((IMAGES[p].repository, IMAGES[p].mapping) for p in placeholders(definition)
                                   if p in IMAGES),
            "job_log_groups": sorted({i.job_log_group.rsplit("/", 1)[1] for i in used if i.job_log_group}),
            "jobs": {i.stoppable_job: i.sagemaker_resources[0] for i in used if i.stoppable_job},
            "endpoints": any("sagemaker:CreateEndpoint" in i.actions for i in used),
            "assets": len(spec.assets) + len(spec.source_dirs), "reads_from": [f"mlkit-{REGISTERED[s].spec.slug}" for s in spec.reads_from],
            "grants_own": bool(spec.reads_from)}


# What the two sample workflows' state machine roles hold, in the order their ASL first needs it (asserted
# about these two specifically; every workflow's roles are in the IAM snapshots).
SAMPLE_JOBS = {"TrainAndTransform": ["Training", "Transform"],
               "PreprocessAndTrain": ["Processing", "Training", "Transform"]}
XRAY = {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"}
# Actions AWS defines without resource-level permissions: the only ones allowed on Resource "*".
STAR_ACTIONS = {
    "xray:PutTelemetryRecords", "xray:PutTraceSegments", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
    "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData",
}


def statements(template: dict, role_path: str) -> list[dict]:
    return resource(template, f"{role_path}/DefaultPolicy/Resource")["Properties"]["PolicyDocument"]["Statement"]


def trust(template: dict, role_path: str) -> list[dict]:
    return resource(template, f"{role_path}/Resource")["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def one_or_list(items: list) -> object:
    return items[0] if len(items) == 1 else items


def bucket_objects(template: dict, pattern: str) -> dict:
    return join(get_att(template, "Data/Bucket/Resource"), f"/{pattern}")


def service_trust(service: str) -> list[dict]:
    """Only the one service may assume the role, and only on behalf of this account (confused deputy)."""
    return [{"Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
             "Effect": "Allow", "Principal": {"Service": service}}]


ASSETS_BUCKET = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
ASSET_KEY = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]+)+$")  # <content hash>.<the file's extensions>


@pytest.fixture
def workflow(workflow_id, templates):
    return templates[workflow_id], declared(workflow_id)


@pytest.fixture
def template(workflow):
    return workflow[0]


def function_basics(template: dict, function: str) -> list[dict]:
    """What every kit function's role holds: writing to its own log group, and X-Ray."""
    return [{"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
             "Resource": get_att(template, f"{function}/Logs/Resource")}, XRAY]


def test_validate_input_function_role(template):
    assert trust(template, "ValidateInput/Role") == service_trust("lambda.amazonaws.com")
    assert statements(template, "ValidateInput/Role") == function_basics(template, "ValidateInput")


def test_seed_function_role_writes_only_run_inputs(template):
    if "SeedDataset/Role" not in roles(template):
        pytest.skip("this workflow does not seed data")
    assert trust(template, "SeedDataset/Role") == service_trust("lambda.amazonaws.com")
    assert statements(template, "SeedDataset/Role") == [
        *function_basics(template, "SeedDataset"),
        {"Action": "s3:PutObject", "Effect": "Allow", "Resource": bucket_objects(template, "runs/*/input/*")},
    ]


def test_claim_function_role_may_only_create_claims(template):
    if "ClaimEvent/Role" not in roles(template):
        pytest.skip("no rule starts this workflow")
    assert trust(template, "ClaimEvent/Role") == service_trust("lambda.amazonaws.com")
    assert statements(template, "ClaimEvent/Role") == [
        *function_basics(template, "ClaimEvent"),
        {"Action": "s3:PutObject", "Condition": {"StringEquals": {"s3:if-none-match": "*"}}, "Effect": "Allow",
         "Resource": bucket_objects(template, "claims/*")},
    ]


def test_sagemaker_role(workflow):
    template, w = workflow
    if w["grants_own"]:  # CDK merges its grants on the other stack's data into these statements
        pytest.skip("a workflow reading another stack's data asserts its SageMaker role whole in its own test")

    def job_logs(suffix: str) -> list[dict]:
        return [arn("logs", f"log-group:/aws/sagemaker/{group}:{suffix}") for group in w["job_log_groups"]]

    expected = [
        {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": get_att(template, "Data/Bucket/Resource"),
         "Condition": {"StringLike": {"s3:prefix": ["runs/*", *(f"{p}*" for p in w["bucket_reads"])]}}},
        {"Action": "s3:GetObject", "Effect": "Allow",
         "Resource": [*(bucket_objects(template, f"{prefix}*") for prefix in w["bucket_reads"]),
                      *(bucket_objects(template, f"runs/*/{folder}/*") for folder in w["reads"])]},
        {"Action": ["s3:AbortMultipartUpload", "s3:PutObject"], "Effect": "Allow",
         "Resource": [bucket_objects(template, f"runs/*/{folder}/*") for folder in w["writes"]]},
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {"Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Effect": "Allow", "Resource": one_or_list(
             [arn("ecr", f"repository/{repo}", account={"Fn::FindInMap": [mapping, REGION, "Account"]})
              for repo, mapping in w["repositories"]])},
        *([{"Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"], "Effect": "Allow",
            "Resource": job_logs("*")},
           {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
            "Resource": job_logs(f"log-stream:{w['prefix']}-*")}] if w["job_log_groups"] else []),
        {"Action": "cloudwatch:PutMetricData", "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
         "Effect": "Allow", "Resource": "*"},
    ]
    # Job scripts and script-mode sources: one object each of the CDK assets bucket, listed as a prefix (jobs
    # fetch it as one).
    script_keys = [part[1:] for resource in statements(template, "SageMakerRole/Role")[1]["Resource"]
                   for part in resource["Fn::Join"][1] if isinstance(part, str) and ASSET_KEY.match(part[1:])]
    assert len(script_keys) == w["assets"]
    expected[1]["Resource"][:0] = [join("arn:", PARTITION, ":s3:::", ASSETS_BUCKET, f"/{key}") for key in script_keys]
    listed = [{"Action": "s3:ListBucket", "Condition": {"StringEquals": {"s3:prefix": key}},
               "Effect": "Allow", "Resource": join("arn:", PARTITION, ":s3:::", ASSETS_BUCKET)} for key in script_keys]
    assert trust(template, "SageMakerRole/Role") == service_trust("sagemaker.amazonaws.com")
    actual = statements(template, "SageMakerRole/Role")
    assert actual[:len(expected)] == expected
    assert sorted(actual[len(expected):], key=json.dumps) == sorted(listed, key=json.dumps)  # in asset order


INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.c5.2xlarge"]
# ForAllValues passes when a request has no instance type; the Null check makes one mandatory.
INSTANCE_TYPE_GUARD = {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": INSTANCE_TYPES},
                       "Null": {"sagemaker:InstanceTypes": "false"}}
ISOLATED_JOB = {**INSTANCE_TYPE_GUARD,
                "Bool": {"sagemaker:InterContainerTrafficEncryption": "true", "sagemaker:NetworkIsolation": "true"},
                "NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": 3600}}
# What the state machine role must meet to create each kind of SageMaker resource (default configuration).
CREATE_CONDITIONS = {
    "Training": ISOLATED_JOB,
    "Processing": ISOLATED_JOB,
    "Transform": INSTANCE_TYPE_GUARD,
}


@pytest.mark.parametrize("stack", SAMPLE_JOBS)
def test_state_machine_role_follows_the_task_states(templates, stack):
    template, w = templates[stack], {**declared(stack), "jobs": SAMPLE_JOBS[stack]}
    prefix = w["prefix"]

    def job(kind: str) -> list[dict]:
        resource = arn("sagemaker", f"{kind.lower()}-job/{prefix}-*")
        return [
            {"Action": f"sagemaker:Create{kind}Job", "Condition": CREATE_CONDITIONS[kind], "Effect": "Allow",
             "Resource": resource},
            {"Action": [f"sagemaker:{a}" for a in ("AddTags", f"Describe{kind}Job", "ListTags", f"Stop{kind}Job")],
             "Effect": "Allow", "Resource": resource},
        ]

    events = {"Action": ["events:DescribeRule", "events:PutRule", "events:PutTargets"], "Effect": "Allow",
              "Resource": [arn("events", f"rule/StepFunctionsGetEventsForSageMaker{kind}JobsRule")
                           for kind in w["jobs"]]}
    pass_role = {"Action": "iam:PassRole", "Effect": "Allow",
                 "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                 "Resource": get_att(template, "SageMakerRole/Role/Resource")}
    assert trust(template, "Workflow/Role") == service_trust("states.amazonaws.com")
    assert statements(template, "Workflow/Role") == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow",
         "Resource": [get_att(template, "SeedDataset/Function/Resource"),
                      get_att(template, "ValidateInput/Function/Resource")]},
        # in the order the ASL first needs them
        *job(w["jobs"][0]),
        events,
        dict(sorted(pass_role.items())),
        *[statement for kind in w["jobs"][1:-1] for statement in job(kind)],
        {"Action": "sagemaker:CreateModel", "Condition": {"Bool": {"sagemaker:NetworkIsolation": "true"}},
         "Effect": "Allow", "Resource": arn("sagemaker", f"model/{prefix}-*")},
        {"Action": ["sagemaker:AddTags", "sagemaker:ListTags"], "Effect": "Allow",
         "Resource": arn("sagemaker", f"model/{prefix}-*")},
        *job("Transform"),
        {"Action": ["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "xray:GetSamplingRules",
                    "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"],
         "Effect": "Allow", "Resource": "*"},
    ]


CLEANUP = "JobCleanup/StopRunJobs"


def test_job_cleanup_function_reads_this_workflows_history_and_stops_only_its_jobs(workflow):
    template, w = workflow
    if not (w["jobs"] or w["endpoints"]):  # nothing a failed run could leave running
        assert f"{CLEANUP}/Role" not in roles(template)
        return
    assert trust(template, f"{CLEANUP}/Role") == service_trust("lambda.amazonaws.com")
    name = resource(template, "Workflow/StateMachine/Resource")["Properties"]["StateMachineName"]
    assert statements(template, f"{CLEANUP}/Role") == [
        *function_basics(template, CLEANUP),
        {"Action": "states:GetExecutionHistory", "Effect": "Allow", "Resource": arn("states", f"execution:{name}:*")},
        *[{"Action": [f"sagemaker:Describe{kind}", f"sagemaker:Stop{kind}"], "Effect": "Allow",
           "Resource": arn("sagemaker", f"{w['jobs'][kind]}/{w['prefix']}-*")} for kind in sorted(w["jobs"])],
        *([{"Action": ["sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"], "Effect": "Allow",
            "Resource": arn("sagemaker", f"endpoint/{w['prefix']}-*")}] if w["endpoints"] else []),
    ]


def test_job_cleanup_runs_when_an_execution_of_this_state_machine_gives_up(workflow):
    template, w = workflow
    if not (w["jobs"] or w["endpoints"]):
        assert not of_type(template, "AWS::Events::Rule") or all(
            "aws.states" not in json.dumps(r["Properties"]["EventPattern"])
            for r in of_type(template, "AWS::Events::Rule").values())
        return
    rule = resource(template, "JobCleanup/OnExecutionGaveUp/Resource")["Properties"]
    assert rule["EventPattern"] == {
        "detail": {"stateMachineArn": [{"Ref": logical_id(template, "Workflow/StateMachine/Resource")}],
                   "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
        "detail-type": ["Step Functions Execution Status Change"], "source": ["aws.states"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == get_att(template, f"{CLEANUP}/Function/Resource")
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": get_att(template, "JobCleanup/Undelivered/Resource")}


def operator_statements(template: dict) -> list[dict]:
    return resource(template, "Operators/Policy/Resource")["Properties"]["PolicyDocument"]["Statement"]


def operator_expectation(template: dict) -> list[dict]:
    machine = resource(template, "Workflow/StateMachine/Resource")
    name = machine["Properties"]["StateMachineName"]
    return [
        {"Action": ["states:DescribeStateMachine", "states:ListExecutions", "states:StartExecution"],
         "Effect": "Allow", "Resource": ref(template, "Workflow/StateMachine/Resource")},
        {"Action": ["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"],
         "Effect": "Allow", "Resource": arn("states", f"execution:{name}:*")},
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": bucket_objects(template, "runs/*")},
        {"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}, "Effect": "Allow",
         "Resource": get_att(template, "Data/Bucket/Resource")},
    ]


def test_operator_policy_runs_and_reads_only_this_workflow(template):
    # What every workflow's operators get; what a workflow adds for its own use is in its IAM snapshot.
    expected = operator_expectation(template)
    assert operator_statements(template)[:len(expected)] == expected
    assert template["Outputs"]["OperatorPolicyArn"]["Value"] == ref(template, "Operators/Policy/Resource")


@pytest.mark.parametrize("stack", WORKFLOW_IDS)
def test_operator_policy_uses_the_key_only_through_step_functions_and_s3(synthesized, stack):
    template = synthesized["kms"].templates[stack]
    expected = operator_expectation(template)
    assert operator_statements(template)[:len(expected) + 1] == [*expected, {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow",
        "Resource": get_att(template, "Key/Resource"),
        "Condition": {"StringEquals": {"kms:ViaService": [join("states.", REGION, ".amazonaws.com"),
                                                          join("s3.", REGION, ".amazonaws.com")]}}}]


def roles(template: dict) -> set[str]:
    return {r["Metadata"]["aws:cdk:path"].split("/", 1)[1].removesuffix("/Resource")
            for r in of_type(template, "AWS::IAM::Role").values()}


def test_every_policy_and_role_is_asserted_above(template, workflow_id, synthesized):
    """Roles of the shared stack are asserted above; roles a workflow adds itself (its functions', its
    triggers') are in its reviewed IAM snapshot, with every other role and policy."""
    shared = {"ValidateInput/Role", "SageMakerRole/Role", "Workflow/Role",
              *([f"{CLEANUP}/Role"] if declared(workflow_id)["jobs"] or declared(workflow_id)["endpoints"] else [])}
    assert shared <= roles(template)
    reviewed = iam_of(template)
    assert {f"{r}/Resource" for r in roles(template)} <= set(reviewed)
    assert {p["Metadata"]["aws:cdk:path"].split("/", 1)[1] for p in of_type(template, "AWS::IAM::Policy").values()} \
        <= set(reviewed)
    assert set(of_type(template, "AWS::IAM::ManagedPolicy")) == {logical_id(template, "Operators/Policy/Resource")}
    for role in of_type(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_resource_star_only_for_actions_without_resource_level_permissions(synthesized, configuration):
    for stack, template in synthesized[configuration].templates.items():
        for policy in of_type(template, "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "*" in resources:
                    assert set(actions) <= STAR_ACTIONS, (stack, statement)


def iam_of(template: dict) -> dict:
    """Every role's trust and statements and every managed policy, by construct path, as a reviewer reads them."""
    documents = {}
    for kind, key in (("AWS::IAM::Role", "AssumeRolePolicyDocument"), ("AWS::IAM::Policy", "PolicyDocument"),
                      ("AWS::IAM::ManagedPolicy", "PolicyDocument")):
        for item in of_type(template, kind).values():
            documents[item["Metadata"]["aws:cdk:path"].split("/", 1)[1]] = item["Properties"][key]["Statement"]
    return dict(sorted(documents.items()))


@pytest.mark.parametrize("configuration", ["default", "kms"])
def test_iam_of_every_workflow_matches_its_reviewed_snapshot(synthesized, configuration, workflow_id, snapshot):
    """Any change to any role or policy of any workflow shows in review (tests/__snapshots__/test_iam/)."""
    template = synthesized[configuration].templates[workflow_id]
    assert masked(iam_of(template)) == snapshot.use_extension(JSONSnapshotExtension)(name=workflow_id)


def test_sagemaker_permissions_stay_within_the_workflows_prefix(template, workflow):
    """Every SageMaker resource a role names is this workflow's (<prefix>-*, or one named <prefix>-...), or one
    of a workflow it declares it reads from (reads_from: the build stack's model package group)."""
    prefixes = [workflow[1]["prefix"], *workflow[1]["reads_from"]]
    for document in iam_of(template).values():
        for statement in document:
            for item in statement["Resource"] if isinstance(statement.get("Resource"), list) else [
                    statement.get("Resource")]:
                text = json.dumps(item)
                if ":sagemaker:" in text:
                    assert any(f"/{prefix}-" in text for prefix in prefixes), (statement, prefixes)


def test_a_statement_without_resources_is_refused_where_it_is_written():
    """CDK refuses an empty statement at synthesis only while the minimizePolicies flag is off (with it, the
    statement merges into another): `allow` refuses it at once, whatever the flags."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam

    from stacks.cdk.permissions import allow

    role = iam.Role(Stack(App(), "Bare"), "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    with pytest.raises(ValueError, match=r"Bare/Role: a statement for \['s3:GetObject'\] needs resources"):
        allow(role, ["s3:GetObject"], [])
