"""Tune-and-transform: seed data, search XGBoost hyperparameters (SageMaker tuning), save the best model, predict."""
from contract.run_layout import INPUT, MODEL, PREDICTIONS
from stacks.asl.job_states import batch_transform
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("TuneAndTransform")
class TuneAndTransformStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="tune_and_transform",
        slug="ht",
        description="SageMaker hyperparameter tuning of XGBoost, then batch transform with the best model, "
                    "orchestrated by Step Functions",
        reads=(INPUT, MODEL),
        writes=(MODEL, PREDICTIONS),
        sample_input={"rows": 1000, "seed": 3},
        fragments=batch_transform("$.dataset.channels.test"),  # the seeded test set
    )
