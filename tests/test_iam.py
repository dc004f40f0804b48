"""Least privilege, proven: what each role can and cannot do, decided as IAM decides against what its workflow
declares, and the exact statements of every role in reviewed snapshots."""
from __future__ import annotations

import json
import re
import types

import pytest

from syrupy.extensions.json import JSONSnapshotExtension

from contract import run_layout
from offline.iam.iam import LocalIam
from offline.iam.iam_policy import decide
from offline.iam.iam_requests import MODELED_KEYS
from offline.sources.assembly import ACCOUNT as ACCOUNT_ID, REGION as REGION_NAME, synthesized_stacks
from stacks.app.kit import WORKFLOWS as REGISTERED
from stacks.asl.definition import integration_of, placeholders, task_states
from stacks.settings.images import IMAGES
from tests.cfn import ACCOUNT, REGION, arn, get_att, join, logical_id, of_type, ref, resource
from tests.conftest import CONFIGURATIONS, WORKFLOW_IDS, expanded_definition
from tests.test_snapshots import masked


def declared(stack: str) -> dict:
    """What a workflow's module and ASL declare that its IAM must follow (every statement is in the reviewed IAM
    snapshots)."""
    spec = REGISTERED[stack].spec
    definition = expanded_definition(REGISTERED[stack])
    used = [spec.integration_table[integration_of(n, s, source=spec.definition)] for n, s in task_states(definition)]
    return {"prefix": f"mlkit-{spec.slug}", "reads": sorted(spec.reads), "writes": sorted(spec.writes),
            "bucket_reads": sorted(spec.job_bucket_reads),
            "repositories": sorted((IMAGES[p].repository, IMAGES[p].mapping) for p in placeholders(definition)
                                   if p in IMAGES),
            "job_log_groups": sorted({i.job_log_group.rsplit("/", 1)[1] for i in used if i.job_log_group}),
            "jobs": {i.stoppable_job: i.sagemaker_resources[0] for i in used if i.stoppable_job},
            "endpoints": any("sagemaker:CreateEndpoint" in i.actions for i in used),
            "assets": len(spec.assets) + len(spec.source_dirs), "reads_from": [f"mlkit-{REGISTERED[s].spec.slug}" for s in spec.reads_from]}


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



def bucket_objects(template: dict, pattern: str) -> dict:
    return join(get_att(template, "Data/Bucket/Resource"), f"/{pattern}")


def service_trust(service: str) -> list[dict]:
    """Only the one service may assume the role, and only on behalf of this account (confused deputy)."""
    return [{"Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
             "Effect": "Allow", "Principal": {"Service": service}}]


ASSETS_BUCKET = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}


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


# -- what each role can do, decided as IAM decides (offline/iam/iam_policy.py), against what its workflow declares;
# the exact statements are in the reviewed IAM snapshots ---------------------------------------------------------
@pytest.fixture(scope="module")
def account(synthesized):
    """The default copy's roles with their statements resolved (local names), and each stack by id."""
    outdir = synthesized["default"].outdir
    return LocalIam.from_assembly(outdir), {stack.name: stack for stack in synthesized_stacks(outdir)}


class Role:
    """One role of a synthesized stack: `can(action, resource, context)` as IAM decides it."""

    def __init__(self, account, stack_id: str, path: str):
        iam, stacks = account
        self.stack = stacks[stack_id]
        self.arn = self.stack.resolver.arn(logical_id(self.stack.template, f"{path}/Resource"))
        self.policy = iam.roles[self.arn]

    def can(self, action: str, resource: str, context: dict | None = None) -> bool:
        return decide(self.policy, action, resource, context or {}, MODELED_KEYS) == "Allow"

    def name(self, path: str) -> str:
        return self.stack.resolver.physical_name(logical_id(self.stack.template, f"{path}/Resource"))

    def job_assets(self) -> set[str]:
        """The asset keys the state machine hands its jobs (scripts, source archives)."""
        definition = resource(self.stack.template, "Workflow/StateMachine/Resource")["Properties"]["DefinitionString"]
        return set(re.findall(r"s3://cdk-[a-z0-9]+-assets-[^/]+/([0-9a-f]{64}[.a-z0-9]+)",
                              self.stack.resolver.resolve(definition)))


def _within(folder: str, folders: list[str]) -> bool:
    return any(folder == f or folder.startswith(f"{f}/") for f in folders)


def test_a_workflows_jobs_reach_exactly_their_declared_data(account, workflow_id):
    """The SageMaker role reads the run folders its workflow declares in `reads` (and the data set prefixes of
    `job_bucket_reads`), writes those of `writes`, and nothing else: no other folder, no delete, no other bucket."""
    role, w = Role(account, workflow_id, "SageMakerRole/Role"), declared(workflow_id)
    bucket = role.name("Data/Bucket")
    run = lambda folder: f"arn:aws:s3:::{bucket}/{run_layout.RUNS}r1/{folder}/part-1.csv"  # noqa: E731
    for folder in run_layout.FOLDERS:
        assert role.can("s3:GetObject", run(folder)) == _within(folder, w["reads"]), folder
        assert role.can("s3:PutObject", run(folder)) == _within(folder, w["writes"]), folder
        assert not role.can("s3:DeleteObject", run(folder))
    for prefix in w["bucket_reads"]:
        assert role.can("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}mine/data.csv")
    assert not role.can("s3:GetObject", f"arn:aws:s3:::{bucket}/claims/x")
    assert not role.can("s3:GetObject", f"arn:aws:s3:::{bucket}-other/{run_layout.RUNS}r1/input/x")  # another copy's
    assert role.can("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": f"{run_layout.RUNS}r1/input/"})
    assert not role.can("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": "claims/"})


