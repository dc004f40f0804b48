"""The docs show every registered workflow's graph once, generated from its ASL, and never a stale one."""
from __future__ import annotations

from stacks.asl.definition import expand, load_definition
from stacks.asl.shared_asl import shared_asl
from stacks.app.diagram import BLOCK, diagrams, doc_pages, mermaid, render_page
from tests.conftest import ROOT, WORKFLOW_IDS, WORKFLOWS


def test_docs_have_one_current_diagram_of_every_workflow():
    generated = diagrams()
    shown = []
    for page in doc_pages():
        text = page.read_text()
        shown += [m["stack"] for m in BLOCK.finditer(text)]
        assert render_page(text, generated) == text, f"a diagram in {page.name} is stale: run `make diagrams`"
    assert sorted(shown) == WORKFLOW_IDS


def test_diagram_shows_states_transitions_and_caught_errors():
    source = mermaid(expand(load_definition(ROOT / "statemachines" / "train_and_transform.asl.json"),
                            {**shared_asl("TrainAndTransformFailed"), **WORKFLOWS["TrainAndTransform"].spec.fragments}))
    assert "start((start)) --> ValidateInput" in source
    assert 'TrainModel["TrainModel<br/><small>sagemaker:createTrainingJob.sync</small>"]' in source
    assert "TrainModel --> SaveModel" in source and "TrainModel -. States.ALL .-> WorkflowFailed" in source
    assert "InvalidInput([InvalidInput: InvalidExecutionInput])" in source
