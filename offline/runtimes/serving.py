"""Serving, offline: a SageMaker model's containers answer requests as their images would, in series for an
inference pipeline. Each image is served by the runner registered for its framework in SERVERS; a model with
any other image is refused, never served by something else.

- Built-in XGBoost (algorithm mode, no SAGEMAKER_PROGRAM): the archive's `xgboost-model` scores CSV rows.
- scikit-learn (framework mode): the model's own module (SAGEMAKER_PROGRAM, from the archive's code/ folder, where
  the SDK repacks it under network isolation) runs under the serving toolkit's contract: model_fn(model_dir),
  then input_fn, predict_fn and output_fn per request, with sagemaker-inference's decoders and encoders as the
  defaults the container uses for a function the module does not define.
"""
from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from contract.serving import CODE_DIRECTORY  # SAGEMAKER_SUBMIT_DIRECTORY of code repacked into the model archive
from stacks.settings.image_table import IMAGE_TABLE

CSV = "text/csv"
MODEL_FILE = "xgboost-model"  # the file name SageMaker's XGBoost container uses inside model.tar.gz
XGBOOST_ACCEPTS = ("application/json", "application/jsonlines", "application/x-recordio-protobuf", CSV)  # serve.py
_IMPORTS = threading.Lock()  # sys.path is the process's: one user module is imported at a time


class ModelError(Exception):
    """A container answered an error: its status and message, as InvokeEndpoint reports a model's error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def repository(image: str) -> str:
    """`<repository>` of `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` (or `@<digest>`)."""
    return image.split("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def unpack(archive: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


class XGBoostAlgorithm:
    """The 1.7-1 image's algorithm-mode server (algorithm_mode/serve.py): CSV rows of features in; out, one line per
    row: the prediction (binary:logistic, reg:*, multi:softmax) or the row's K class probabilities
    (multi:softprob) comma-separated, as sagemaker-containers' CSV encoder writes them; under batch transform
    (SAGEMAKER_BATCH, which SageMaker sets there) each row's Python text instead: `[p0, p1, p2]` for K
    probabilities. application/json answers {"predictions": [{"score": ...}]}."""

    def __init__(self, container: dict, archive: bytes) -> None:
        import xgboost

        environment = container.get("Environment", {})
        if environment.get("SAGEMAKER_PROGRAM"):
            raise ValueError("XGBoost in framework mode (SAGEMAKER_PROGRAM set) has no offline runner yet; "
                             "register one in offline/runtimes/serving.py SERVERS")
        if "SAGEMAKER_INFERENCE_OUTPUT" in environment:
            raise ValueError("XGBoost's selectable inference output (SAGEMAKER_INFERENCE_OUTPUT) is not served "
                             "offline; remove it or add it to offline/runtimes/serving.py XGBoostAlgorithm")
        self.batch = bool(environment.get("SAGEMAKER_BATCH"))
        self.default_accept = environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", CSV)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            try:
                member = tar.extractfile(MODEL_FILE)
            except KeyError:
                raise ValueError(f"the model archive has no {MODEL_FILE}; it has {', '.join(tar.getnames())}") from None
            self.booster = xgboost.Booster()
            self.booster.load_model(bytearray(member.read()))

    def __call__(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        import xgboost

        if content_type != CSV:
            raise ModelError(415, f"Content type {content_type} is not supported by the XGBoost algorithm's CSV "
                                  "inference here; send text/csv")
        try:
            rows = np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
        except ValueError as error:
            raise ModelError(415, f"Loading csv data failed with Exception: {error}") from None
        predictions = self.booster.predict(xgboost.DMatrix(rows)).tolist()
        accept = accept.split(";")[0].strip().lower()
        accept = self.default_accept if accept in ("", "*/*") else accept
        if accept not in XGBOOST_ACCEPTS:
            raise ModelError(406, f"Accept type {accept} is not supported. Please use supported accept types: "
                                  f"{list(XGBOOST_ACCEPTS)}.")
        if self.batch:  # under batch transform the server writes each row's Python text, whatever the Accept
            return "".join(f"{prediction}\n" for prediction in predictions).encode(), accept
        if accept == "application/json":
            return json.dumps({"predictions": [{"score": p} for p in predictions]}).encode(), accept
        if accept != CSV:
            raise ModelError(406, f"Accept type {accept} is not served offline by the XGBoost algorithm; ask for "
                                  f"{CSV} or application/json")
        rows_out = (p if isinstance(p, list) else [p] for p in predictions)  # K probabilities, or one value
        return "".join(",".join(map(str, row)) + "\n" for row in rows_out).encode(), CSV


class SklearnFramework:
    """The scikit-learn serving container: the model's own inference functions, loaded once per container."""

    def __init__(self, container: dict, archive: bytes) -> None:
        from sagemaker_inference import decoder, encoder

        environment = container.get("Environment", {})
        program, directory = environment.get("SAGEMAKER_PROGRAM"), environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if not program:
            raise ValueError("a scikit-learn model needs SAGEMAKER_PROGRAM, the module with its model_fn")
        if directory != CODE_DIRECTORY:  # an s3:// source would need the network, which isolation removes
            raise ValueError(f"SAGEMAKER_SUBMIT_DIRECTORY must be {CODE_DIRECTORY} (the code repacked into the "
                             f"model archive) under network isolation, got {directory!r}")
        self.folder = tempfile.TemporaryDirectory(prefix="model-")
        model_dir = Path(self.folder.name)
        unpack(archive, model_dir)
        source = model_dir / "code" / program
        if not source.is_file():
            raise ValueError(f"the model archive has no code/{program}")
        self.module = _import(source)
        if not hasattr(self.module, "model_fn"):
            raise ValueError(f"{program} defines no model_fn; the scikit-learn container needs one to load the "
                             "model")
        self.model = self.module.model_fn(str(model_dir))
        self.default_accept = environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        self.input_fn = getattr(self.module, "input_fn", decoder.decode)
        self.predict_fn = getattr(self.module, "predict_fn", lambda data, model: model.predict(data))
        self.output_fn = getattr(self.module, "output_fn", lambda prediction, accept: (
            encoder.encode(prediction, accept), accept))

    def __call__(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        accept = self.default_accept if accept in ("", "*/*") else accept
        data = body.decode() if content_type in (CSV, "application/json") else body
        try:
            answer = self.output_fn(self.predict_fn(self.input_fn(data, content_type), self.model), accept)
        except Exception as error:  # the toolkit answers a handler's error with its message
            raise ModelError(400, f"{type(error).__name__}: {error}") from None
        body, kind = answer if isinstance(answer, tuple) else (answer, accept)
        return (body.encode() if isinstance(body, str) else bytes(body)), kind


def _import(source: Path) -> Any:
    """The user's module, imported as the container does (its folder on the path for its own imports)."""
    name = f"offline_model_{uuid.uuid4().hex}"
    with _IMPORTS:
        sys.path.insert(0, str(source.parent))
        try:
            spec = importlib.util.spec_from_file_location(name, source)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(source.parent))
    return module


