"""IAM offline: every AWS call a workload makes is authorized against the synthesized policies of its role.

Whoever acts runs `with iam.acting_as(role_arn, session)`: a Lambda handler as its function's role, a SageMaker
job or endpoint as its execution role, a state machine's tasks as its role, a rule's target as the rule's role.
Every boto3 client carries botocore hooks: the request's parameters are kept; before the request is sent, they
are checked against the service's model (offline/sources/request_validation.py, every call, whoever makes it), then the
caller's role is asked for each check offline/iam/iam_requests.py maps the call to. A refused call gets the response
AWS gives (HTTP 403, AccessDenied or the service's code, the message naming the caller, action, resource and
why), so the caller fails as it would on AWS. Calls with no one acting (the local account setting itself up, as
CloudFormation would, and the tests' own reads) are not authorized.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.handlers import BUILTIN_HANDLERS
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService)

from offline.sources.assembly import ACCOUNT, REGION, SynthesizedStack, synthesized_stacks
from offline.iam.iam_policy import Statement, UnsupportedPolicy, decide, parse_policy
from offline.iam.iam_requests import MODELED_KEYS, Check, Keys, checks_for
from offline.sources.request_validation import RequestRefused, validate_operation
from stacks.asl.integrations import SERVICE_INTEGRATIONS

# How each service names a refusal (S3 API reference: AccessDenied; SNS API reference: AuthorizationError).
ERROR_CODES = {"s3": "AccessDenied", "sns": "AuthorizationError"}
# What Step Functions does with the state machine's role to wait for a `.sync` job: keep its managed rule
# (Step Functions developer guide, IAM policies for integrated services). Kept here, not taken from
# stacks/asl/integrations.py, so that a row missing one is refused offline rather than trusted.
MANAGED_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")


@dataclass(frozen=True)
class Caller:
    role_arn: str
    session: str
    iam: "LocalIam"

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role_arn.rsplit('/', 1)[1]}/{self.session}"


@dataclass(frozen=True)
class Decision:
    caller: str  # the assumed-role ARN
    action: str
    resource: str
    decision: str  # Allow, Deny (explicit) or ImplicitDeny


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("offline_iam_caller", default=None)
_PARAMS = "offline_iam_params"


@dataclass
class LocalIam:
    """The roles of one local account (role ARN -> its statements), its customer-managed keys, and the Lambda
    permissions (function ARN -> statements of its resource policy, with their principal services)."""

    roles: Mapping[str, list[Statement]]
    keys: Keys = field(default_factory=Keys)
    function_permissions: Mapping[str, list[tuple[str, Statement]]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    unreadable: Mapping[str, Exception] = field(default_factory=dict)  # role -> why offline cannot read it

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def from_assembly(cls, outdir: Path, stage: str | None = None) -> "LocalIam":
        return cls.from_stacks(synthesized_stacks(outdir, stage))

    @classmethod
    def from_stacks(cls, stacks: list[SynthesizedStack]) -> "LocalIam":
        """Every role's identity policies (inline, and managed policies of the same templates), the
        customer-managed keys of buckets, topics and state machines, and the Lambda permissions."""
        roles: dict[str, list[Statement]] = defaultdict(list)
        unreadable: dict[str, UnsupportedPolicy] = {}  # roles offline cannot read (CDK's providers, say)
        buckets, topics, machines, queues, permissions = {}, {}, {}, {}, defaultdict(list)
        for stack in stacks:
            resources, resolve = stack.template["Resources"], stack.resolver.resolve
            for logical_id, resource in resources.items():
                kind, props = resource["Type"], resource.get("Properties", {})
                where = f"{stack.name} {logical_id}"
                if kind == "AWS::IAM::Role":
                    try:
                        roles[stack.resolver.arn(logical_id)] += _role_statements(stack, props, where)
                    except UnsupportedPolicy as error:  # fails the run only if the role makes a call offline
                        unreadable[stack.resolver.arn(logical_id)] = error
                elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                    statements = parse_policy(resolve(props["PolicyDocument"]), where)
                    for role in props.get("Roles", []):
                        roles[_role_arn(stack, role)] += statements
                elif kind == "AWS::S3::Bucket":
                    for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                        key = resolve(rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"))
                        if _customer_managed(key):
                            buckets[stack.resolver.physical_name(logical_id)] = key
                elif kind == "AWS::SNS::Topic" and _customer_managed(resolve(props.get("KmsMasterKeyId"))):
                    topics[stack.resolver.arn(logical_id)] = resolve(props["KmsMasterKeyId"])
                elif kind == "AWS::SQS::Queue" and _customer_managed(resolve(props.get("KmsMasterKeyId"))):
                    queues[stack.resolver.physical_name(logical_id)] = resolve(props["KmsMasterKeyId"])
                elif kind == "AWS::StepFunctions::StateMachine":
                    encryption = props.get("EncryptionConfiguration", {})
                    if encryption.get("Type") == "CUSTOMER_MANAGED_KMS_KEY":
                        machines[stack.resolver.arn(logical_id)] = resolve(encryption["KmsKeyId"])
                elif kind == "AWS::Lambda::Permission":
                    condition = {"ArnLike": {"aws:SourceArn": resolve(props["SourceArn"])}} if "SourceArn" in props else {}
                    function = resolve(props["FunctionName"])
                    permissions[function].append((props["Principal"], Statement(
                        "Allow", (props["Action"],), False, (function,), False, condition)))
        return cls(dict(roles), Keys(buckets, topics, machines, queues), dict(permissions), unreadable=unreadable)

    @contextlib.contextmanager
    def acting_as(self, role_arn: str, session: str) -> Iterator[Caller]:
        """Every AWS call made in this block (in this thread) is made as `role_arn`."""
        if role_arn not in self.roles:
            raise KeyError(f"role {role_arn} is not in the synthesized templates, so its calls cannot be authorized")
        token = _CALLER.set(Caller(role_arn, session, self))
        try:
            yield _CALLER.get()
        finally:
            _CALLER.reset(token)

    def refusal(self, caller: Caller, checks: list[Check]) -> tuple[Check, str] | None:
        """The first check the caller's policies do not allow, with the decision, or None."""
        if caller.role_arn in self.unreadable:
            raise self.unreadable[caller.role_arn]
        for check in checks:
            decision = decide(self.roles[caller.role_arn], check.action, check.resource, check.context, MODELED_KEYS)
            with self._lock:
                self.decisions.append(Decision(caller.arn, check.action, check.resource, decision))
            if decision != "Allow":
                return check, decision
        return None

    def denials(self) -> list[Decision]:
        with self._lock:
            return [d for d in self.decisions if d.decision != "Allow"]

    def invocation_allowed(self, function_arn: str, service: str, source_arn: str) -> bool:
        """Whether the function's resource policy (its AWS::Lambda::Permission resources) lets `service` invoke
        it on behalf of `source_arn` (a rule): the statement's principal and its aws:SourceArn condition."""
        statements = [s for principal, s in self.function_permissions.get(function_arn, []) if principal == service]
        return decide(statements, "lambda:InvokeFunction", function_arn, {"aws:SourceArn": source_arn},
                      MODELED_KEYS) == "Allow"


