"""The image table (stacks/settings/image_table.py) is the one place each image is written: every other place reads
it, and where an image must exist in another form (a URI in a template, a Lambda environment variable) it is
derived from the table here."""
from __future__ import annotations

import json
import re

import pytest

from offline.cloud.integrations import IMAGE_RUNNERS
from offline.runtimes.image_versions import IMAGE_LIBRARIES
from offline.runtimes.sagemaker_jobs import SCRIPT_MODE_IMAGES
from offline.runtimes.serving import RUNNERS, ServedModel
from stacks.settings.image_table import BUILT_IN_ALGORITHM, IMAGE_TABLE, SERVING_IMAGES
from stacks.settings.images import IMAGES
from stacks.settings.config import KitConfig
from stacks.settings.model_contract import FRAMEWORKS, Model, ModelContract
from stacks.workflows.deploy_approved import DeployApprovedStack
from stacks.workflows.workflow_stack import workflow_settings
from tests.conftest import ROOT

SEARCHED = ("stacks", "offline", "lambda", "processing", "training", "statemachines")
REPOSITORIES = sorted(row.repository for row in IMAGE_TABLE)


def mentions(name: str) -> list[str]:
    """path:line of each mention of an image repository (not of a longer name such as its source's GitHub repo)."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    found = []
    for folder in SEARCHED:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            found += [f"{path.relative_to(ROOT)}:{number}" for number, line in enumerate(text.splitlines(), 1)
                      if pattern.search(line)]
    return found


@pytest.mark.parametrize("name", REPOSITORIES)
def test_each_repository_name_is_written_once_outside_tests_and_docs(name):
    assert mentions(name) == [f"stacks/settings/image_table.py:{line}" for line in
                              [n for n, text in enumerate((ROOT / "stacks/settings/image_table.py").read_text()
                                                          .splitlines(), 1) if f'repository="{name}"' in text]]


def test_the_search_finds_a_copy(tmp_path, monkeypatch):
    """The check itself: a repository name written again in another module is found."""
    probe = tmp_path / "stacks" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(f'IMAGE = "{REPOSITORIES[0]}:1"  # and the source repo aws/{REPOSITORIES[0]}-container\n')
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert mentions(REPOSITORIES[0]) == ["stacks/probe.py:1"]


def test_every_place_derives_its_images_from_the_table():
    repositories = {row.repository for row in IMAGE_TABLE}
    assert set(IMAGE_RUNNERS) == set(IMAGE_LIBRARIES) == repositories
    assert set(RUNNERS) == {row.repository for row in SERVING_IMAGES}  # the images a registered model may name
    assert set(SCRIPT_MODE_IMAGES) == {row.repository for row in IMAGE_TABLE if row.script_mode}
    assert {(name, image.repository, image.tag) for name, image in IMAGES.items()} == {
        (row.placeholder, row.repository, row.tag) for row in IMAGE_TABLE}
    assert FRAMEWORKS == {row.framework: row.placeholder for row in IMAGE_TABLE if row.script_mode}
    assert Model.built_in("binary").image == BUILT_IN_ALGORITHM.placeholder
    assert all(row.offline and row.libraries.get("python") for row in IMAGE_TABLE)


def test_every_image_placeholder_in_a_definition_is_a_row():
    """Each ${...Image} of the definitions is a row's, or the model contract's TrainingImage, which names one."""
    used = {name for path in (ROOT / "statemachines").glob("*.asl.json")
            for name in re.findall(r"\$\{(\w+Image)\}", path.read_text())}
    contract = ModelContract.from_settings(KitConfig.from_context({}, workflow_settings()).workflow_settings)
    assert contract.fragments()["TrainingImage"] in {f"${{{row.placeholder}}}" for row in IMAGE_TABLE}
    assert used == {row.placeholder for row in IMAGE_TABLE} | {"TrainingImage"}


def test_a_model_of_an_image_outside_the_table_is_refused_with_the_same_message():
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1"
    with pytest.raises(ValueError, match=f"image {re.escape(image)} has no offline runner; register one in "
                                         "offline/runtimes/serving.py SERVERS"):
        ServedModel({"PrimaryContainer": {"Image": image, "ModelDataUrl": "s3://b/k"}}, read=lambda uri: b"")


def _joined(value) -> str:
    """An Fn::Join of the template as text, each token written as <token>."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_joined(part) for part in value["Fn::Join"][1])
    return value if isinstance(value, str) else "<token>"


def _joins(value):
    """Every Fn::Join in a template, nested ones too."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            yield value
        for item in value.values():
            yield from _joins(item)
    elif isinstance(value, list):
        for item in value:
            yield from _joins(item)


def test_the_templates_name_exactly_the_table_images(templates):
    named = {found.groups() for template in templates.values() for join in _joins(template["Resources"])
             for found in re.finditer(r"\.dkr\.ecr\.<token>\.<token>/([^:\"]+):([^\"]+)", _joined(join))}
    assert named == {(row.repository, row.tag) for row in IMAGE_TABLE}


def test_check_model_package_reads_the_image_variables_deploy_approved_gives(templates):
    """The Lambda (standard library, shipped alone) reads each image's URI from the variable the table names."""
    handler = (ROOT / "lambda" / "check_model_package" / "handler.py").read_text()
    read = set(re.findall(r"os\.environ\[\"(\w+_IMAGE)\"\]", handler))
    assert read == {row.environment for row in SERVING_IMAGES}
    given = DeployApprovedStack.spec.functions["CheckModelPackage"].environment
    assert {name: value for name, value in given.items() if name in read} == {
        row.environment: f"${{{row.placeholder}}}" for row in SERVING_IMAGES}
    variables = [resource["Properties"]["Environment"]["Variables"] for resource in
                 templates["DeployApproved"]["Resources"].values() if resource["Type"] == "AWS::Lambda::Function"
                 and set(read) <= set(resource["Properties"].get("Environment", {}).get("Variables", {}))]
    assert len(variables) == 1
    for row in SERVING_IMAGES:
        assert _joined(variables[0][row.environment]).endswith(f"/{row.repository}:{row.tag}")