# Framework -> what runs a container of its image (stacks/settings/image_table.py), and so image repository -> runner.
# An image not listed here is refused.
SERVERS: dict[str, Callable[[dict, bytes], Callable[[bytes, str, str], tuple[bytes, str]]]] = {
    "xgboost": XGBoostAlgorithm,
    "sklearn": SklearnFramework,
}
RUNNERS = {row.repository: SERVERS[row.framework] for row in IMAGE_TABLE if row.framework in SERVERS}


def unsupported_images(images: list[str]) -> list[str]:
    return [image for image in images if repository(image) not in RUNNERS]


class ServedModel:
    """A model's containers, loaded; calling it answers one request through all of them in series."""

    def __init__(self, model: dict, read: Callable[[str], bytes], batch: bool = False) -> None:
        containers = model.get("Containers") or [model["PrimaryContainer"]]
        if batch:  # what SageMaker adds to every container's environment under batch transform
            containers = [{**c, "Environment": {**c.get("Environment", {}), "SAGEMAKER_BATCH": "true"}}
                          for c in containers]
        if len(containers) > 1 and model.get("InferenceExecutionConfig", {}).get("Mode", "Serial") != "Serial":
            raise ValueError("only Serial inference pipelines are served offline")
        refused = unsupported_images([c["Image"] for c in containers])
        if refused:
            raise ValueError(f"image {refused[0]} has no offline runner; register one in offline/runtimes/serving.py SERVERS")
        self.containers = [RUNNERS[repository(c["Image"])](c, read(c["ModelDataUrl"])) for c in containers]

    def __call__(self, body: bytes, content_type: str = CSV, accept: str = CSV) -> tuple[bytes, str]:
        for index, container in enumerate(self.containers):
            last = index == len(self.containers) - 1
            body, content_type = container(body, content_type, accept if last else "")
        return body, content_type
