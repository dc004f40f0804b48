"""`make delete-endpoint`: delete what DeployApproved's runs created and CloudFormation does not own (so `cdk
destroy` leaves it billing): the monitoring schedule, the endpoint, and the endpoint configs and models.

    python -m operations.delete_endpoint [--stage NAME]

Names come from cdk.json (name_prefix) and the stage, as the stack derives them. Uses the AWS credentials and
region of the shell, like the AWS CLI.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from stacks.kit import WORKFLOWS, cdk_json_context
from stacks.config import KitConfig
from stacks.workflow_stack import workflow_settings
from stacks.workflows.deploy_approved import endpoint_name, schedule_name

GONE = ("ResourceNotFound", "ValidationException")  # what SageMaker answers for a name that does not exist


def prefix(stage: str | None) -> str:
    config = KitConfig.from_context({**cdk_json_context(), **({"stage": stage} if stage else {})},
                                    workflow_settings())
    return config.job_name_prefix(WORKFLOWS["DeployApproved"].spec.slug)


def _quietly_gone(call, **request) -> bool:
    """Run a delete; False when there was nothing to delete."""
    try:
        call(**request)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE:
            return False
        raise


def delete_all(sagemaker, name_prefix: str, wait_seconds: float = 5, attempts: int = 60) -> list[str]:
    """Delete the schedule (SageMaker refuses to delete an endpoint that one monitors), the endpoint, then the
    endpoint configs and models named <name_prefix>-...; returns what was deleted."""
    deleted = []
    schedule = schedule_name(name_prefix)
    if _quietly_gone(sagemaker.delete_monitoring_schedule, MonitoringScheduleName=schedule):
        deleted.append(f"monitoring schedule {schedule}")
        for _ in range(attempts):  # deletion is asynchronous
            if not _quietly_gone(sagemaker.describe_monitoring_schedule, MonitoringScheduleName=schedule):
                break
            time.sleep(wait_seconds)
    endpoint = endpoint_name(name_prefix)
    if _quietly_gone(sagemaker.delete_endpoint, EndpointName=endpoint):
        deleted.append(f"endpoint {endpoint}")
    for kind, lister, key, delete, parameter in (
            ("endpoint config", sagemaker.list_endpoint_configs, "EndpointConfigs", sagemaker.delete_endpoint_config,
             "EndpointConfigName"),
            ("model", sagemaker.list_models, "Models", sagemaker.delete_model, "ModelName")):
        names, token = [], None
        while True:
            page = lister(NameContains=f"{name_prefix}-", **({"NextToken": token} if token else {}))
            names += [item[parameter] for item in page[key] if item[parameter].startswith(f"{name_prefix}-")]
            token = page.get("NextToken")
            if not token:
                break
        for name in names:
            if _quietly_gone(delete, **{parameter: name}):
                deleted.append(f"{kind} {name}")
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", help="the stage whose endpoint to delete (as deployed with STAGE=...)")
    args = parser.parse_args(argv)
    name_prefix = prefix(args.stage)
    try:
        # The region the README exports for the CDK CLI (AWS_REGION), else the SDK's own configuration.
        deleted = delete_all(boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION") or None), name_prefix)
    except (NoCredentialsError, NoRegionError) as error:
        print(f"delete-endpoint: {error}: set AWS credentials and AWS_REGION as for the AWS CLI", file=sys.stderr)
        return 2
    print("\n".join(f"deleted {item}" for item in deleted) or f"nothing of {name_prefix} to delete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
