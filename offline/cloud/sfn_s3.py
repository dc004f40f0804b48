"""Teaches moto's Step Functions interpreter a Distributed Map's S3 ItemReader as Step Functions runs one.

moto reads the items itself, outside any Task: with no one acting, IAM offline would not authorize the call, and its
listing stops at S3's first page (1,000 keys) and hands the SDK's datetime objects on as items. Here the reader calls
S3 as the execution's role (Step Functions developer guide, "IAM policies for using Distributed Map states": the
state machine's role lists the bucket and reads the objects), lists every page, and gives each object as the
ItemReader page's example item shows one: Etag, Key, LastModified (epoch seconds), Size, StorageClass. The kit's own
workflows read only Key, which every shape has.
"""
from __future__ import annotations

import threading

from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
    ResourceEvalS3)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials

from offline.iam import iam

_installed = threading.Lock()
_original_eval = ResourceEvalS3.eval_resource


def _object_item(listed: dict) -> dict:
    return {"Etag": listed["ETag"], "Key": listed["Key"], "LastModified": int(listed["LastModified"].timestamp()),
            "Size": listed["Size"], "StorageClass": listed.get("StorageClass", "STANDARD")}


def _list_every_object(env, resource_runtime_part, state_credentials: StateCredentials) -> None:
    client = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                           state_credentials=state_credentials)
    items = []
    for page in client.get_paginator("list_objects_v2").paginate(**env.stack.pop()):
        items += [_object_item(listed) for listed in page.get("Contents", [])]
    env.stack.append(items)


def _as_execution_role(self, env) -> None:
    execution = env.states.context_object.context_object_data["Execution"]
    account = iam.account_of(execution["RoleArn"])
    if account is None:  # a state machine the local account did not create
        return _original_eval(self, env)
    with account.acting_as(execution["RoleArn"], session=execution["Name"][:64]):
        return _original_eval(self, env)


def install() -> None:
    with _installed:
        ResourceEvalS3._handle_list_objects_v2 = staticmethod(_list_every_object)
        ResourceEvalS3.eval_resource = _as_execution_role