def _customer_managed(key: Any) -> bool:
    """A key ARN, not an AWS managed key's alias (whose key policy lets the service use it for the account)."""
    return isinstance(key, str) and ":key/" in key


def _role_arn(stack: SynthesizedStack, role: Any) -> str:
    """A policy's role: a Ref to a role of the template, or a role name."""
    if isinstance(role, dict) and role.get("Ref") in stack.template["Resources"]:
        return stack.resolver.arn(role["Ref"])
    return f"arn:aws:iam::{ACCOUNT}:role/{stack.resolver.resolve(role)}"


def _role_statements(stack: SynthesizedStack, props: Mapping, where: str) -> list[Statement]:
    """A role's inline policies and the managed policies it names, which must be the template's own."""
    statements = [s for policy in props.get("Policies", [])
                  for s in parse_policy(stack.resolver.resolve(policy["PolicyDocument"]), where)]
    for managed in props.get("ManagedPolicyArns", []):
        logical_id = managed.get("Ref") if isinstance(managed, dict) else None
        if logical_id not in stack.template["Resources"]:
            raise UnsupportedPolicy(f"{where} attaches managed policy {stack.resolver.resolve(managed)}, which no "
                                    "template defines, so offline cannot read it; attach a policy of the stack")
        policy = stack.template["Resources"][logical_id]["Properties"]["PolicyDocument"]
        statements += parse_policy(stack.resolver.resolve(policy), where)
    return statements


