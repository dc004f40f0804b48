"""A local SageMaker API: the job, model and registry calls the workflows make, each request checked as
SageMaker checks it (offline/sources/request_validation.py), jobs run for real (offline/runtimes/sagemaker_jobs.py).

Job kinds come from the kit's integration table, so a job integration added there is known here; one without
a runner in JobRunners fails its create call with a message naming where to add one.
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Callable

import boto3
from botocore import xform_name

from offline.services import behaviours
from offline.sources.assembly import ACCOUNT, REGION
from offline.runtimes.s3_objects import list_keys, split_s3
from offline.iam.iam import LocalIam
from offline.services.sagemaker_hosting import HOSTING_OPERATIONS, LocalHosting
from offline.runtimes.sagemaker_jobs import JobRunners
from offline.sources.request_validation import RequestRefused as SageMakerError, validate
from stacks.asl.integrations import SERVICE_INTEGRATIONS

# Job noun (TrainingJob, ...) -> ARN resource type, for every job a `.sync` integration of the kit waits for.
JOB_KINDS = {i.stoppable_job: i.sagemaker_resources[0] for i in SERVICE_INTEGRATIONS.values() if i.stoppable_job}
REGISTRY_OPERATIONS = ("CreateModelPackageGroup", "CreateModelPackage", "DescribeModelPackage", "ListModelPackages",
                       "UpdateModelPackage", "DeleteModelPackage", "DeleteModelPackageGroup")
# Where each job kind's request names the role the job runs as (a transform job runs as its model's role).
JOB_ROLES = {"TrainingJob": ("RoleArn",), "ProcessingJob": ("RoleArn",), "TransformJob": ("_model", "ExecutionRoleArn"),
             "HyperParameterTuningJob": ("TrainingJobDefinition", "RoleArn")}
SESSION = "SageMaker"  # the session name SageMaker gives the execution role it assumes
__all__ = ["JOB_KINDS", "LocalSageMaker", "SageMakerError"]


def s3_prefix_inputs(kind: str, request: dict) -> list[str]:
    """The S3 prefixes a job's request reads (its S3Prefix data sources)."""
    sources = {"TrainingJob": lambda r: [c["DataSource"].get("S3DataSource", {}) for c in r.get("InputDataConfig", [])],
               "HyperParameterTuningJob": lambda r: [c["DataSource"].get("S3DataSource", {}) for c in
                                                     r.get("TrainingJobDefinition", {}).get("InputDataConfig", [])],
               "TransformJob": lambda r: [r["TransformInput"]["DataSource"].get("S3DataSource", {})],
               "ProcessingJob": lambda r: [i.get("S3Input", {}) for i in r.get("ProcessingInputs", [])]}[kind](request)
    return [s["S3Uri"] for s in sources if s.get("S3DataType", "S3Prefix") == "S3Prefix" and "S3Uri" in s]


def status_key(kind: str) -> str:
    return f"{kind}Status"


