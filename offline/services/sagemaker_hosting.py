"""Local SageMaker hosting: endpoint configs, endpoints that really serve their model's containers (InvokeEndpoint,
with data capture into S3 as SageMaker writes it), every production variant of a config (traffic split by weight,
or sent to the variant a request names) and blue/green updates that SageMaker may roll back. Each call
answers as SageMaker does, errors included (codes and messages as SageMaker's)."""
from __future__ import annotations

import datetime
import json
import math
import random
import threading
import time
import uuid
from typing import Any, Callable

from offline.sources.assembly import ACCOUNT, REGION
from offline.runtimes.s3_objects import split_s3
from offline.sources.request_validation import RequestRefused as SageMakerError
from offline.runtimes.serving import ModelError

HOSTING_OPERATIONS = ("CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
                      "CreateEndpoint", "UpdateEndpoint", "DescribeEndpoint", "DeleteEndpoint")
CHANGING = ("Creating", "Updating", "RollingBack")


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _missing(what: str, name: str) -> SageMakerError:
    return SageMakerError("ValidationException", f"Could not find {what} \"{name}\".")


class LocalHosting:
    """Endpoints of one local account; `load_model(user, model)` gives the served model (offline/runtimes/serving.py)."""

    def __init__(self, s3: Any, models: dict[str, dict], load_model: Callable[[str, dict], Any],
                 lock: threading.Lock) -> None:
        self.s3, self.models, self.load_model, self.lock = s3, models, load_model, lock
        self.configs: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        # endpoint -> (config name, {variant: served model}) answering requests
        self.serving: dict[str, tuple[str, dict[str, Any]]] = {}
        self.pending: dict[str, tuple[str, float]] = {}  # endpoint -> (config, start) of the update under way
        self.injected_endpoint_failures: list[str] = []  # reasons for the next endpoints' fleets
        self.injected_rollbacks: list[str] = []  # alarms that fire while the next updates bake
        # endpoint -> its blue/green updates: the new fleet's share of traffic after each step, and how it ended
        self.rollouts: dict[str, list[dict]] = {}
        self.held_seconds: float | None = None  # how long the next endpoint created stays Creating
        self.clock = lambda: datetime.datetime.now(datetime.UTC)  # when requests arrive (tests may set the hour)

    # -- test hooks ---------------------------------------------------------------------------
    def fail_next_endpoint(self, reason: str, after: int = 0) -> None:
        """The next endpoint created (or updated), or the one `after` more changes, fails to start its fleet, as
        with a model that cannot load."""
        self.injected_endpoint_failures += [None] * after + [reason]

    def hold_next_endpoint(self, seconds: float) -> None:
        """The next endpoint created stays Creating for `seconds` (a fleet that takes long to start)."""
        self.held_seconds = seconds

    def trip_alarm_during_next_update(self, alarm: str) -> None:
        """An alarm of the next update's AutoRollbackConfiguration fires while it bakes: SageMaker rolls back."""
        self.injected_rollbacks.append(alarm)

    # -- API ----------------------------------------------------------------------------------
    def handle(self, operation: str, request: dict) -> dict:
        return getattr(self, f"_{operation}")(request)

    def _CreateEndpointConfig(self, request: dict) -> dict:
        name = request["EndpointConfigName"]
        with self.lock:
            if name in self.configs:
                raise SageMakerError("ValidationException", "Cannot create already existing endpoint configuration "
                                                            f"\"{_arn('endpoint-config', name)}\".")
            names = [variant["VariantName"] for variant in request["ProductionVariants"]]
            if len(set(names)) != len(names):  # the endpoint's variants are told apart by name (TargetVariant)
                raise SageMakerError("ValidationException", "The variant names in ProductionVariants must be "
                                                            f"unique, got {', '.join(names)}")
            for variant in request["ProductionVariants"]:
                if variant.get("ModelName") not in self.models:
                    raise _missing("model", variant.get("ModelName"))
            capture = request.get("DataCaptureConfig")
            if capture and capture.get("EnableCapture", True) and not capture["DestinationS3Uri"].startswith("s3://"):
                raise SageMakerError("ValidationException", "DestinationS3Uri must be an S3 URI")
            self.configs[name] = {**request, "EndpointConfigArn": _arn("endpoint-config", name),
                                  "CreationTime": time.time()}
        return {"EndpointConfigArn": _arn("endpoint-config", name)}

    def _DescribeEndpointConfig(self, request: dict) -> dict:
        with self.lock:
            if request["EndpointConfigName"] not in self.configs:
                raise _missing("endpoint configuration", request["EndpointConfigName"])
            return dict(self.configs[request["EndpointConfigName"]])

    def _DeleteEndpointConfig(self, request: dict) -> dict:
        with self.lock:
            if self.configs.pop(request["EndpointConfigName"], None) is None:
                raise _missing("endpoint configuration", request["EndpointConfigName"])
        return {}

    def _ListEndpointConfigs(self, request: dict) -> dict:
        with self.lock:
            found = [c for c in self.configs.values() if request.get("NameContains", "") in c["EndpointConfigName"]]
        return {"EndpointConfigs": [{k: c[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")}
                                    for c in found]}

    def _CreateEndpoint(self, request: dict) -> dict:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        with self.lock:
            if name in self.endpoints:
                raise SageMakerError("ValidationException",
                                     f"Cannot create already existing endpoint \"{_arn('endpoint', name)}\".")
            if config not in self.configs:
                raise _missing("endpoint configuration", config)
            now = time.time()
            self.endpoints[name] = {"EndpointName": name, "EndpointArn": _arn("endpoint", name),
                                    "EndpointConfigName": config, "EndpointStatus": "Creating", "CreationTime": now,
                                    "LastModifiedTime": now}
            failure = self.injected_endpoint_failures.pop(0) if self.injected_endpoint_failures else None
            held, self.held_seconds = self.held_seconds or 0, None
        threading.Thread(target=self._provision, args=(name, config, failure, None, held), daemon=True).start()
        return {"EndpointArn": _arn("endpoint", name)}

    def _UpdateEndpoint(self, request: dict) -> dict:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        with self.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                raise _missing("endpoint", name)
            if endpoint["EndpointStatus"] != "InService":
                raise SageMakerError("ValidationException", f"Cannot update in-progress endpoint \"{endpoint['EndpointArn']}\".")
            if config not in self.configs:
                raise _missing("endpoint configuration", config)
            steps = self._check_blue_green(request.get("DeploymentConfig", {}), endpoint, self.configs[config])
            alarms = [a["AlarmName"] for a in request.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {})
                      .get("Alarms", [])]
            tripped = self.injected_rollbacks.pop(0) if self.injected_rollbacks else None
            endpoint.update(EndpointStatus="Updating", LastModifiedTime=time.time())
            endpoint.pop("FailureReason", None)
            self.pending[name] = (config, time.time())
            failure = self.injected_endpoint_failures.pop(0) if self.injected_endpoint_failures else None
        rollback = tripped if tripped in alarms else None  # an alarm the update does not name rolls nothing back
        threading.Thread(target=self._provision, args=(name, config, failure, rollback, 0, steps), daemon=True).start()
        return {"EndpointArn": endpoint["EndpointArn"]}

    def _check_blue_green(self, deployment: dict, endpoint: dict, config: dict) -> list[float]:
        """What botocore's model and the deployment guardrails guide ask of a blue/green update: a timeout longer
        than its waits, the same variants as the endpoint serves (guardrails shift traffic variant by variant), and
        steps SageMaker takes (the CloudFormation reference's TrafficRoutingConfig: a canary is at most 50% of the
        variant's total instance count, a linear step 10-50% of it). Returns the new fleet's share of traffic after
        each step."""
        policy = deployment.get("BlueGreenUpdatePolicy")
        if not policy:
            return [1.0]
        routing = policy["TrafficRoutingConfiguration"]
        waits = policy.get("TerminationWaitInSeconds", 0) + routing.get("WaitIntervalInSeconds", 0)
        if policy.get("MaximumExecutionTimeoutInSeconds", 28800) <= waits:
            raise SageMakerError("ValidationException", "MaximumExecutionTimeoutInSeconds must be larger than "
                                                        f"TerminationWaitInSeconds plus WaitIntervalInSeconds ({waits})")
        serving = {v["VariantName"] for v in self.configs[endpoint["EndpointConfigName"]]["ProductionVariants"]}
        if {v["VariantName"] for v in config["ProductionVariants"]} != serving:
            raise SageMakerError("ValidationException", "A deployment with a BlueGreenUpdatePolicy must keep the "
                                                        f"endpoint's variants ({', '.join(sorted(serving))})")
        kind = routing["Type"]
        if kind == "ALL_AT_ONCE":
            return [1.0]
        field = "CanarySize" if kind == "CANARY" else "LinearStepSize"
        size = routing.get(field)
        if size is None:
            raise SageMakerError("ValidationException", f"A {kind} traffic routing needs its {field}")
        instances = config["ProductionVariants"][0].get("InitialInstanceCount", 1)
        share = size["Value"] / (instances if size["Type"] == "INSTANCE_COUNT" else 100)
        if not (0 < share <= 0.5 if kind == "CANARY" else 0.1 <= share <= 0.5):
            raise SageMakerError("ValidationException", f"{field} of {size['Value']} ({size['Type']}) is "
                                                        f"{share:.0%} of the "
                                                        f"variant's {instances} instances; it must be "
                                                        f"{'at most 50%' if kind == 'CANARY' else '10-50%'}")
        if kind == "CANARY":
            return [share, 1.0]
        return [min(1.0, share * k) for k in range(1, math.ceil(1 / share - 1e-9) + 1)]

    def _DescribeEndpoint(self, request: dict) -> dict:
        with self.lock:
            if request["EndpointName"] not in self.endpoints:
                raise _missing("endpoint", request["EndpointName"])
            endpoint = dict(self.endpoints[request["EndpointName"]])
            config = self.configs.get(endpoint["EndpointConfigName"], {})
            served = self.serving.get(request["EndpointName"])
            pending = self.pending.get(request["EndpointName"]) if endpoint["EndpointStatus"] == "Updating" else None
        # botocore's model: the variants of the fleet that serves (ProductionVariantSummary), and while an update
        # is under way the config it moves to (PendingDeploymentSummary); EndpointConfigName stays the old one.
        if served:
            endpoint["ProductionVariants"] = [_summary(v) for v in self.configs[served[0]]["ProductionVariants"]]
        if pending:
            endpoint["PendingDeploymentSummary"] = {"EndpointConfigName": pending[0], "StartTime": pending[1]}
        if config.get("DataCaptureConfig"):
            capture = config["DataCaptureConfig"]
            endpoint["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True), "CaptureStatus": "Started",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"], **({"KmsKeyId": capture["KmsKeyId"]}
                                                                    if "KmsKeyId" in capture else {})}
        return endpoint

    def _DeleteEndpoint(self, request: dict) -> dict:
        """Refused while the endpoint changes."""
        name = request["EndpointName"]
        with self.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                raise _missing("endpoint", name)
            if endpoint["EndpointStatus"] in CHANGING:
                raise SageMakerError("ValidationException", f"Cannot delete in-progress endpoint \"{endpoint['EndpointArn']}\".")
            del self.endpoints[name]
            self.serving.pop(name, None)
        return {}

    # -- the fleet ----------------------------------------------------------------------------
    def _provision(self, name: str, config: str, failure: str | None, rollback: str | None,
                   delay: float = 0, steps: list[float] | None = None) -> None:
        """Start the config's model on a (new) fleet: in service, failed, or rolled back to the old fleet. An update
        shifts traffic in `steps`, each baking while its alarms watch; a tripped alarm rolls back during the first."""
        time.sleep(delay)
        try:
            if failure:
                raise RuntimeError(failure)
            model = {variant["VariantName"]: self.load_model(f"endpoint/{name}", self.models[variant["ModelName"]])
                     for variant in self.configs[config]["ProductionVariants"]}
        except Exception as error:
            self._settle(name, config, None, f"Failed to start the fleet: {error}")
            return
        if steps is not None:
            shifted = steps[:1] + [0.0] if rollback else steps
            with self.lock:
                self.rollouts.setdefault(name, []).append({
                    "config": config, "steps": shifted,
                    "outcome": f"rolled back: alarm {rollback}" if rollback else "completed"})
        if rollback:
            self._settle(name, config, None, f"Rolled back: alarm {rollback} fired while the update baked.")
            return
        self._settle(name, config, model, None)

    def _settle(self, name: str, config: str, model: Any, failure: str | None) -> None:
        with self.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None:  # deleted meanwhile
                return
            updating = endpoint["EndpointStatus"] == "Updating"
            self.pending.pop(name, None)
            if model is not None:
                self.serving[name] = (config, model)
                endpoint.update(EndpointStatus="InService", EndpointConfigName=config)
            elif updating:  # the old fleet keeps serving, on the old config
                endpoint.update(EndpointStatus="InService", FailureReason=failure)
            else:
                endpoint.update(EndpointStatus="Failed", FailureReason=failure)
            endpoint["LastModifiedTime"] = time.time()

    # -- runtime ------------------------------------------------------------------------------
    def answering_variant(self, name: str, target: str | None) -> str | None:
        """The variant that answers a request: the one it names, else one the variants' weights pick (botocore's
        sagemaker-runtime model, TargetVariant: it overrides the weights)."""
        if target:
            return target
        with self.lock:
            serving = self.serving.get(name)
        return _weighted(self.configs.get(serving[0], {}).get("ProductionVariants", [])) if serving else None

    def invoke(self, name: str, body: bytes, content_type: str, accept: str = "text/csv",
               inference_id: str | None = None, target: str | None = None) -> tuple[int, dict]:
        """(HTTP status, answer) of InvokeEndpoint: the answer of the variant `target` names (or one chosen by
        answering_variant), and the capture SageMaker writes under that variant."""
        with self.lock:
            endpoint = self.endpoints.get(name)
            serving = self.serving.get(name)
        if endpoint is None or serving is None or endpoint["EndpointStatus"] not in ("InService", "Updating"):
            return 400, {"__type": "ValidationError", "message": f"Endpoint {name} of account {ACCOUNT} not found."}
        config, models = serving
        variant = self.answering_variant(name, target)
        if variant not in models:
            return 400, {"__type": "ValidationError", "message": f"Variant {variant} of endpoint {name} not found."}
        try:
            answer, kind = models[variant](body, content_type, accept)
        except ModelError as error:  # a container's error, as SageMaker Runtime reports it
            return 424, {"__type": "ModelError", "message": f"Received client error ({error.status}) from "
                                                            f"primary with message \"{error}\""}
        self._capture(name, variant, self.configs.get(config, {}), body.decode(), answer.decode(), inference_id)
        return 200, {"body": answer.decode(), "content_type": kind, "variant": variant}

    def _capture(self, name: str, variant: str, config: dict, request: str, response: str,
                 inference_id: str | None) -> None:
        """One JSON line per captured request under <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/, as
        SageMaker's data capture writes it (sampled at InitialSamplingPercentage), with the request's InferenceId
        as eventMetadata.inferenceId (SageMaker guide, "Capture data")."""
        capture = config.get("DataCaptureConfig")
        if not capture or not capture.get("EnableCapture", True):
            return
        if random.uniform(0, 100) >= capture["InitialSamplingPercentage"]:
            return
        now = self.clock()
        modes = {option["CaptureMode"] for option in capture["CaptureOptions"]}
        record = {"captureData": {
            **({"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": request,
                                  "encoding": "CSV"}} if "Input" in modes else {}),
            **({"endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": response,
                                   "encoding": "CSV"}} if "Output" in modes else {})},
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              **({"inferenceId": inference_id} if inference_id else {})},
            "eventVersion": "0"}
        bucket, prefix = split_s3(capture["DestinationS3Uri"].rstrip("/"))
        key = f"{prefix}/{name}/{variant}/{now:%Y/%m/%d/%H}/{now:%M-%S-%f}-{uuid.uuid4().hex[:8]}.jsonl"
        self.s3.put_object(Bucket=bucket, Key=key, Body=(json.dumps(record) + "\n").encode())


def _summary(variant: dict) -> dict:
    weight, count = float(variant.get("InitialVariantWeight", 1.0)), variant.get("InitialInstanceCount", 1)
    return {"VariantName": variant["VariantName"], "CurrentWeight": weight, "DesiredWeight": weight,
            "CurrentInstanceCount": count, "DesiredInstanceCount": count}


def _weighted(variants: list[dict]) -> str | None:
    """The variant a request without TargetVariant goes to: each takes its InitialVariantWeight's share of the
    sum of the weights (botocore's sagemaker model, ProductionVariant.InitialVariantWeight; 1.0 when absent)."""
    weights = [float(v.get("InitialVariantWeight", 1.0)) for v in variants]
    if not variants or not sum(weights):
        return None
    return random.choices([v["VariantName"] for v in variants], weights)[0]