def denial_message(caller: Caller, check: Check, decision: str, service: str) -> str:
    """As AWS words it (IAM User Guide, access denied error messages; S3 quotes its own resources)."""
    resource = f'"{check.resource}"' if service == "s3" and check.resource.startswith("arn:aws:s3:") else check.resource
    why = ("with an explicit deny in an identity-based policy" if decision == "Deny"
           else f"because no identity-based policy allows the {check.action} action")
    return f"User: {caller.arn} is not authorized to perform: {check.action} on resource: {resource} {why}"


def _denied(service: str, message: str) -> tuple[AWSResponse, dict]:
    code, request_id = ERROR_CODES.get(service, "AccessDeniedException"), str(uuid.uuid4())
    parsed = {"Error": {"Code": code, "Message": message},
              "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": request_id, "HTTPHeaders": {}}}
    return AWSResponse("https://offline-iam", 403, {}, None), parsed


def _keep_params(params: dict, context: dict, **_) -> None:
    context[_PARAMS] = dict(params)


def _validate(model: Any, context: dict, **_) -> tuple[AWSResponse, dict] | None:
    """botocore's before-call, first: whoever calls (a workload, the interpreter, the local account setting itself
    up), a request the service's model refuses never reaches moto, which would accept it."""
    try:
        validate_operation(model, context.get(_PARAMS, {}))
    except RequestRefused as refused:
        return refused.response()
    return None


def _authorize(model: Any, context: dict, **_) -> tuple[AWSResponse, dict] | None:
    """botocore's before-call: a response here replaces the request, so a refused call never reaches a service."""
    caller = _CALLER.get()
    if caller is None:
        return None
    service = model.service_model.service_name
    refused = caller.iam.refusal(caller, checks_for(service, model.name, context.get(_PARAMS, {}), caller.iam.keys))
    return _denied(service, denial_message(caller, *refused, service)) if refused else None


# Validation before authorization: no AWS page states the order; a request must pass both either way.
_HOOKS = (("before-parameter-build", _keep_params), ("before-call", _validate), ("before-call", _authorize))
_installed = threading.Lock()


def install() -> None:
    """Give every boto3 client the hooks (like moto's own, on every botocore session made from now on, and on
    boto3's default session), and run each state machine task as its execution's role."""
    with _installed:
        for event, handler in _HOOKS:
            if (event, handler) not in BUILTIN_HANDLERS:
                BUILTIN_HANDLERS.append((event, handler))
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION.events.register(event, handler,
                                                      unique_id=f"offline-iam-{event}-{handler.__name__}")
        if not getattr(StateTaskService._eval_execution, "offline_iam", False):
            StateTaskService._eval_execution = _as_execution_role(StateTaskService._eval_execution)


# The accounts whose state machines run now, by the roles they know (the last one entered wins a shared role).
_ACCOUNTS: list[LocalIam] = []


def register(iam: LocalIam) -> None:
    with _installed:
        _ACCOUNTS.append(iam)


def unregister(iam: LocalIam) -> None:
    with _installed:
        _ACCOUNTS.remove(iam)


def account_of(role_arn: str) -> LocalIam | None:
    with _installed:
        return next((iam for iam in reversed(_ACCOUNTS) if role_arn in iam.roles), None)


@contextlib.contextmanager
def as_execution(env) -> Iterator[tuple[LocalIam, Caller] | None]:
    """What Step Functions does for an execution's calls (a task's, a Map's ItemReader's): make them with the
    execution's role. Yields (account, caller), or None for a state machine the local account did not create."""
    execution = env.states.context_object.context_object_data["Execution"]
    account = account_of(execution["RoleArn"])
    if account is None:
        yield None
        return
    with account.acting_as(execution["RoleArn"], session=execution["Name"][:64]) as caller:
        yield account, caller


def _as_execution_role(eval_execution):
    """Step Functions calls each task's service with the execution's role; a `.sync` task also keeps the
    integration's managed EventBridge rule with it."""
    def run(self, env) -> None:
        with as_execution(env) as acting:
            if acting is None:  # a state machine the local account did not create
                return eval_execution(self, env)
            iam, caller = acting
            integration = SERVICE_INTEGRATIONS.get(self.resource.resource_arn.split(":::", 1)[-1])
            if integration and integration.events_rule:
                rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{integration.events_rule}"
                refused = iam.refusal(caller, [Check(action, rule) for action in MANAGED_RULE_ACTIONS])
                if refused:  # reported as the service's refusal, which the task's error handling sees
                    raise ClientError(_denied("events", denial_message(caller, *refused, "events"))[1], "PutRule")
            return eval_execution(self, env)
    run.offline_iam = True
    return run
