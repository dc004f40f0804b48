"""Preprocess-and-train: seed raw data, standardize it (SageMaker Processing), train, save, batch-transform."""
from contract.run_layout import INPUT, MODEL, PREDICTIONS, PROCESSED
from stacks.asl.job_states import batch_transform
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("PreprocessAndTrain")
class PreprocessAndTrainStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="preprocess_and_train",
        slug="pt",
        description="SageMaker Processing (scikit-learn) standardization, XGBoost training and batch transform "
                    "orchestrated by Step Functions",
        reads=(INPUT, PROCESSED, MODEL),
        writes=(PROCESSED, MODEL, PREDICTIONS),
        assets={"ProcessingScript": "processing/features.py"},
        fragments=batch_transform("States.Format('{}/test/', $.processing.Output)"),  # the processed test set
    )
