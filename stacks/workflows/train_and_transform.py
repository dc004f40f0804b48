"""Train-and-transform: seed data, train XGBoost, save the model, batch-transform the test set."""
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("TrainAndTransform")
class TrainAndTransformStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="train_and_transform",
        slug="tt",
        description="SageMaker XGBoost training and batch transform orchestrated by Step Functions",
        reads=("input", "model"),
        writes=("model", "predictions"),
    )
