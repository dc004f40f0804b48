"""The README shows every registered workflow's graph, generated from its ASL, and never a stale one."""
from __future__ import annotations

from stacks.asl.definition import expand, load_definition
from stacks.asl.shared_asl import shared_asl
from stacks.app.diagram import BLOCK, README, diagrams, mermaid, render_readme
from tests.conftest import ROOT, WORKFLOW_IDS


def test_readme_has_a_current_diagram_of_every_workflow():
    text = README.read_text()
    assert sorted(m["stack"] for m in BLOCK.finditer(text)) == WORKFLOW_IDS
    assert render_readme(text, diagrams()) == text, "a diagram is stale: run `make diagrams`"


def test_diagram_shows_states_transitions_and_caught_errors():
    source = mermaid(expand(load_definition(ROOT / "statemachines" / "train_and_transform.asl.json"),
                            shared_asl("TrainAndTransformFailed")))
    assert "start((start)) --> ValidateInput" in source
    assert 'TrainModel["TrainModel<br/><small>sagemaker:createTrainingJob.sync</small>"]' in source
    assert "TrainModel --> SaveModel" in source and "TrainModel -. States.ALL .-> WorkflowFailed" in source
    assert "InvalidInput([InvalidInput: InvalidExecutionInput])" in source
