"""Security posture: customer-managed encryption, job hardening, and independent checkers (cfn-lint, checkov)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cfn import ACCOUNT, PARTITION, REGION, arn, get_att, join, of_type, ref, resource
from tests.conftest import CLEANUP_WORKFLOW_IDS, CONFIGURATIONS, EVERY_INTEGRATION, ROOT
from stacks.app.kit import WORKFLOWS
from tests.test_resources import inline_definition
from stacks.asl.definition import task_states

KEY = "Key/Resource"


@pytest.fixture
def kms_template(workflow_id, synthesized):
    return synthesized["kms"].templates[workflow_id]


def job_tasks(template: dict):
    """(state name, Parameters, integration) of every SageMaker task that creates a job or model."""
    for name, state in task_states(inline_definition(template)):
        integration = EVERY_INTEGRATION[state["Resource"].split(":::")[1]]
        if integration.guarded_action and integration.sagemaker_resources:
            yield name, state["Parameters"], integration


def prefix(template: dict) -> str:
    return resource(template, "Workflow/StateMachine/Resource")["Properties"]["StateMachineName"]


def key_arn(template: dict) -> dict:
    return get_att(template, KEY)


def test_every_service_the_key_policy_names_is_confined_to_this_account(kms_template, workflow_id):
    """Each service principal in the stack's key policy (CloudWatch Logs, its log delivery, EventBridge, CloudWatch
    alarms) may use the key only with a condition naming this account's resources or the account: none, such as
    the delivery.logs grant CDK's StateMachine adds without one, is open to any caller of the service."""
    statements = resource(kms_template, KEY)["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s.get("Principal", {})]
    assert {"delivery.logs.amazonaws.com"} <= {json.dumps(s["Principal"]["Service"]).strip('"') for s in services}
    for statement in services:
        assert statement.get("Condition"), statement["Principal"]
    (delivery,) = [s for s in services if s["Principal"] == {"Service": "delivery.logs.amazonaws.com"}]
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == join("arn:", PARTITION, ":logs:", REGION, ":", ACCOUNT,
                                                                      ":*")


def test_kms_key_rotates_and_lets_only_this_accounts_log_groups_use_it(kms_template, workflow_id):
    key = resource(kms_template, KEY)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    # A stack whose topic CloudWatch alarms notify lets CloudWatch use the key too (tests/test_monitoring.py).
    statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                  if s["Principal"] != {"Service": "cloudwatch.amazonaws.com"}]
    assert statements[:3] == [
        {"Action": "kms:*", "Effect": "Allow", "Resource": "*",
         "Principal": {"AWS": join("arn:", PARTITION, ":iam::", ACCOUNT, ":root")}},
        {"Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
                    "kms:ReEncryptTo"],
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": arn("logs", "log-group:*")}},
         "Effect": "Allow", "Principal": {"Service": join("logs.", REGION, ".amazonaws.com")}, "Resource": "*"},
        {"Action": "kms:Decrypt*", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                        "ArnLike": {"aws:SourceArn": join("arn:", PARTITION, ":logs:", REGION, ":",
                                                                          ACCOUNT, ":*")}}},
    ]
    # EventBridge may write into the key-encrypted dead-letter queue of each of the stack's rules, and only those.
    rules = [r["Properties"]["Name"] for r in of_type(kms_template, "AWS::Events::Rule").values()
             if any("DeadLetterConfig" in t for t in r["Properties"]["Targets"])]
    assert (f"{prefix(kms_template)}-stop-stranded-jobs" in rules) == (workflow_id in CLEANUP_WORKFLOW_IDS)
    assert sorted(statements[3:], key=json.dumps) == sorted(
        ({"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": "*",
          "Condition": {"ArnEquals": {"aws:SourceArn": arn("events", f"rule/{name}")}},
          "Principal": {"Service": "events.amazonaws.com"}} for name in rules), key=json.dumps)


