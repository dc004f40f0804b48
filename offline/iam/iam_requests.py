"""What IAM authorizes for each AWS call made offline: the one table from a call to its actions, resources and
condition keys.

A call is (botocore service name, operation); its row gives the checks AWS makes for the caller: the action
and the resource ARN from the request (IAM service authorization reference: "Actions, resources, and condition
keys"), the condition keys it sets, and what the service does on the caller's behalf with the caller's own
permissions: iam:PassRole for each role a SageMaker request names (its fields of botocore shape `RoleArn`),
sagemaker:AddTags for tags given on create, and the KMS calls an S3 object, an SNS topic or a state machine
under a customer-managed key needs (S3, SNS and Step Functions developer guides on SSE-KMS). A call without a
row fails with a line naming this file: it is never let through unchecked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import botocore.session

from offline.sources.assembly import ACCOUNT, REGION

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


@dataclass(frozen=True)
class Check:
    """One authorization: may the caller do `action` on `resource`, with these condition keys?"""
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Keys:
    """The customer-managed KMS key (ARN) of each bucket, topic and state machine, from the templates."""
    buckets: Mapping[str, str] = field(default_factory=dict)
    topics: Mapping[str, str] = field(default_factory=dict)
    state_machines: Mapping[str, str] = field(default_factory=dict)
    queues: Mapping[str, str] = field(default_factory=dict)  # by queue name


# Every condition key a row sets when the call has it: a key not listed here is one offline does not model.
MODELED_KEYS = frozenset({
    "s3:prefix", "s3:if-none-match", "cloudwatch:namespace", "kms:ViaService", "kms:CallerAccount", "kms:EncryptionContext:aws:states:stateMachineArn",
    "iam:PassedToService", "sagemaker:InstanceTypes", "sagemaker:MaxRuntimeInSeconds", "sagemaker:NetworkIsolation",
    "sagemaker:InterContainerTrafficEncryption", "sagemaker:VolumeKmsKey", "sagemaker:OutputKmsKey",
    "aws:SourceArn"})  # aws:SourceArn: a rule invoking a function (offline/iam/iam.py, Lambda permissions)


class UnmappedCall(RuntimeError):
    """A call offline has no row in the table, so IAM cannot be evaluated for it."""


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _via(service: str) -> dict[str, str]:
    return {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}


# -- S3 ---------------------------------------------------------------------------------------------
def _object(action: str, kms_action: str | None) -> Callable[[Mapping, Keys], list[Check]]:
    """An object call; with the bucket's customer-managed key, S3 uses it with the caller's permissions."""
    def checks(params: Mapping, keys: Keys) -> list[Check]:
        # A conditional create (If-None-Match) sets s3:if-none-match (S3's condition keys for PutObject).
        context = {"s3:if-none-match": params["IfNoneMatch"]} if "IfNoneMatch" in params else {}
        found = [Check(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", context)]
        key = params.get("SSEKMSKeyId") or keys.buckets.get(params["Bucket"])
        if key and kms_action:
            found.append(Check(kms_action, key, _via("s3")))
        return found
    return checks


def _copy_object(params: Mapping, keys: Keys) -> list[Check]:
    """A copy reads its source and writes its target, each with the caller's permissions (S3 API reference,
    CopyObject: s3:GetObject on the source, s3:PutObject on the target)."""
    source = params["CopySource"]
    bucket, key = ((source["Bucket"], source["Key"]) if isinstance(source, Mapping)
                   else source.lstrip("/").split("/", 1))
    return [*_object("s3:GetObject", "kms:Decrypt")({"Bucket": bucket, "Key": key}, keys),
            *_object("s3:PutObject", "kms:GenerateDataKey")(params, keys)]


def _list_bucket(params: Mapping, keys: Keys) -> list[Check]:
    context = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
    return [Check("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", context)]


# -- SageMaker --------------------------------------------------------------------------------------
# Resource type in the ARN and the request field naming it, per SageMaker resource (service authorization
# reference, SageMaker resource types). SageMaker writes these names lower-case in ARNs.
SAGEMAKER_RESOURCES = {
    "TrainingJob": ("training-job", "TrainingJobName"),
    "ProcessingJob": ("processing-job", "ProcessingJobName"),
    "TransformJob": ("transform-job", "TransformJobName"),
    "HyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "Model": ("model", "ModelName"),
    "EndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "Endpoint": ("endpoint", "EndpointName"),
    "MonitoringSchedule": ("monitoring-schedule", "MonitoringScheduleName"),
}
# Condition keys SageMaker sets from a create request, and the request fields they come from (anywhere in
# the request, by member name; an output key only inside the output configuration).
INSTANCE_TYPE, MAX_RUNTIME, VOLUME_KEY = "InstanceType", "MaxRuntimeInSeconds", "VolumeKmsKeyId"
OUTPUT_CONFIGS = ("OutputDataConfig", "ProcessingOutputConfig", "TransformOutput", "MonitoringOutputConfig")


def _members(node: Any, name: str, inside: str | None = None) -> Iterator[Any]:
    """Values of every member called `name` in a request (only below a member called `inside`, if given)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == name and inside is None:
                yield value
            yield from _members(value, name, None if key == inside else inside)
    elif isinstance(node, list):
        for item in node:
            yield from _members(item, name, inside)


