"""Loopback HTTP endpoints for the Lambda Invoke API, the SageMaker JSON API, SageMaker Runtime's InvokeEndpoint
and, for AWS CLI commands run in a shell, the Step Functions API and STS AssumeRole.

moto's Step Functions interpreter calls services through boto3; AWS_ENDPOINT_URL_LAMBDA and
AWS_ENDPOINT_URL_SAGEMAKER (and _SAGEMAKER_RUNTIME) point those clients here, so no call leaves this machine.
Step Functions and STS requests are answered by the local account's clients (moto, in this process).
"""
from __future__ import annotations

import datetime
import json
import threading
import uuid
from typing import Any
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

from offline.sources.assembly import REGION
from offline.services.lambda_service import LocalLambda
from offline.services.sagemaker_service import LocalSageMaker, SageMakerError


class _Handler(BaseHTTPRequestHandler):
    server: "LocalEndpoints"

    def log_message(self, *args) -> None:  # keep the run's output to the workflow's progress
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4()),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        if self.path.startswith("/2015-03-31/functions/") and self.path.endswith("/invocations"):
            function = self.server.lambda_.find(unquote(self.path.split("/")[3]))
            if function is None:
                self._reply(404, json.dumps({"Type": "User", "message": "Function not found"}).encode(),
                            {"X-Amzn-ErrorType": "ResourceNotFoundException"})
                return
            payload, raised = self.server.lambda_.invoke(function, body)
            self._reply(200, payload, {"X-Amz-Function-Error": "Unhandled"} if raised else {})
        elif self.path.startswith("/endpoints/") and self.path.endswith("/invocations"):  # sagemaker-runtime
            endpoint, hosting = unquote(self.path.split("/")[2]), self.server.sagemaker.hosting
            variant = hosting.answering_variant(endpoint, self.headers.get("X-Amzn-SageMaker-Target-Variant"))
            with self.server.sagemaker.serving_as_model_role(endpoint, variant):  # it captures as its model's role
                status, answer = hosting.invoke(
                    endpoint, body, self.headers.get("Content-Type", ""), self.headers.get("Accept", ""),
                    self.headers.get("X-Amzn-SageMaker-Inference-Id"), variant)
            if status == 200:  # botocore's sagemaker-runtime model: InvokedProductionVariant's header
                self._reply(200, answer["body"].encode(), {"Content-Type": answer["content_type"],
                                                           "x-Amzn-Invoked-Production-Variant": answer["variant"]})
            else:
                self._reply(status, json.dumps(answer).encode(), {"X-Amzn-ErrorType": answer["__type"]})
        elif target.startswith("SageMaker."):
            try:
                result = self.server.sagemaker.handle(target.split(".", 1)[1], json.loads(body or b"{}"))
                self._reply(200, json.dumps(result).encode())
            except SageMakerError as error:
                self._reply(400, json.dumps({"__type": error.code, "message": str(error)}).encode())
        elif target.startswith("AWSStepFunctions."):
            self._step_functions(target.split(".", 1)[1], json.loads(body or b"{}"))
        elif self.path == "/" and parse_qs(body.decode()).get("Action") == ["AssumeRole"]:  # STS, query protocol
            self._assume_role({k: v[0] for k, v in parse_qs(body.decode()).items()})
        else:
            self._reply(404, b'{"message": "not a local endpoint"}')

    def _assume_role(self, request: dict) -> None:
        answer = self.server.sts.assume_role(RoleArn=request["RoleArn"], RoleSessionName=request["RoleSessionName"])
        credentials, user = answer["Credentials"], answer["AssumedRoleUser"]
        self.server.assumed.append(request["RoleArn"])
        fields = {**credentials, **user, "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "RequestId": str(uuid.uuid4())}
        self._reply(200, _ASSUMED.format(**{k: escape(str(v)) for k, v in fields.items()}).encode(),
                    {"Content-Type": "text/xml"})

    def _step_functions(self, operation: str, request: dict) -> None:
        try:
            answer = getattr(self.server.sfn, xform_name(operation))(**request)
        except ClientError as error:
            self._reply(400, json.dumps({"__type": error.response["Error"]["Code"],
                                         "message": error.response["Error"].get("Message")}).encode())
            return
        answer.pop("ResponseMetadata", None)
        self._reply(200, json.dumps(answer, default=_epoch_seconds).encode(),
                    {"Content-Type": "application/x-amz-json-1.0"})


_ASSUMED = ("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
            "<Credentials><AccessKeyId>{AccessKeyId}</AccessKeyId><SecretAccessKey>{SecretAccessKey}</SecretAccessKey>"
            "<SessionToken>{SessionToken}</SessionToken><Expiration>{Expiration}</Expiration></Credentials>"
            "<AssumedRoleUser><Arn>{Arn}</Arn><AssumedRoleId>{AssumedRoleId}</AssumedRoleId></AssumedRoleUser>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>{RequestId}</RequestId></ResponseMetadata>"
            "</AssumeRoleResponse>")


def _epoch_seconds(value: Any) -> float:
    """Timestamps as the JSON protocols send them."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"cannot send {type(value).__name__}")


class LocalEndpoints(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lambda_: LocalLambda, sagemaker: LocalSageMaker, sfn: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lambda_, self.sagemaker, self.sfn = lambda_, sagemaker, sfn
        self.sts = boto3.client("sts", region_name=REGION)
        self.assumed: list[str] = []  # role ARNs, in the order they were assumed
        # shutdown() waits for the loop's next poll: 0.05 s rather than the default 0.5 s per local account.
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"