def test_the_data_set_sizer_lists_the_data_set_prefixes_and_reads_nothing(account):
    role = Role(account, "BuildAndRegister", "SizeDataset/Role")
    bucket = role.name("Data/Bucket")
    for prefix in ("datasets/mine/", "incoming/", "incoming/2026-12-07/"):
        assert role.can("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix}), prefix
    for prefix in (run_layout.RUNS, "claims/", ""):
        assert not role.can("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix}), prefix
    assert not role.can("s3:GetObject", f"arn:aws:s3:::{bucket}/datasets/mine/data.csv")
    assert not role.can("s3:ListBucket", f"arn:aws:s3:::{bucket}-other", {"s3:prefix": "datasets/"})


def test_the_data_check_catches_a_planted_grant(account):
    """A statement reading every run folder (what `reads=("*",)` would give) fails the check above."""
    from offline.iam.iam_policy import parse_policy

    role = Role(account, "TrainAndTransform", "SageMakerRole/Role")
    role.policy = [*role.policy, *parse_policy({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                                "Resource": "arn:aws:s3:::*/runs/*"}]}, "planted")]
    account = (types.SimpleNamespace(roles={role.arn: role.policy}), account[1])
    with pytest.raises(AssertionError, match="^processed"):  # the first folder TrainAndTransform does not read
        test_a_workflows_jobs_reach_exactly_their_declared_data(account, "TrainAndTransform")


def test_a_workflows_jobs_fetch_only_their_own_code_and_images(account, workflow_id):
    """Each script or source archive the definition hands a job, and no other asset (the functions' code);
    each image the definition runs (AWS's registries), and no repository of this account."""
    role, w = Role(account, workflow_id, "SageMakerRole/Role"), declared(workflow_id)
    assets = ASSETS_BUCKET["Fn::Sub"].replace("${AWS::AccountId}", ACCOUNT_ID).replace("${AWS::Region}", REGION_NAME)
    handed = role.job_assets()
    assert len(handed) == w["assets"]
    staged = {destination["objectKey"]
              for entry in json.loads((role.stack.folder / f"{role.stack.artifact_id}.assets.json").read_text())[
                  "files"].values() for destination in entry["destinations"].values()}
    assert handed < staged or not handed
    for key in staged:
        assert role.can("s3:GetObject", f"arn:aws:s3:::{assets}/{key}") == (key in handed), key
        assert role.can("s3:ListBucket", f"arn:aws:s3:::{assets}", {"s3:prefix": key}) == (key in handed), key
    mappings = role.stack.template["Mappings"]
    for repository, mapping in w["repositories"]:
        registry = mappings[mapping][REGION_NAME]["Account"]
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
            assert role.can(action, f"arn:aws:ecr:{REGION_NAME}:{registry}:repository/{repository}")
            assert not role.can(action, f"arn:aws:ecr:{REGION_NAME}:{ACCOUNT_ID}:repository/{repository}")
    assert role.can("ecr:GetAuthorizationToken", "*")


def test_a_workflows_jobs_log_and_measure_only_under_its_prefix(account, workflow_id):
    role, w = Role(account, workflow_id, "SageMakerRole/Role"), declared(workflow_id)
    for group in w["job_log_groups"]:
        logs = f"arn:aws:logs:{REGION_NAME}:{ACCOUNT_ID}:log-group:/aws/sagemaker/{group}"
        assert role.can("logs:PutLogEvents", f"{logs}:log-stream:{w['prefix']}-job/algo-1")
        assert not role.can("logs:PutLogEvents", f"{logs}:log-stream:{w['prefix']}x-job/algo-1")  # another copy's
    assert role.can("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"})
    assert not role.can("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Team/Metrics"})
    for action, target in (("sagemaker:CreateTrainingJob", f"training-job/{w['prefix']}-x"),
                           ("iam:PassRole", "role/anything"), ("kms:Decrypt", "key/anything")):
        assert not role.can(action, f"arn:aws:{action.split(':')[0]}:{REGION_NAME}:{ACCOUNT_ID}:{target}")
    assert trust(role.stack.template, "SageMakerRole/Role") == service_trust("sagemaker.amazonaws.com")


# A create request within the default configuration's guards, and each way of leaving them.
WITHIN_GUARDS = {"sagemaker:InstanceTypes": ["ml.m5.large"], "sagemaker:NetworkIsolation": True,
                 "sagemaker:InterContainerTrafficEncryption": True, "sagemaker:MaxRuntimeInSeconds": 3600}
