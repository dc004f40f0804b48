"""Typed, validated kit configuration read from CDK context (cdk.json and `-c key=value`)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from aws_cdk import aws_logs as logs

# CloudWatch Logs accepts only these retention periods (days -> CDK enum).
_R = logs.RetentionDays
LOG_RETENTION = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS, 30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS, 150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS, 545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS,
    1096: _R.THREE_YEARS, 1827: _R.FIVE_YEARS, 2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS,
    2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS, 3653: _R.TEN_YEARS,
}
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,11}$")
# A spot training job's MaxWaitTimeInSeconds (capacity wait plus run) as a multiple of its MaxRuntimeInSeconds.
SPOT_WAIT_FACTOR = 2
# Short, so `<name_prefix>-<stage>-<slug>-` leaves a 32-character tuning-job name room for 8 random characters.
STAGE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
CONNECTION_ARN = re.compile(r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$")
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# Where the pipeline and its stages live, as `cdk bootstrap` names an environment.
ENVIRONMENT = re.compile(r"^aws://(?P<account>\d{12})/(?P<region>[a-z]{2}(-[a-z]+)+-\d)$")
# Instance families SageMaker offers with EBS storage only. Families with local NVMe instance storage (m5d,
# g4dn, g5, g6, p3dn, p4d, p5, trn1, ...) encrypt it in hardware, and SageMaker rejects a volume KMS key for
# them (API reference, ResourceConfig/TransformResources/ProcessingClusterConfig.VolumeKmsKeyId; the families
# are those without instance store in the EC2 User Guide's "Instance store volume limits" table). An allow-list,
# so that a family added later is refused under encryption=kms until someone checks its storage.
EBS_ONLY_FAMILIES = frozenset({"t2", "t3", "m4", "m5", "m6i", "m7i", "c4", "c5", "c5n", "c6i", "c7i",
                               "r5", "r6i", "r7i", "p2", "p3"})


def cdk_json_context() -> dict[str, Any]:
    """The context the CDK CLI gives app.py: cdk.json's, plus construct paths in resource metadata."""
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    return {**context, "aws:cdk:enable-path-metadata": True}


class ConfigError(ValueError):
    """A setting has a value the kit cannot use; the message is one line for the user."""


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"invalid setting {key}={value!r}: expected {allowed}")


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= high:
            raise _fail(key, value, f"a whole number from {low} to {high}")
        return int(text)
    return parse


def _one_of(choices: tuple[int, ...]) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) not in choices:
            raise _fail(key, value, "one of " + ", ".join(map(str, choices)))
        return int(text)
    return parse


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise _fail(key, value, "true or false")
    return text == "true"


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, value: Any) -> str:
        if value not in choices:
            raise _fail(key, value, "one of " + ", ".join(choices))
        return value
    return parse


def _pattern(pattern: re.Pattern, allowed: str, *, optional: bool = False) -> Callable[[str, Any], str | None]:
    def parse(key: str, value: Any) -> str | None:
        if optional and value in ("", None):
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise _fail(key, value, allowed + (" (or empty)" if optional else ""))
        return value
    return parse


