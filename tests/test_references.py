"""Facts kept as data (image registries, IAM integration table) checked against their public sources."""
from __future__ import annotations

import importlib.metadata
import json
import re

import botocore.session
import pytest

from stacks.images import REGISTRY_ACCOUNTS, SKLEARN, XGBOOST
from stacks.integrations import EVENTS_RULE_ACTIONS, SERVICE_INTEGRATIONS
from stacks.retry_policies import CREATE_ONLY_ERRORS
from tests.conftest import ROOT

REFERENCE = ROOT.parent / "shared" / "reference"
ISOLATED = re.compile(r"^us-iso[a-z]*-")


def reference(name: str) -> str:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} is not beside this clone")
    return path.read_text()


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


def test_region_table_matches_shared_reference():
    text = reference("images.md")
    rows = {row[0]: row[1] for row in table_rows(text) if re.fullmatch(r"[a-z]+(-[a-z]+)+-\d", row[0])}
    assert rows == REGISTRY_ACCOUNTS
    assert "repository `sagemaker-xgboost`, tag `1.7-1`" in text
    assert "repository `sagemaker-scikit-learn`, tag `1.2-1-cpu-py3`" in text
    assert (XGBOOST.tag, SKLEARN.tag) == ("1.7-1", "1.2-1-cpu-py3")


def test_sagemaker_integrations_match_shared_reference():
    rows = [row for row in table_rows(reference("sagemaker-iam.md")) if row[0].startswith("`sagemaker:")]
    checked = set()
    for task, actions, resource, events in rows:
        key = task.split("`")[1]  # e.g. "`sagemaker:createModel` (request-response only)"
        integration = SERVICE_INTEGRATIONS[key]
        assert set(integration.actions) == {f"sagemaker:{a.strip()}" for a in actions.split(",")}, key
        assert resource.startswith(f"`{integration.sagemaker_resource}/<prefix>*`"), key
        rule = re.search(r"rule/(\w+)", events)
        assert integration.events_rule == (rule.group(1) if rule else None), key
        checked.add(key)
    assert checked == {k for k in SERVICE_INTEGRATIONS if k.startswith("sagemaker:")}
    assert set(EVENTS_RULE_ACTIONS) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}


def test_roles_are_passed_only_where_sagemaker_takes_one():
    # CreateTrainingJob/CreateProcessingJob take RoleArn, CreateModel ExecutionRoleArn; transform jobs none.
    passing = {key for key, integration in SERVICE_INTEGRATIONS.items() if integration.passes_role}
    assert passing == {"sagemaker:createTrainingJob.sync", "sagemaker:createProcessingJob.sync", "sagemaker:createModel"}


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