def _passed_roles(value: Any, shape: Any) -> Iterator[str]:
    """Every role a request names: the values of its members whose botocore shape is RoleArn."""
    if shape.name == "RoleArn" and isinstance(value, str):
        yield value
    elif shape.type_name == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                yield from _passed_roles(item, shape.members[name])
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            yield from _passed_roles(item, shape.member)


def _first(values: Iterator[Any]) -> Any:
    return next(values, None)


def sagemaker_context(operation: str, params: Mapping) -> dict[str, Any]:
    """The SageMaker condition keys a create or update request sets (absent when the request lacks the field)."""
    # An endpoint config names its instances' volume key at the top level (botocore: CreateEndpointConfig.KmsKeyId).
    volume = (iter([params["KmsKeyId"]] if "KmsKeyId" in params else []) if operation == "CreateEndpointConfig"
              else _members(params, VOLUME_KEY))
    output = (value for config in OUTPUT_CONFIGS for value in _members(params, "KmsKeyId", inside=config))
    context = {"sagemaker:InstanceTypes": list(_members(params, INSTANCE_TYPE)) or None,
               "sagemaker:MaxRuntimeInSeconds": _first(_members(params, MAX_RUNTIME)),
               "sagemaker:NetworkIsolation": _first(_members(params, "EnableNetworkIsolation")),
               "sagemaker:InterContainerTrafficEncryption":
                   _first(_members(params, "EnableInterContainerTrafficEncryption")),
               "sagemaker:VolumeKmsKey": _first(volume), "sagemaker:OutputKmsKey": _first(output)}
    return {key: value for key, value in context.items() if value is not None}


def _sagemaker(noun: str, *also: str) -> Callable[[str, Mapping, Keys], list[Check]]:
    """A call on one SageMaker resource (and, for `also`, on the resources other fields name, as CreateEndpoint
    needs its endpoint config too)."""
    def checks(operation: str, params: Mapping, keys: Keys) -> list[Check]:
        found = []
        for each in (noun, *also):
            kind, name_field = SAGEMAKER_RESOURCES[each]
            resource = _arn("sagemaker", f"{kind}/{params[name_field].lower()}")
            context = sagemaker_context(operation, params) if each == noun and operation.startswith(
                ("Create", "Update")) else {}
            found.append(Check(f"sagemaker:{operation}", resource, context))
        if params.get("Tags"):  # tags given on create are added with the caller's sagemaker:AddTags
            found.append(Check("sagemaker:AddTags", found[0].resource))
        shape = SAGEMAKER.operation_model(operation).input_shape
        found += [Check("iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"})
                  for role in _passed_roles(params, shape)]
        return found
    return checks