_name_prefix = _pattern(NAME_PREFIX, "2 to 12 lowercase letters or digits, starting with a letter")
_instance_type = _pattern(INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.large")


def _instance_types(key: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    types = tuple(str(item).strip() for item in items)
    if not types or not all(INSTANCE_TYPE.fullmatch(t) for t in types) or len(set(types)) != len(types):
        raise _fail(key, value, "a comma-separated list of distinct SageMaker instance types such as ml.m5.large,ml.m5.xlarge")
    return types


@dataclass(frozen=True)
class KitConfig:
    """Every setting of the kit; field metadata holds its default and parser."""

    name_prefix: str
    allowed_instance_types: tuple[str, ...]
    training_instance_type: str
    processing_instance_type: str
    transform_instance_type: str
    max_job_runtime_minutes: int
    workflow_timeout_minutes: int
    log_retention_days: int
    noncurrent_version_expiration_days: int
    access_log_expiration_days: int
    destroy_data_on_delete: bool
    encryption: str
    spot_training: bool
    notification_email: str | None
    stage: str | None
    pipeline_connection_arn: str | None
    pipeline_repository: str | None
    pipeline_branch: str
    pipeline_environment: str | None
    dev_environment: str | None
    prod_environment: str | None
    results_site: bool
    results_site_domain: str | None
    results_site_certificate_arn: str | None
    # Settings a workflow declares for itself (WorkflowSpec.settings), parsed like these: name -> value.
    workflow_settings: Mapping[str, Any] = field(default_factory=dict)

    def job_name_prefix(self, slug: str) -> str:
        """What every SageMaker name and IAM scope of a workflow starts with: unique per stage and workflow."""
        return "-".join([self.name_prefix, *([self.stage] if self.stage else []), slug])

    @property
    def pipeline(self) -> bool:
        return bool(self.pipeline_repository)

    def environment(self, where: str) -> tuple[str, str] | None:
        """(account, region) of `<where>_environment` (pipeline, dev, prod), or None: the pipeline's own."""
        value = getattr(self, f"{where}_environment")
        return ENVIRONMENT.fullmatch(value).group("account", "region") if value else None

    @classmethod
    def from_context(cls, context: Mapping[str, Any],
                     workflow_settings: Mapping[str, Setting] | None = None) -> "KitConfig":
        """Parse settings from a context lookup; unknown kit-style keys are rejected as likely typos."""
        known = {**SETTINGS, **(workflow_settings or {})}
        unknown = sorted(k for k in context if re.fullmatch(r"[a-z][a-z0-9_]*", k) and k not in known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}: expected one of {', '.join(known)}")
        values = {}
        for key, (default, parse) in known.items():
            raw = context.get(key)
            values[key] = parse(key, default if raw is None else raw)
        config = cls(**{k: v for k, v in values.items() if k in SETTINGS},
                     workflow_settings={k: v for k, v in values.items() if k not in SETTINGS})
        config._check_consistency()
        return config

    def _check_consistency(self) -> None:
        for key in ("training_instance_type", "processing_instance_type", "transform_instance_type"):
            value = getattr(self, key)
            if value not in self.allowed_instance_types:
                raise _fail(key, value, "one of allowed_instance_types (" + ", ".join(self.allowed_instance_types) + ")")
        if self.encryption == "kms":
            for value in self.allowed_instance_types:
                if value.split(".")[1] not in EBS_ONLY_FAMILIES:
                    raise _fail("allowed_instance_types", ",".join(self.allowed_instance_types),
                                f"only EBS-only instance families ({', '.join(sorted(EBS_ONLY_FAMILIES))}) when "
                                f"encryption=kms, not {value}: SageMaker rejects a volume KMS key for instances "
                                "with local storage")
        if bool(self.pipeline_repository) != bool(self.pipeline_connection_arn):
            missing = "pipeline_connection_arn" if self.pipeline_repository else "pipeline_repository"
            raise _fail(missing, None, "a value: a pipeline needs both pipeline_repository and "
                                       "pipeline_connection_arn")
        for where in ("pipeline", "dev", "prod"):
            value = getattr(self, f"{where}_environment")
            if value and not self.pipeline:
                raise _fail(f"{where}_environment", value, "no value without pipeline_repository and "
                                                           "pipeline_connection_arn (it places the pipeline's stages)")
        if (self.dev_environment or self.prod_environment) and not self.pipeline_environment:
            raise _fail("pipeline_environment", None, "aws://<account>/<region> of the pipeline when dev_environment "
                                                      "or prod_environment is set (stages in other accounts trust it)")
        pipeline_region = (self.environment("pipeline") or (None, None))[1]
        for where in ("dev", "prod"):
            value = getattr(self, f"{where}_environment")
            if value and self.environment(where)[1] != pipeline_region:
                raise _fail(f"{where}_environment", value, f"the pipeline's region ({pipeline_region}): stages in "
                                                           "other accounts are supported, in other regions not yet")
        site = {"results_site_domain": self.results_site_domain,
                "results_site_certificate_arn": self.results_site_certificate_arn}
        for key, value in site.items():
            if self.results_site and not value:
                raise _fail(key, value, "a value with results_site=true: the site signs users in over HTTPS only, "
                                        "at its own domain with an ACM certificate of the stack's region")
            if value and not self.results_site:
                raise _fail(key, value, "no value without results_site=true")
        if self.results_site and self.pipeline:
            raise _fail("results_site", True, "false with pipeline settings: the stages would share one domain; "
                                              "deploy the site with make deploy for the copy it shows")
        if self.pipeline and self.stage:
            raise _fail("stage", self.stage, "no stage with pipeline settings (the pipeline deploys dev and prod)")
        # A workflow runs up to three jobs back to back, and a spot training job may wait for capacity as long
        # as it may run (SPOT_WAIT_FACTOR); the workflow's timeout must leave room for all of it.
        jobs = 3 + (SPOT_WAIT_FACTOR - 1 if self.spot_training else 0)
        if self.workflow_timeout_minutes < jobs * self.max_job_runtime_minutes:
            raise _fail("workflow_timeout_minutes", self.workflow_timeout_minutes,
                        f"at least {jobs} x max_job_runtime_minutes ({jobs * self.max_job_runtime_minutes})"
                        + (" with spot_training" if self.spot_training else ""))


# key -> (default, parser). Defaults are small current-generation instances and capped runtimes.
Setting = tuple[Any, Callable[[str, Any], Any]]  # (default, parser); the parser raises ConfigError with the fix
SETTINGS: dict[str, Setting] = {
    "name_prefix": ("mlkit", _name_prefix),
    "allowed_instance_types": ("ml.m5.large,ml.m5.xlarge,ml.m5.2xlarge,ml.c5.xlarge,ml.c5.2xlarge", _instance_types),
    "training_instance_type": ("ml.m5.large", _instance_type),
    "processing_instance_type": ("ml.m5.large", _instance_type),
    "transform_instance_type": ("ml.m5.large", _instance_type),
    "max_job_runtime_minutes": (60, _integer(5, 1440)),
    "workflow_timeout_minutes": (360, _integer(15, 10080)),
    "log_retention_days": (30, _one_of(tuple(LOG_RETENTION))),
    "noncurrent_version_expiration_days": (30, _integer(1, 3650)),
    "access_log_expiration_days": (365, _integer(1, 3650)),
    "destroy_data_on_delete": (False, _boolean),
    "encryption": ("sse-s3", _choice("sse-s3", "kms")),
    "spot_training": (False, _boolean),
    # Every stack's notification topic mails it (failed and timed-out runs; BuildAndRegister's approvals).
    "notification_email": ("", _pattern(re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"), "an email address",
                                        optional=True)),
    "stage": ("", _pattern(STAGE, "1 to 6 lowercase letters or digits, starting with a letter", optional=True)),
    "pipeline_connection_arn": ("", _pattern(CONNECTION_ARN, "a CodeConnections connection ARN such as "
                                "arn:aws:codeconnections:eu-west-1:111122223333:connection/<uuid>", optional=True)),
    "pipeline_repository": ("", _pattern(REPOSITORY, "a repository as owner/name", optional=True)),
    "pipeline_branch": ("main", _pattern(re.compile(r"^[A-Za-z0-9._/-]{1,255}$"), "a branch name")),
    **{f"{where}_environment": ("", _pattern(ENVIRONMENT, "aws://<12-digit account>/<region> such as "
                                                         "aws://111122223333/eu-west-1", optional=True))
       for where in ("pipeline", "dev", "prod")},
    # The results site (stacks/app/results_site.py): its domain and its certificate in ACM.
    "results_site": (False, _boolean),
    "results_site_domain": ("", _pattern(re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"),
                                         "a lowercase domain name such as results.example.com", optional=True)),
    "results_site_certificate_arn": ("", _pattern(
        re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$"),
        "an ACM certificate ARN such as arn:aws:acm:eu-west-1:111122223333:certificate/<uuid>", optional=True)),
}
assert list(SETTINGS) == [f.name for f in fields(KitConfig)][:-1], "SETTINGS and KitConfig must list the same keys"


def optional_text(pattern: str, allowed: str) -> Callable[[str, Any], str | None]:
    """A parser for an optional text setting (empty: off) that must match `pattern`; for workflow settings."""
    return _pattern(re.compile(pattern), allowed, optional=True)


def one_of(*choices: str) -> Callable[[str, Any], str]:
    """A parser for a setting that takes one of these texts; for workflow settings."""
    return _choice(*choices)


def whole_number(low: int, high: int) -> Callable[[str, Any], int]:
    """A parser for a whole-number setting from low to high; for workflow settings."""
    return _integer(low, high)


def instance_type(key: str, value: Any) -> str:
    """A parser for a SageMaker instance type setting; for workflow settings (the stack checks the allow-list)."""
    return _instance_type(key, value)


def true_or_false(key: str, value: Any) -> bool:
    """A parser for an on/off setting (true or false); for workflow settings."""
    return _boolean(key, value)
