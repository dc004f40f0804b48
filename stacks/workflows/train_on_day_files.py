"""Train on a day's files: list the CSV files that landed under incoming/<day>/, check and split each one in a
Distributed Map (a child execution per ten files), train XGBoost on the day's rows and register the model for approval.

The kit's example of a workflow reaching beyond SageMaker through the extension API alone: the S3 listing and the
Map's ItemReader are integrations this module declares (`integrations`), scoped to its own bucket's prefixes;
nothing shared is edited to add it.
"""
from __future__ import annotations

from typing import Mapping

from contract.run_layout import INPUT, MODEL
from stacks.asl.integrations import Integration
from stacks.constructs.model_registry import model_package_group
from stacks.workflows.workflow_stack import FunctionSpec, SageMakerWorkflowStack, WorkflowSpec, register

DAY_FILES = "incoming/"  # a day's files land under incoming/<day>/
SAMPLE_DAY = f"runs/*/{INPUT}/"  # where a run without a day seeds its sample day (runs/<run>/input/seed/)
# What S3 listing needs: ListBucket on the stack's bucket, only under these prefixes (a Task's listObjectsV2
# request and a Distributed Map's ItemReader make the same call with the state machine's role).
LIST_DAY = Integration(actions=("s3:ListBucket",), bucket_prefixes=(DAY_FILES, SAMPLE_DAY))


def channel(name: str) -> dict:
    return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated",
        "S3Uri.$": f"States.Format('s3://${{DataBucket}}/{{}}{INPUT}/{name}/', $.settings.run_prefix)"}}}


@register("TrainOnDayFiles")
class TrainOnDayFilesStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="train_on_day_files",
        slug="df",
        description="A day's files from S3, checked and split in a Step Functions Distributed Map, SageMaker XGBoost "
                    "training and registration",
        reads=(INPUT,),
        writes=(MODEL,),
        functions={"SplitDayFile": FunctionSpec(
            "split_day_file", "Checks a batch of a day's CSV files and splits their rows into the run's training sets",
            reads=(INPUT,), writes=(INPUT,), bucket_reads=(DAY_FILES,), environment={"DATA_BUCKET": "${DataBucket}"},
            memory_size=1024, timeout_seconds=900)},
        integrations={"aws-sdk:s3:listObjectsV2": LIST_DAY, "s3:listObjectsV2": LIST_DAY},
        fragments={"DayChannels": [channel("train"), channel("validation")]},
        sample_input={"rows": 1000, "seed": 7},  # no day: the run seeds one file of its own
    )

    def add_resources(self) -> Mapping[str, str]:
        group = model_package_group(self, prefix=self.job_name_prefix,
                                    destroy_on_delete=self.config.destroy_data_on_delete,
                                    removal_policy=self.removal_policy, log_retention=self.log_retention,
                                    encryption_key=self.key)
        return {"ModelPackageGroupName": group.model_package_group_name, "DayFilesPrefix": DAY_FILES}
