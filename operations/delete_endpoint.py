"""`make delete-endpoint`: delete what DeployApproved's runs created and CloudFormation does not own (so `cdk
destroy` leaves it billing): the endpoint, and the endpoint configs and models.

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

from stacks.app.kit import WORKFLOWS, cdk_json_context
from stacks.settings.config import KitConfig
from stacks.workflows.workflow_stack import workflow_settings
from stacks.workflows.deploy_approved import endpoint_name

class StillThere(RuntimeError):
    """SageMaker refused to delete something (an endpoint still changing) or has not finished deleting it."""


def prefix(stage: str | None, name_prefix: str | None = None) -> str:
    context = {**cdk_json_context(), **({"stage": stage} if stage else {}),
               **({"name_prefix": name_prefix} if name_prefix else {})}
    return KitConfig.from_context(context, workflow_settings()).job_name_prefix(WORKFLOWS["DeployApproved"].spec.slug)


def _missing(error: ClientError) -> bool:
    """Whether SageMaker said the thing does not exist (ResourceNotFound, or a ValidationException saying so)."""
    code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
    return code == "ResourceNotFound" or (code == "ValidationException" and "Could not find" in message)


def _delete(call, **request) -> bool:
    """Run a delete; False when there was nothing to delete. Any other refusal is raised as it is."""
    try:
        call(**request)
        return True
    except ClientError as error:
        if _missing(error):
            return False
        raise


def _wait_until_gone(describe, what: str, wait_seconds: float, attempts: int, **request) -> None:
    """Deletion is asynchronous: wait until the describe call says it is gone."""
    for _ in range(attempts):
        try:
            describe(**request)
        except ClientError as error:
            if _missing(error):
                return
            raise
        time.sleep(wait_seconds)
    raise StillThere(f"{what} is still being deleted after {attempts * wait_seconds:.0f} s; run this again later")


def delete_all(sagemaker, name_prefix: str, wait_seconds: float = 5, attempts: int = 120) -> list[str]:
    """Delete the endpoint (waiting until it is gone, since SageMaker finishes with the stack's SageMaker role),
    then the endpoint configs and models named <name_prefix>-...; returns what was deleted."""
    deleted = []
    endpoint = endpoint_name(name_prefix)
    try:
        if _delete(sagemaker.delete_endpoint, EndpointName=endpoint):
            deleted.append(f"endpoint {endpoint}")
            _wait_until_gone(sagemaker.describe_endpoint, f"endpoint {endpoint}", wait_seconds, attempts,
                             EndpointName=endpoint)
    except ClientError as error:  # e.g. still Creating or Updating: it cannot be deleted yet
        raise StillThere(f"endpoint {endpoint} was not deleted: {error.response['Error'].get('Message')}; "
                         "run this again when it has settled") from None
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
            if _delete(delete, **{parameter: name}):
                deleted.append(f"{kind} {name}")
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", help="the stage whose endpoint to delete (as deployed with STAGE=...)")
    parser.add_argument("--name-prefix", help="the name_prefix it was deployed with, if not cdk.json's")
    args = parser.parse_args(argv)
    name_prefix = prefix(args.stage, args.name_prefix)
    try:
        # The region docs/deploy.md exports for the CDK CLI (AWS_REGION), else the SDK's own configuration.
        deleted = delete_all(boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION") or None), name_prefix)
    except (NoCredentialsError, NoRegionError) as error:
        print(f"delete-endpoint: {error}: set AWS credentials and AWS_REGION as for the AWS CLI", file=sys.stderr)
        return 2
    except StillThere as error:
        print(f"delete-endpoint: {error}", file=sys.stderr)
        return 1
    print("\n".join(f"deleted {item}" for item in deleted) or f"nothing of {name_prefix} to delete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
