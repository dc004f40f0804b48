"""Train-and-transform: seed data, train XGBoost, save the model, batch-transform the test set."""
from contract.run_layout import INPUT, MODEL, PREDICTIONS
from stacks.asl.job_states import batch_transform
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("TrainAndTransform")
class TrainAndTransformStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="train_and_transform",
        slug="tt",
        description="SageMaker XGBoost training and batch transform orchestrated by Step Functions",
        reads=(INPUT, MODEL),
        writes=(MODEL, PREDICTIONS),
        fragments=batch_transform("$.dataset.channels.test"),  # the seeded test set
    )