def _endpoint(operation: str, params: Mapping, keys: Keys) -> list[Check]:
    """CreateEndpoint and UpdateEndpoint, and the rollback alarms a deployment names: SageMaker's deployment
    guardrails guide (deployment-guardrails-configuration.html, its Note) asks that "your IAM execution role" may
    cloudwatch:DescribeAlarms on them, without saying which role; offline holds the caller to it, and the kit grants
    it to the caller (the state machine) and to the model's role alike."""
    alarms = params.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
    return [*_sagemaker("Endpoint", "EndpointConfig")(operation, params, keys),
            *(Check("cloudwatch:DescribeAlarms", _arn("cloudwatch", f"alarm:{alarm['AlarmName']}")) for alarm in alarms)]


def _model_package(field_name: str) -> Callable[[str, Mapping, Keys], list[Check]]:
    """A registry call: a version by ARN (or name), or, to create one, the group its number is assigned in."""
    def checks(operation: str, params: Mapping, keys: Keys) -> list[Check]:
        name = params[field_name]
        resource = name if name.startswith("arn:") else _arn("sagemaker", f"model-package/{name.rsplit('/', 1)[-1]}")
        return [Check(f"sagemaker:{operation}", resource)]
    return checks


def _model_package_group(field_name: str) -> Callable[[str, Mapping, Keys], list[Check]]:
    """A call on a model package group, by name or ARN."""
    def checks(operation: str, params: Mapping, keys: Keys) -> list[Check]:
        name = params[field_name].rsplit("/", 1)[-1]
        return [Check(f"sagemaker:{operation}", _arn("sagemaker", f"model-package-group/{name}"))]
    return checks


# -- Step Functions, Lambda, SNS ----------------------------------------------------------------------
def _states(action: str, field_name: str, kms_action: str | None) -> Callable[[Mapping, Keys], list[Check]]:
    """A call on a state machine or one of its executions; a customer-managed key encrypts its execution data,
    used with the caller's permissions in the key's encryption context (Step Functions, data at rest)."""
    def checks(params: Mapping, keys: Keys) -> list[Check]:
        target = params[field_name]
        machine = target.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0] \
            if ":execution:" in target else target
        found = [Check(f"states:{action}", target)]
        if kms_action and machine in keys.state_machines:
            found.append(Check(kms_action, keys.state_machines[machine],
                               {"kms:EncryptionContext:aws:states:stateMachineArn": machine, **_via("states")}))
        return found
    return checks


def _function(params: Mapping, keys: Keys) -> list[Check]:
    name = params["FunctionName"]
    arn = name if name.startswith("arn:") else _arn("lambda", f"function:{name}")
    return [Check("lambda:InvokeFunction", ":".join(arn.split(":")[:7]))]  # a qualifier is not its own resource


def _publish(params: Mapping, keys: Keys) -> list[Check]:
    """A customer-managed topic key is used by SNS with the publisher's permissions (SNS developer guide)."""
    topic = params["TopicArn"]
    key = keys.topics.get(topic)
    return [Check("sns:Publish", topic),
            *([Check(action, key, _via("sns")) for action in ("kms:GenerateDataKey", "kms:Decrypt")] if key else [])]


def _send_message(params: Mapping, keys: Keys) -> list[Check]:
    """A message into a queue (its URL names it); under SSE-KMS the sender needs the key through SQS
    (SQS developer guide, key management: kms:GenerateDataKey and kms:Decrypt for a producer)."""
    name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
    key = keys.queues.get(name)
    return [Check("sqs:SendMessage", _arn("sqs", name)),
            *([Check(action, key, _via("sqs")) for action in ("kms:GenerateDataKey", "kms:Decrypt")] if key else [])]


def _schedule(params: Mapping, keys: Keys) -> list[Check]:
    """An EventBridge Scheduler schedule, in its group (`default` unless named)."""
    group = params.get("GroupName", "default")
    return [Check("scheduler:GetSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{params['Name']}")]


def _metric_data(params: Mapping, keys: Keys) -> list[Check]:
    """CloudWatch metrics have no resource ARN; a policy scopes them by the cloudwatch:namespace key."""
    return [Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params["Namespace"]})]