class LocalSageMaker:
    def __init__(self, iam: LocalIam) -> None:
        self.iam = iam
        self.s3 = boto3.client("s3", region_name=REGION)
        self.jobs: dict[str, dict[str, dict]] = {kind: {} for kind in JOB_KINDS}
        self.models: dict[str, dict] = {}
        self.model_package_groups: dict[str, dict] = {}
        self.model_packages: dict[str, dict] = {}  # by ARN
        self.lock = threading.Lock()
        self.runners = JobRunners(self.s3, self._record_child)
        self.s3_access = self.runners.s3_access  # (job name, "read"/"write", s3 uri)
        self.hosting = LocalHosting(self.s3, self.models, self._load_as_model_role, self.lock)
        # Called with a version's description when it is registered or its approval changes (the event
        # SageMaker sends EventBridge); offline/cloud/account.py puts it on the local bus.
        self.on_model_package_change: Callable[[dict], None] = lambda description: None
        self.injected_errors: list[tuple[str, str, str]] = []  # (operation, error code, message)
        self.injected_failures: dict[str, str] = {}  # job kind -> failure reason for its next job
        self.injected_hangs: set[str] = set()  # job kinds whose next job runs until it is stopped
        self.calls: list[str] = []

    # -- test hooks ---------------------------------------------------------------------------
    def inject_error(self, operation: str, code: str, message: str, times: int = 1) -> None:
        self.injected_errors += [(operation, code, message)] * times

    def fail_next_job(self, kind: str, reason: str) -> None:
        self.injected_failures[kind] = reason

    def hang_next_job(self, kind: str) -> None:
        self.injected_hangs.add(kind)

    def in_progress(self) -> list[str]:
        """Names of the jobs still running, of every kind."""
        with self.lock:
            return sorted(name for kind, jobs in self.jobs.items() for name, job in jobs.items()
                          if job[status_key(kind)] == "InProgress")

    # -- API ------------------------------------------------------------------------------------
    def handle(self, operation: str, request: dict) -> dict:
        with self.lock:
            self.calls.append(operation)
            for index, (name, code, message) in enumerate(self.injected_errors):
                if name == operation:
                    del self.injected_errors[index]
                    raise SageMakerError(code, message)
        validate("sagemaker", operation, request)
        job_operation = re.fullmatch(r"(Create|Describe|Stop)(\w+)", operation)
        if job_operation and job_operation.group(2) in JOB_KINDS:
            verb, noun = job_operation.groups()
            return getattr(self, f"_{verb.lower()}_job")(noun, request)
        if operation in HOSTING_OPERATIONS:
            return self.hosting.handle(operation, request)
        if operation == "CreateModel":
            return self._create_model(request)
        if operation == "DescribeModel":
            return self._lookup(self.models, request["ModelName"], "Model")
        if operation == "DeleteModel":
            self._lookup(self.models, request["ModelName"], "Model")
            with self.lock:
                del self.models[request["ModelName"]]
            return {}
        if operation == "ListModels":
            with self.lock:
                return {"Models": [{k: m[k] for k in ("ModelName", "ModelArn", "CreationTime")}
                                   for m in self.models.values() if request.get("NameContains", "") in m["ModelName"]]}
        if operation in ("AddTags", "ListTags"):
            return {"Tags": request.get("Tags", [])}
        if operation in REGISTRY_OPERATIONS:
            return getattr(self, f"_{xform_name(operation)}")(request)
        raise SageMakerError("UnknownOperationException",
                             f"{operation} is not available locally; add it to offline/services/sagemaker_service.py")

    def _lookup(self, table: dict, name: str, what: str) -> dict:
        with self.lock:
            if name not in table:
                raise SageMakerError("ValidationException", f"Could not find {what} \"{name}\".")
            return dict(table[name])

    def _create_job(self, kind: str, request: dict) -> dict:
        name = request[f"{kind}Name"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{JOB_KINDS[kind]}/{name.lower()}"
        runner = self.runners.by_kind.get(kind)
        if runner is None:
            raise SageMakerError("UnknownOperationException", f"no local runner for {kind}s; add one to "
                                                              "offline/runtimes/sagemaker_jobs.py JobRunners")
        self._refuse_empty_input(kind, request)
        now = time.time()
        with self.lock:
            if name in self.jobs[kind]:
                raise SageMakerError("ResourceInUse", f"{kind} name must be unique within an AWS account and "
                                                      f"region, and a job with this name already exists ({arn})")
            job = {**request, f"{kind}Arn": arn, status_key(kind): "InProgress", "CreationTime": now,
                   "LastModifiedTime": now}
            if kind == "TransformJob":
                if request["ModelName"] not in self.models:
                    raise SageMakerError("ValidationException", f"Could not find model \"{request['ModelName']}\".")
                job["_model"] = self.models[request["ModelName"]]
            self.jobs[kind][name] = job
            failure = self.injected_failures.pop(kind, None)
            if kind in self.injected_hangs:
                self.injected_hangs.discard(kind)
                runner = lambda _, running: self._hang(running, status_key(kind))  # noqa: E731
        threading.Thread(target=self._run, args=(kind, name, runner, failure), daemon=True).start()
        return {f"{kind}Arn": arn}

    def _refuse_empty_input(self, kind: str, request: dict) -> None:
        """SageMaker may refuse a job whose S3 prefix input holds nothing when it is created, rather than fail it
        (stacks/aws_behaviours.py, empty-input-*); the job runner fails it otherwise."""
        row = "empty-input-processing" if kind == "ProcessingJob" else "empty-input-training-transform-tuning"
        if behaviours.answer(row) != "create-time":
            return
        for uri in s3_prefix_inputs(kind, request):
            bucket, prefix = split_s3(uri)
            if not list_keys(self.s3, bucket, prefix):
                raise SageMakerError("ValidationException", f"No S3 objects found under S3 URL \"{uri}\" given in "
                                                            "input data source.")

    def _describe_job(self, kind: str, request: dict) -> dict:
        job = self._lookup(self.jobs[kind], request[f"{kind}Name"], f"job {kind}")
        job.pop("_model", None)
        return job

    def _stop_job(self, kind: str, request: dict) -> dict:
        job = self._describe_job(kind, request)
        with self.lock:
            self.jobs[kind][job[f"{kind}Name"]][status_key(kind)] = "Stopped"
        return {}

    def _create_model(self, request: dict) -> dict:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{request['ModelName'].lower()}"
        with self.lock:
            if request["ModelName"] in self.models:
                raise SageMakerError("ValidationException", f"Cannot create already existing model \"{arn}\".")
            self.models[request["ModelName"]] = {**request, "ModelArn": arn, "CreationTime": time.time()}
        return {"ModelArn": arn}

    # -- model registry ---------------------------------------------------------------------------
    def _create_model_package_group(self, request: dict) -> dict:
        name = request["ModelPackageGroupName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{name}"
        with self.lock:
            self.model_package_groups.setdefault(name, {**request, "ModelPackageGroupArn": arn,
                                                        "ModelPackageGroupStatus": "Completed"})
        return {"ModelPackageGroupArn": arn}

    def _create_model_package(self, request: dict) -> dict:
        group = request.get("ModelPackageGroupName", "").rsplit("/", 1)[-1]
        with self.lock:
            if group not in self.model_package_groups:
                raise SageMakerError("ValidationException", f"Model Package Group {group!r} does not exist.")
            version = 1 + sum(p["ModelPackageGroupName"] == group for p in self.model_packages.values())
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
            self.model_packages[arn] = {**request, "ModelPackageGroupName": group, "ModelPackageArn": arn,
                                        "ModelPackageVersion": version, "ModelPackageStatus": "Completed",
                                        "ModelApprovalStatus": request.get("ModelApprovalStatus",
                                                                           "PendingManualApproval"),
                                        "CreationTime": (now := time.time()), "LastModifiedTime": now}
        self.on_model_package_change(self._describe_model_package({"ModelPackageName": arn}))
        return {"ModelPackageArn": arn}

    def _describe_model_package(self, request: dict) -> dict:
        return self._lookup(self.model_packages, request["ModelPackageName"], "model package")

    def _list_model_packages(self, request: dict) -> dict:
        with self.lock:
            found = [p for p in self.model_packages.values()
                     if p["ModelPackageGroupName"] == request.get("ModelPackageGroupName", p["ModelPackageGroupName"])
                     and p["ModelApprovalStatus"] == request.get("ModelApprovalStatus", p["ModelApprovalStatus"])]
        keys = ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "CreationTime",
                "ModelPackageStatus", "ModelApprovalStatus")
        return {"ModelPackageSummaryList": [{k: p[k] for k in keys} for p in found]}

    def _update_model_package(self, request: dict) -> dict:
        arn = request["ModelPackageArn"]
        package = self._lookup(self.model_packages, arn, "model package")
        with self.lock:
            self.model_packages[arn] = {**package, **{k: v for k, v in request.items() if k != "ModelPackageArn"},
                                        "LastModifiedTime": time.time()}
        self.on_model_package_change(self._describe_model_package({"ModelPackageName": arn}))
        return {"ModelPackageArn": arn}

    def _delete_model_package(self, request: dict) -> dict:
        arn = request["ModelPackageName"]
        self._lookup(self.model_packages, arn, "model package")
        with self.lock:
            del self.model_packages[arn]
        return {}

    def _delete_model_package_group(self, request: dict) -> dict:
        """As SageMaker: a group that still holds versions is not deleted (ConflictException, the one error
        botocore's model declares for DeleteModelPackageGroup)."""
        group = request["ModelPackageGroupName"]
        self._lookup(self.model_package_groups, group, "model package group")
        with self.lock:
            held = sorted(arn for arn, p in self.model_packages.items() if p["ModelPackageGroupName"] == group)
            if held:
                raise SageMakerError("ConflictException", f"Model Package Group {group!r} still has "
                                                          f"{len(held)} model package(s); delete them first.")
            del self.model_package_groups[group]
        return {}

    def _record_child(self, kind: str, name: str, request: dict, result: dict) -> None:
        """A job another job started (a tuning job's training jobs), already completed."""
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{JOB_KINDS[kind]}/{name.lower()}"
        with self.lock:
            self.jobs[kind][name] = {**request, **result, f"{kind}Arn": arn, status_key(kind): "Completed",
                                     "CreationTime": time.time(), "LastModifiedTime": time.time()}

    # -- roles ------------------------------------------------------------------------------------
    def _job_role(self, kind: str, job: dict) -> str:
        if kind not in JOB_ROLES:
            raise RuntimeError(f"no role field known for {kind}s; add where its request names it to "
                               "offline/services/sagemaker_service.py JOB_ROLES")
        value = job
        for part in JOB_ROLES[kind]:
            value = value[part]
        return value

    def _load_as_model_role(self, user: str, model: dict):
        """An endpoint's instances fetch their model as the model's execution role."""
        with self.iam.acting_as(model["ExecutionRoleArn"], SESSION):
            return self.runners.load_model(user, model)

    def serving_as_model_role(self, endpoint: str, variant: str | None) -> contextlib.AbstractContextManager:
        """What an endpoint does while serving (data capture into S3), as the role of the model of the variant
        that answers (hosting.answering_variant); an unknown variant answers nothing."""
        with self.lock:
            config, _ = self.hosting.serving.get(endpoint, (None, None))
            variants = self.hosting.configs.get(config, {}).get("ProductionVariants", [{}])
            chosen = next((v for v in variants if v.get("VariantName") == variant), variants[0])
            role = self.models.get(chosen.get("ModelName"), {}).get("ExecutionRoleArn")
        return self.iam.acting_as(role, SESSION) if role else contextlib.nullcontext()

    # -- job execution --------------------------------------------------------------------------
    def _run(self, kind: str, name: str, runner: Callable[[str, dict], dict], failure: str | None) -> None:
        job = self.jobs[kind][name]
        started = time.time()
        try:
            if failure:
                raise RuntimeError(failure)
            with self.iam.acting_as(self._job_role(kind, job), SESSION):
                result, status = runner(name, job), "Completed"
        except Exception as error:  # a failed job, as SageMaker reports one
            result = {**getattr(error, "described", {}), "FailureReason": str(error) or type(error).__name__}
            status = "Failed"
        with self.lock:
            if job[status_key(kind)] == "Stopped":
                return
            prefix = kind.removesuffix("Job")
            job.update(result, **{status_key(kind): status, f"{prefix}StartTime": started,
                                  f"{prefix}EndTime": time.time(), "LastModifiedTime": time.time()})

    @staticmethod
    def _hang(job: dict, key: str) -> dict:
        """A job that makes no progress (a stuck container): it ends only when stopped, or after 5 minutes."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job[key] != "Stopped":
            time.sleep(0.05)
        raise RuntimeError("InternalServerError: the job made no progress")
