"""Profile a day's files with Spark: the rows of each label across every CSV file under incoming/<day>/, counted by
a PySpark application in SageMaker's Spark processing image on two instances, written to the run's report/.

A team's workflow that tests/test_add_workflow.py adds to a scratch clone of the kit, as a team would add it
(stacks/workflows/profile_day.py, statemachines/profile_day.asl.json, processing/profile_day.py): the kit ships no
workflow that runs the Spark image, so this one proves that a team's can, on AWS (its template) and offline.
"""
from __future__ import annotations

from contract.run_layout import REPORT
from stacks.workflows.workflow_stack import SageMakerWorkflowStack, WorkflowSpec, register


@register("ProfileDay")
class ProfileDayStack(SageMakerWorkflowStack):
    spec = WorkflowSpec(
        definition="profile_day",
        slug="pd",
        description="Rows per label of a day's files, counted by a PySpark job on SageMaker Processing",
        reads=(),
        writes=(REPORT,),
        job_bucket_reads=("incoming/",),  # a day's files land under incoming/<day>/
        assets={"ProfileScript": "processing/profile_day.py"},
        sample_input={"day": "2026-12-07"},
    )