def test_kms_mode_encrypts_bucket_logs_functions_and_state_machine(kms_template):
    template, key = kms_template, key_arn(kms_template)
    data = resource(template, "Data/Bucket/Resource")["Properties"]["BucketEncryption"]
    assert data == {"ServerSideEncryptionConfiguration": [{"BucketKeyEnabled": True, "ServerSideEncryptionByDefault": {
        "KMSMasterKeyID": key, "SSEAlgorithm": "aws:kms"}}]}
    for log_group in of_type(template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["KmsKeyId"] == key
    for function in of_type(template, "AWS::Lambda::Function").values():
        assert function["Properties"]["KmsKeyArn"] == key
    assert resource(template, "Workflow/StateMachine/Resource")["Properties"]["EncryptionConfiguration"] == {
        "KmsDataKeyReusePeriodSeconds": 300, "KmsKeyId": key, "Type": "CUSTOMER_MANAGED_KMS_KEY"}


def test_kms_mode_jobs_use_the_key_and_the_role_may_create_jobs_only_with_it(kms_template):
    template, key = kms_template, key_arn(kms_template)
    jobs = [(name, json.dumps(parameters), integration) for name, parameters, integration in job_tasks(template)
            if "sagemaker:VolumeKmsKey" in integration.condition_keys]
    assert jobs
    for name, parameters, integration in jobs:  # the keys every job or config names, or the guards below deny it
        assert '"KmsKeyId": "<token>"' in parameters, name  # a job's output key, an endpoint config's volume key
        if "sagemaker:OutputKmsKey" in integration.condition_keys:
            assert '"VolumeKmsKeyId": "<token>"' in parameters, name
    guarded = {integration.guarded_action: integration for _, _, integration in jobs}
    statements = resource(template, "Workflow/Role/DefaultPolicy/Resource")["Properties"]["PolicyDocument"]["Statement"]
    creates = {action: statement for statement in statements
               for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
               if action in guarded}
    assert set(creates) == set(guarded)
    for action, statement in creates.items():
        assert statement["Condition"]["StringEquals"] == {
            condition: key for condition in ("sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey")
            if condition in guarded[action].condition_keys}


def test_kms_mode_grants_the_key_to_exactly_who_needs_it(kms_template, workflow_id):
    """Who may use this stack's key; a workflow that reads another stack's data (reads_from) asserts the
    grants on that stack's key in its own test."""
    template, key = kms_template, key_arn(kms_template)
    spec = WORKFLOWS[workflow_id].spec

    def kms_statements(role: str) -> list[dict]:
        document = resource(template, f"{role}/Role/DefaultPolicy/Resource")["Properties"]["PolicyDocument"]
        return [s for s in document["Statement"] if "kms:" in json.dumps(s["Action"]) and s["Resource"] == key]

    if "SeedDataset" in (spec.functions or {}) or "SeedDatasetFunctionArn" in json.dumps(inline_definition(template)):
        assert kms_statements("SeedDataset") == [
            {"Action": "kms:GenerateDataKey", "Effect": "Allow", "Resource": key,
             "Condition": {"StringEquals": {"kms:ViaService": join("s3.", REGION, ".amazonaws.com")}}}]
    assert kms_statements("ValidateInput") == []
    # Creating or updating an endpoint whose volumes use the key: SageMaker takes a grant for the caller.
    hosting = any(i.guarded_action == "sagemaker:CreateEndpointConfig" for _, _, i in job_tasks(template))
    if workflow_id in CLEANUP_WORKFLOW_IDS:
        assert kms_statements("JobCleanup/StopRunJobs") == [
            # returning an endpoint its run left on a shadow test to production's config
            *([{"Action": "kms:CreateGrant", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                "Effect": "Allow", "Resource": key},
               {"Action": "kms:DescribeKey", "Effect": "Allow", "Resource": key}] if hosting else []),
            # execution history is encrypted with the key
            {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": key, "Condition": {"StringEquals": {
                "kms:EncryptionContext:aws:states:stateMachineArn": ref(template, "Workflow/StateMachine/Resource")}}},
            # Lambda sends the record of a cleanup that failed every attempt to the key-encrypted GaveUp queue
            {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": key,
             "Condition": {"StringEquals": {"kms:ViaService": join("sqs.", REGION, ".amazonaws.com")}}}]
        assert resource(template, "JobCleanup/Undelivered/Resource")["Properties"]["KmsMasterKeyId"] == key
        assert resource(template, "JobCleanup/GaveUp/Resource")["Properties"]["KmsMasterKeyId"] == key
    assert kms_statements("SageMakerRole") == [
        {"Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"], "Effect": "Allow",
         "Resource": key},
        {"Action": "kms:CreateGrant", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
         "Effect": "Allow", "Resource": key},
    ]
    name = resource(template, "Workflow/StateMachine/Resource")["Properties"]["StateMachineName"]
    state_machine_arn = join("arn:", PARTITION, ":states:", REGION, ":", ACCOUNT, f":stateMachine:{name}")
    # Services that use the key on the state machine's behalf (an encrypted topic it publishes to), each only
    # through that service; then the state machine's own encryption and its log delivery.
    # (A workflow publishing to another stack's topic uses that stack's key: reads_from.)
    via = sorted({i.kms_via for _, state in task_states(inline_definition(template))
                  if (i := EVERY_INTEGRATION[state["Resource"].split(":::")[1]]).kms_via}) if not spec.reads_from else []
    assert kms_statements("Workflow") == [
        *({"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": key,
           "Condition": {"StringEquals": {"kms:ViaService": join(f"{service}.", REGION, ".amazonaws.com")}}}
          for service in via),
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": key,
         "Condition": {"StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": state_machine_arn}}},
        {"Action": "kms:GenerateDataKey", "Effect": "Allow", "Resource": key,
         "Condition": {"StringEquals": {"kms:EncryptionContext:SourceArn": arn("logs", "*")}}},
        *([{"Action": "kms:CreateGrant", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            "Effect": "Allow", "Resource": key},
           {"Action": "kms:DescribeKey", "Effect": "Allow", "Resource": key}] if hosting else []),
    ]


