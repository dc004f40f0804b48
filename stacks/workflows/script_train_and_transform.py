"""Script train-and-transform: the worked example of a team's own model. Seed data, train a scikit-learn script
of its own in SageMaker's scikit-learn image (script mode), save the model it serves with its own inference
functions, batch-transform the test set."""
from contract.run_layout import INPUT, MODEL, PREDICTIONS
from contract.serving import CODE_DIRECTORY
from stacks.asl.job_states import batch_transform
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("ScriptTrainAndTransform")
class ScriptTrainAndTransformStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="script_train_and_transform",
        slug="st",
        description="A scikit-learn training script of its own (script mode) and batch transform, orchestrated by "
                    "Step Functions",
        reads=(INPUT, MODEL),
        writes=(MODEL, PREDICTIONS),
        source_dirs={"TrainingSource": "training/sklearn_linear"},
        sample_input={"rows": 1000, "seed": 3},
        # The seeded test set; the model serves with the script's own module (train.py saves it under code/).
        fragments={**batch_transform("$.dataset.channels.test"),
                   "ScriptServingEnvironment": {"SAGEMAKER_PROGRAM": "inference.py",
                                                "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIRECTORY}},
    )
