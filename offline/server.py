"""Loopback HTTP endpoints for the Lambda Invoke API, the SageMaker JSON API and SageMaker Runtime's InvokeEndpoint.

moto's Step Functions interpreter calls services through boto3; AWS_ENDPOINT_URL_LAMBDA and
AWS_ENDPOINT_URL_SAGEMAKER (and _SAGEMAKER_RUNTIME) point those clients here, so no call leaves this machine.
"""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from offline.lambda_service import LocalLambda
from offline.sagemaker_service import LocalSageMaker, SageMakerError


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
            status, answer = self.server.sagemaker.hosting.invoke(
                unquote(self.path.split("/")[2]), body, self.headers.get("Content-Type", ""),
                self.headers.get("X-Amzn-SageMaker-Inference-Id"))
            if status == 200:
                self._reply(200, answer["body"].encode(), {"Content-Type": answer["content_type"]})
            else:
                self._reply(status, json.dumps(answer).encode(), {"X-Amzn-ErrorType": answer["__type"]})
        elif target.startswith("SageMaker."):
            try:
                result = self.server.sagemaker.handle(target.split(".", 1)[1], json.loads(body or b"{}"))
                self._reply(200, json.dumps(result).encode())
            except SageMakerError as error:
                self._reply(400, json.dumps({"__type": error.code, "message": str(error)}).encode())
        else:
            self._reply(404, b'{"message": "not a local endpoint"}')


class LocalEndpoints(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lambda_: LocalLambda, sagemaker: LocalSageMaker) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lambda_, self.sagemaker = lambda_, sagemaker
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"