def test_default_mode_leaves_kms_fields_out_of_the_jobs(templates, workflow_id):
    text = json.dumps(inline_definition(templates[workflow_id]))
    assert "KmsKey" not in text and "Key/Resource" not in text


def test_jobs_run_network_isolated_with_encrypted_inter_container_traffic(templates, workflow_id):
    tasks = list(job_tasks(templates[workflow_id]))
    assert tasks
    for name, parameters, integration in tasks:
        for path in integration.isolation_parameters:
            value = parameters
            for part in path.split("."):
                value = value[part]
            assert value is True, (name, path)
    training = [p for _, p, i in tasks if i.guarded_action == "sagemaker:CreateTrainingJob"]
    assert all(p["EnableNetworkIsolation"] is p["EnableInterContainerTrafficEncryption"] is True for p in training)


def json_documents(text: str):
    """The JSON documents printed one after another (checkov prints one report per directory)."""
    decoder, position = json.JSONDecoder(), 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        document, position = decoder.raw_decode(text, position)
        yield document


def all_outdirs(synthesized) -> list[str]:
    return [str(synthesized[name].outdir) for name in CONFIGURATIONS]


def site_template(synthesized) -> str:
    """The results site's stack (its configuration's other templates are the default's)."""
    return str(synthesized["results-site"].outdir / "ResultsSite.template.json")


@pytest.mark.slow  # an external linter over every template of every configuration: the full run has it
def test_cfn_lint_finds_nothing(synthesized):
    templates = [str(p) for d in all_outdirs(synthesized) for p in sorted(Path(d).glob("*.template.json"))]
    templates.append(site_template(synthesized))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), *templates], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # likewise: checkov over every template
def test_checkov_fails_nothing_and_every_skip_has_a_reason(synthesized):
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    command = [str(checkov), "--framework", "cloudformation", "--skip-download", "--output", "json", "--compact"]
    for outdir in all_outdirs(synthesized):
        command += ["--directory", outdir]
    command += ["--file", site_template(synthesized)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    reports = [r for document in json_documents(result.stdout) for r in (document if isinstance(document, list)
                                                                           else [document])]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert skipped and all(len(c["check_result"].get("suppress_comment", "")) >= 60 for c in skipped)
    assert sum(r["summary"]["passed"] for r in reports) > 100


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_every_role_trusts_one_service_for_this_account_only(synthesized, configuration):
    for stack, template in synthesized[configuration].templates.items():
        for logical_id, role in of_type(template, "AWS::IAM::Role").items():
            if logical_id.startswith("CustomS3AutoDeleteObjectsCustomResourceProvider"):
                continue  # CDK's own bucket-emptying handler (destroy_data_on_delete=true only)
            (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert statement["Action"] == "sts:AssumeRole" and list(statement["Principal"]) == ["Service"]
            assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}, (stack, logical_id)
