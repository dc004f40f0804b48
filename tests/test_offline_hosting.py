"""The local SageMaker hosting on its own: an endpoint serves every production variant of its config, splits
traffic by the variants' weights unless a request names its variant, and captures each variant's traffic under
that variant's folder, as SageMaker does."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from offline.services.sagemaker_hosting import LocalHosting
from offline.sources.request_validation import RequestRefused


class _Objects:
    """Where the capture goes: put_object calls, kept by key."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[f"{Bucket}/{Key}"] = Body


def _model(answer: str):
    return lambda body, content_type, accept: (answer.encode(), "text/csv")


@pytest.fixture()
def hosting():
    models = {"m-old": {"ModelName": "m-old"}, "m-new": {"ModelName": "m-new"}}
    hosting = LocalHosting(_Objects(), models, lambda user, model: _model(model["ModelName"]), threading.Lock())
    return hosting


def _serve(hosting: LocalHosting, variants: list[dict]) -> None:
    hosting.handle("CreateEndpointConfig", {
        "EndpointConfigName": "c", "ProductionVariants": variants,
        "DataCaptureConfig": {"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/capture",
                              "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}})
    hosting.handle("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"})
    deadline = time.monotonic() + 5
    while hosting.endpoints["e"]["EndpointStatus"] != "InService" and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_variant_without_weight_takes_only_the_requests_that_name_it(hosting):
    _serve(hosting, [{"VariantName": "AllTraffic", "ModelName": "m-old", "InitialVariantWeight": 1},
                     {"VariantName": "Candidate", "ModelName": "m-new", "InitialVariantWeight": 0}])
    answers = Counter(hosting.invoke("e", b"1,2", "text/csv")[1]["body"] for _ in range(50))
    assert answers == {"m-old": 50}
    status, named = hosting.invoke("e", b"1,2", "text/csv", target="Candidate")
    assert (status, named["body"], named["variant"]) == (200, "m-new", "Candidate")
    folders = Counter(key.split("/")[3] for key in hosting.s3.objects)
    assert folders == {"AllTraffic": 50, "Candidate": 1}
    (candidate,) = [body for key, body in hosting.s3.objects.items() if "/Candidate/" in key]
    assert json.loads(candidate)["captureData"]["endpointOutput"]["data"] == "m-new"


def test_weights_split_the_traffic_and_an_unknown_variant_is_refused(hosting):
    _serve(hosting, [{"VariantName": "A", "ModelName": "m-old", "InitialVariantWeight": 1},
                     {"VariantName": "B", "ModelName": "m-new", "InitialVariantWeight": 3}])
    answers = Counter(hosting.invoke("e", b"1", "text/csv")[1]["body"] for _ in range(400))
    assert 50 < answers["m-old"] < 150 and answers["m-old"] + answers["m-new"] == 400
    status, refused = hosting.invoke("e", b"1", "text/csv", target="C")
    assert (status, refused["__type"]) == (400, "ValidationError")


def test_two_variants_of_one_name_are_refused(hosting):
    with pytest.raises(RequestRefused, match="must be unique"):
        hosting.handle("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
            {"VariantName": "A", "ModelName": "m-old"}, {"VariantName": "A", "ModelName": "m-new"}]})



def test_describe_endpoint_names_the_serving_variants_and_the_update_under_way():
    """botocore's model: ProductionVariants summarizes the fleet that serves; while an update is under way,
    EndpointConfigName still names the config it leaves and PendingDeploymentSummary the one it moves to."""
    started = threading.Event()

    def load(user: str, model: dict):
        if model["ModelName"] == "m-new":
            started.wait(5)  # the new fleet starts only when the test has looked
        return _model(model["ModelName"])
    hosting = LocalHosting(_Objects(), {"m-old": {"ModelName": "m-old"}, "m-new": {"ModelName": "m-new"}}, load,
                           threading.Lock())
    _serve(hosting, [{"VariantName": "AllTraffic", "ModelName": "m-old", "InitialVariantWeight": 1,
                      "InitialInstanceCount": 2}])
    described = hosting.handle("DescribeEndpoint", {"EndpointName": "e"})
    assert described["ProductionVariants"] == [{"VariantName": "AllTraffic", "CurrentWeight": 1.0,
                                                "DesiredWeight": 1.0, "CurrentInstanceCount": 2,
                                                "DesiredInstanceCount": 2}]
    assert "PendingDeploymentSummary" not in described
    hosting.handle("CreateEndpointConfig", {"EndpointConfigName": "c2", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": "m-new"}]})
    hosting.handle("UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c2"})
    updating = hosting.handle("DescribeEndpoint", {"EndpointName": "e"})
    started.set()
    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == ("Updating", "c")
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
    deadline = time.monotonic() + 5
    while hosting.endpoints["e"]["EndpointStatus"] != "InService" and time.monotonic() < deadline:
        time.sleep(0.01)
    done = hosting.handle("DescribeEndpoint", {"EndpointName": "e"})
    assert done["EndpointConfigName"] == "c2" and "PendingDeploymentSummary" not in done