BREACHES = {
    "sagemaker:InstanceTypes": ({"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p4d.24xlarge"]},
                                {"sagemaker:InstanceTypes": None}),  # None: the request names no instance type
    "sagemaker:NetworkIsolation": ({"sagemaker:NetworkIsolation": False},),
    "sagemaker:InterContainerTrafficEncryption": ({"sagemaker:InterContainerTrafficEncryption": False},),
    "sagemaker:MaxRuntimeInSeconds": ({"sagemaker:MaxRuntimeInSeconds": 3601},),
}


def test_a_workflows_state_machine_does_what_its_tasks_need_within_its_prefix_and_guards(account, workflow_id):
    """For each Task state, every action its integration needs on this copy's SageMaker resources (<prefix>-...),
    within the guards; none on another copy's (<prefix>x-...) or past a guard. It passes the SageMaker role to
    SageMaker only, and invokes the functions its definition names, no other."""
    role, w = Role(account, workflow_id, "Workflow/Role"), declared(workflow_id)
    prefixes = [w["prefix"], *w["reads_from"]]  # a reader acts on what the build stack shares (its package group)
    sagemaker = f"arn:aws:sagemaker:{REGION_NAME}:{ACCOUNT_ID}"
    definition = expanded_definition(REGISTERED[workflow_id])
    for name, state in task_states(definition):
        integration = REGISTERED[workflow_id].spec.integration_table[integration_of(name, state, source=REGISTERED[workflow_id].spec.definition)]
        for kind in integration.sagemaker_resources:
            for action in integration.actions:
                guarded = action == integration.guarded_action
                context = {k: v for k, v in WITHIN_GUARDS.items() if k in integration.condition_keys} if guarded else {}
                assert any(role.can(action, f"{sagemaker}:{kind}/{p}-probe", context) for p in prefixes), (name, action)
                assert not role.can(action, f"{sagemaker}:{kind}/{w['prefix']}x-probe", context), (name, action)
                for key in integration.condition_keys if guarded else ():
                    for breach in BREACHES.get(key, ()):
                        request = {k: v for k, v in {**context, **breach}.items() if v is not None}
                        assert not role.can(action, f"{sagemaker}:{kind}/{w['prefix']}-probe", request), (name, breach)
    sagemaker_role = role.stack.resolver.arn(logical_id(role.stack.template, "SageMakerRole/Role/Resource"))
    passes = any(REGISTERED[workflow_id].spec.integration_table[integration_of(n, s, source=REGISTERED[workflow_id].spec.definition)].passes_role
                 for n, s in task_states(definition))
    assert role.can("iam:PassRole", sagemaker_role, {"iam:PassedToService": "sagemaker.amazonaws.com"}) == passes
    assert not role.can("iam:PassRole", sagemaker_role, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not role.can("iam:PassRole", role.arn, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    named = json.dumps(role.stack.resolver.resolve(
        resource(role.stack.template, "Workflow/StateMachine/Resource")["Properties"]["DefinitionString"]))
    functions = [role.stack.resolver.arn(i) for i in of_type(role.stack.template, "AWS::Lambda::Function")]
    assert functions
    for function in functions:
        assert role.can("lambda:InvokeFunction", function) == (function in named), function


@pytest.mark.parametrize("planted, caught", [
    ({"Action": "sagemaker:*", "Resource": "arn:aws:sagemaker:*:*:*"}, "x-probe"),  # any copy's resources
    ({"Action": "sagemaker:CreateTrainingJob", "Resource": "*"}, "Breach|breach|InstanceTypes"),  # no guards
    ({"Action": "lambda:InvokeFunction", "Resource": "*"}, "function"),  # the cleanup function too
])
def test_the_state_machine_check_catches_a_planted_grant(account, planted, caught):
    from offline.iam.iam_policy import parse_policy

    role = Role(account, "TrainAndTransform", "Workflow/Role")
    policy = [*role.policy, *parse_policy({"Statement": [{"Effect": "Allow", **planted}]}, "planted")]
    with pytest.raises(AssertionError, match=caught):
        test_a_workflows_state_machine_does_what_its_tasks_need_within_its_prefix_and_guards(
            (types.SimpleNamespace(roles={role.arn: policy}), account[1]), "TrainAndTransform")


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
            "Resource": arn("sagemaker", f"endpoint/{w['prefix']}-*")},
           # back to production's config, an endpoint its run left serving a shadow test
           {"Action": "sagemaker:UpdateEndpoint", "Effect": "Allow",
            "Resource": [arn("sagemaker", f"endpoint-config/{w['prefix']}-*"),
                         arn("sagemaker", f"endpoint/{w['prefix']}-*")]}] if w["endpoints"] else []),
        # A run an event started claimed it (claims/ of its bucket); one that did not succeed has it released.
        *([{"Action": "s3:DeleteObject", "Effect": "Allow", "Resource": bucket_objects(template, "claims/*")}]
          if "ClaimEvent/Role" in roles(template) else []),
        # Lambda sends the record of an invocation that failed every attempt with the function's role.
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": get_att(template, "JobCleanup/GaveUp/Resource")},
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
