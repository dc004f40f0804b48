"""Runs the real Lambda handlers, as CDK packaged them, the way Lambda invokes them: as the function's role."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import traceback
from types import ModuleType

from offline.sources.assembly import LocalFunction
from offline.iam.iam import LocalIam


class _Environment(ModuleType):
    """What a handler module sees as `os`: the real module, but `environ` is its function's own environment
    on top of the process's. The process environment itself is never changed while interpreter threads
    create clients from it."""

    def __init__(self, environment: dict[str, str]) -> None:
        super().__init__("os")
        self.environ = {**os.environ, **environment}

    def __getattr__(self, name: str):
        return getattr(os, name)


class LocalLambda:
    """One handler at a time, as one Lambda execution environment runs one invocation at a time."""

    def __init__(self, functions: dict[str, LocalFunction], iam: LocalIam) -> None:
        self.functions, self.iam = functions, iam
        self.lock = threading.Lock()
        self.modules: dict[str, ModuleType] = {}
        self.invocations: list[tuple[str, dict]] = []

    def find(self, name_or_arn: str) -> LocalFunction | None:
        return self.functions.get(name_or_arn) or next(
            (f for arn, f in self.functions.items() if f.name == name_or_arn), None)

    def _load(self, function: LocalFunction) -> ModuleType:
        if function.name not in self.modules:
            module_name, _ = function.handler.rsplit(".", 1)
            # Helper modules (dataset, rules) import by plain name from the code folder, as in Lambda.
            sys.path.insert(0, str(function.code_dir))
            spec = importlib.util.spec_from_file_location(
                f"lambda_{function.name}", function.code_dir / f"{module_name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # as an import registers it (dataclasses, pickling look it up)
            spec.loader.exec_module(module)
            module.os = _Environment(function.environment)
            self.modules[function.name] = module
        return self.modules[function.name]

    def invoke(self, function: LocalFunction, payload: bytes) -> tuple[bytes, bool]:
        """(response payload, whether the function raised), like Lambda's Invoke API."""
        event = json.loads(payload or b"null")
        with self.lock:
            self.invocations.append((function.name, event))
            try:
                handler = getattr(self._load(function), function.handler.rsplit(".", 1)[1])
                with self.iam.acting_as(function.role_arn, session=function.name):  # Lambda's session name
                    return json.dumps(handler(event, None)).encode(), False
            except Exception as error:  # reported to the state machine as Lambda reports it
                return json.dumps({"errorMessage": str(error), "errorType": type(error).__name__,
                                   "stackTrace": traceback.format_tb(error.__traceback__)}).encode(), True
