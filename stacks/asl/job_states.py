"""Job states several workflows share, written once as ASL fragments with parameters: a workflow's ASL names the
state by placeholder ("BatchTransform": "${BatchTransformState}") and its WorkflowSpec.fragments give the fragment
and its parameters, so synthesis sees the whole Task (its IAM, checks and cleanup follow it) and the template holds
it inlined, as if written in place. The job states that differ by workflow in their data, image or model (seed,
train, save model, preprocess) are written out in each definition; tests/test_definition.py fails when their copies
differ in anything else."""
from __future__ import annotations

from typing import Any

# Batch-transforms the run's test set with the saved model into the run's predictions/ folder. Parameter:
# TestDataPath, the JSONPath (or intrinsic) of the test set's S3 prefix.
BATCH_TRANSFORM: dict[str, Any] = {
    "Type": "Task",
    "Resource": "arn:${Partition}:states:::sagemaker:createTransformJob.sync",
    "Parameters": {
        "TransformJobName.$": "States.Format('${JobNamePrefix}-{}', States.UUID())",
        "ModelName.$": "$.model.ModelName",
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "ContentType": "text/csv",
            "SplitType": "Line",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "${TestDataPath}"}},
        },
        "TransformOutput": {
            "S3OutputPath.$": "States.Format('s3://${DataBucket}/{}predictions/', $.settings.run_prefix)",
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": "${KmsKeyArn}",
        },
        "TransformResources": {
            "InstanceCount": 1,
            "InstanceType.$": "$.settings.transform_instance_type",
            "VolumeKmsKeyId": "${KmsKeyArn}",
        },
    },
    "TimeoutSeconds": "${MaxJobRuntimeSeconds}",
    "ResultSelector": {"TransformJobName.$": "$.TransformJobName", "S3OutputPath.$": "$.TransformOutput.S3OutputPath"},
    "ResultPath": "$.transform",
    "Retry": "${SageMakerJobRetry}",
    "Catch": "${CatchAll}",
    "Next": "Summarize",
}


def batch_transform(test_data_path: str) -> dict[str, Any]:
    """The fragments a workflow declares to take the shared BatchTransform state."""
    return {"BatchTransformState": BATCH_TRANSFORM, "TestDataPath": test_data_path}