def _endpoint_invocation(params: Mapping, keys: Keys) -> list[Check]:
    return [Check("sagemaker:InvokeEndpoint", _arn("sagemaker", f"endpoint/{params['EndpointName'].lower()}"))]


# (service, operation) -> checks(params, keys); SageMaker rows also get the operation's name.
_PLAIN: dict[tuple[str, str], Callable[[Mapping, Keys], list[Check]]] = {
    ("s3", "GetObject"): _object("s3:GetObject", "kms:Decrypt"),
    ("s3", "HeadObject"): _object("s3:GetObject", "kms:Decrypt"),
    ("s3", "PutObject"): _object("s3:PutObject", "kms:GenerateDataKey"),
    ("s3", "DeleteObject"): _object("s3:DeleteObject", None),
    ("s3", "CopyObject"): _copy_object,
    ("scheduler", "GetSchedule"): _schedule,
    ("cloudwatch", "PutMetricData"): _metric_data,
    ("s3", "ListObjectsV2"): _list_bucket,
    ("s3", "ListObjects"): _list_bucket,
    ("lambda", "Invoke"): _function,
    ("sns", "Publish"): _publish,
    ("sqs", "SendMessage"): _send_message,
    ("sagemaker-runtime", "InvokeEndpoint"): _endpoint_invocation,
    ("stepfunctions", "StartExecution"): _states("StartExecution", "stateMachineArn", "kms:GenerateDataKey"),
    ("stepfunctions", "DescribeExecution"): _states("DescribeExecution", "executionArn", "kms:Decrypt"),
    ("stepfunctions", "GetExecutionHistory"): _states("GetExecutionHistory", "executionArn", "kms:Decrypt"),
    ("stepfunctions", "StopExecution"): _states("StopExecution", "executionArn", None),
    ("stepfunctions", "ListExecutions"): _states("ListExecutions", "stateMachineArn", None),
}
_SAGEMAKER: dict[str, Callable[[str, Mapping, Keys], list[Check]]] = {
    **{f"{verb}{noun}": _sagemaker(noun) for noun in ("TrainingJob", "ProcessingJob", "TransformJob",
                                                      "HyperParameterTuningJob")
       for verb in ("Create", "Describe", "Stop")},
    **{f"{verb}{noun}": _sagemaker(noun) for noun in ("Model", "EndpointConfig", "MonitoringSchedule")
       for verb in ("Create", "Describe", "Delete")},
    "UpdateMonitoringSchedule": _sagemaker("MonitoringSchedule"),
    "CreateEndpoint": _endpoint,
    "UpdateEndpoint": _endpoint,
    "DescribeEndpoint": _sagemaker("Endpoint"),
    "DeleteEndpoint": _sagemaker("Endpoint"),
    "CreateModelPackage": _model_package("ModelPackageGroupName"),
    "DescribeModelPackage": _model_package("ModelPackageName"),
    "UpdateModelPackage": _model_package("ModelPackageArn"),
    "DeleteModelPackage": _model_package("ModelPackageName"),
    # A listing names no version; offline authorizes it on the group's versions as a whole (model-package type).
    "ListModelPackages": lambda operation, params, keys: [Check(
        "sagemaker:ListModelPackages", _arn("sagemaker", f"model-package/{params['ModelPackageGroupName']}/*"))],
    "DeleteModelPackageGroup": _model_package_group("ModelPackageGroupName"),
}


def mapped_calls() -> list[tuple[str, str]]:
    """Every (service, operation) the table maps."""
    return [*_PLAIN, *(("sagemaker", operation) for operation in _SAGEMAKER)]


def checks_for(service: str, operation: str, params: Mapping, keys: Keys) -> list[Check]:
    """Every authorization AWS makes for this call; unmapped calls fail loudly."""
    if service == "sagemaker" and operation in _SAGEMAKER:
        return _SAGEMAKER[operation](operation, params, keys)
    if (service, operation) in _PLAIN:
        return _PLAIN[(service, operation)](params, keys)
    raise UnmappedCall(f"{service}:{operation} has no IAM mapping offline, so it cannot be authorized; add its "
                       "action, resource and condition keys to offline/iam/iam_requests.py")
