"""Configuration: every bad value stops synthesis with one line naming the setting and what is allowed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import re

import pytest

from stacks.settings.config import SETTINGS, ConfigError, KitConfig
from tests.conftest import CDK_CONTEXT, ROOT


def test_defaults_match_cdk_json():
    from_json = KitConfig.from_context(CDK_CONTEXT)
    assert from_json == KitConfig.from_context({})
    assert from_json.name_prefix == "mlkit" and from_json.destroy_data_on_delete is False


def test_command_line_strings_are_parsed():
    config = KitConfig.from_context({"max_job_runtime_minutes": "30", "destroy_data_on_delete": "TRUE",
                                     "allowed_instance_types": "ml.m5.large, ml.c5.xlarge"})
    assert config.max_job_runtime_minutes == 30
    assert config.destroy_data_on_delete is True
    assert config.allowed_instance_types == ("ml.m5.large", "ml.c5.xlarge")


BAD_VALUES = [
    ("name_prefix", "ML", "2 to 12 lowercase letters or digits"),
    ("name_prefix", "a-very-long-prefix", "2 to 12 lowercase letters or digits"),
    ("training_instance_type", "m5.large", "a SageMaker instance type such as ml.m5.large"),
    ("transform_instance_type", "ml.p5.48xlarge", "one of allowed_instance_types"),
    ("allowed_instance_types", "ml.m5.large,,ml.c5.xlarge", "a comma-separated list of distinct SageMaker instance types"),
    ("allowed_instance_types", "ml.m5.large,ml.m5.large", "a comma-separated list of distinct SageMaker instance types"),
    ("max_job_runtime_minutes", "abc", "a whole number from 5 to 1440"),
    ("max_job_runtime_minutes", "0", "a whole number from 5 to 1440"),
    ("max_job_runtime_minutes", "1.5", "a whole number from 5 to 1440"),
    ("workflow_timeout_minutes", "60", "at least 3 x max_job_runtime_minutes (180)"),
    ("log_retention_days", "31", "one of 1, 3, 5, 7, 14, 30"),
    ("noncurrent_version_expiration_days", "-1", "a whole number from 1 to 3650"),
    ("destroy_data_on_delete", "yes", "true or false"),
    ("destroy_data_on_delete", 1, "true or false"),
    ("encryption", "aes", "one of sse-s3, kms"),
    ("encryption", "KMS", "one of sse-s3, kms"),
    ("access_log_expiration_days", "3651", "a whole number from 1 to 3650"),
    ("workflow_timeout_minutes", "true", "a whole number from 15 to 10080"),
    ("processing_instance_type", "ml.m5.large ", "a SageMaker instance type such as ml.m5.large"),
]


PIPELINE_AT = {"pipeline_repository": "example/kit", "pipeline_connection_arn": (
    "arn:aws:codeconnections:eu-west-1:111122223333:connection/12345678-1234-1234-1234-123456789012"),
               "pipeline_environment": "aws://111122223333/eu-west-1"}


@pytest.mark.parametrize(("context", "key", "allowed"), [
    ({**PIPELINE_AT, "dev_environment": "222233334444/eu-west-1"}, "dev_environment",
     "aws://<12-digit account>/<region> such as aws://111122223333/eu-west-1"),
    ({**PIPELINE_AT, "prod_environment": "aws://1234/eu-west-1"}, "prod_environment", "aws://<12-digit account>"),
    ({**PIPELINE_AT, "pipeline_environment": "", "dev_environment": "aws://222233334444/eu-west-1"},
     "pipeline_environment", "aws://<account>/<region> of the pipeline when dev_environment or prod_environment"),
    ({"dev_environment": "aws://222233334444/eu-west-1"}, "dev_environment",
     "no value without pipeline_repository and pipeline_connection_arn"),
    ({**PIPELINE_AT, "prod_environment": "aws://222233334444/us-east-1"}, "prod_environment",
     "the pipeline's region (eu-west-1): stages in other accounts are supported, in other regions not yet"),
], ids=["not-aws-uri", "short-account", "no-pipeline-environment", "no-pipeline", "other-region"])
def test_bad_stage_environments_are_one_line_errors(context, key, allowed):
    with pytest.raises(ConfigError) as error:
        KitConfig.from_context(context)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"invalid setting {key}=") and allowed in message, message


def test_stage_environments_are_parsed():
    config = KitConfig.from_context({**PIPELINE_AT, "dev_environment": "aws://222233334444/eu-west-1"})
    assert config.environment("dev") == ("222233334444", "eu-west-1") and config.environment("prod") is None


@pytest.mark.parametrize(("key", "value", "allowed"), BAD_VALUES)
def test_bad_values_are_one_line_errors(key, value, allowed):
    with pytest.raises(ConfigError) as error:
        KitConfig.from_context({key: value})
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("invalid setting ") and key in message and allowed in message


# Families with local NVMe instance storage, with and without a "d" in the name, and unknown ones.
@pytest.mark.parametrize("local", ["ml.m5d.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6.xlarge",
                                   "ml.trn1.2xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge"])
def test_kms_rejects_instance_types_with_local_storage(local):
    types = f"ml.m5.large,{local}"
    with pytest.raises(ConfigError, match=rf"invalid setting allowed_instance_types='{re.escape(types)}': "
                                          rf"expected only EBS-only instance families \(.*\) when encryption=kms, "
                                          rf"not {re.escape(local)}"):
        KitConfig.from_context({"encryption": "kms", "allowed_instance_types": types})
    KitConfig.from_context({"allowed_instance_types": types})  # fine without a volume key


def test_kms_accepts_ebs_only_families():
    types = "ml.m5.large,ml.c5.xlarge,ml.r5.large,ml.p3.2xlarge,ml.t3.medium,ml.m6i.large,ml.c5n.xlarge"
    assert KitConfig.from_context({"encryption": "kms", "allowed_instance_types": types}).encryption == "kms"


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match=r"unknown setting 'max_job_runtime_minute'"):
        KitConfig.from_context({"max_job_runtime_minute": "5"})


def test_cdk_own_context_keys_are_not_rejected():
    KitConfig.from_context({"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:enable-path-metadata": True,
                            "acknowledged-issue-numbers": [1]})


def test_every_setting_is_documented_in_the_configuration_page():
    from stacks.app.kit import workflow_settings

    page = (ROOT / "docs" / "configuration.md").read_text()
    for key in [*SETTINGS, *workflow_settings()]:
        assert f"| `{key}` |" in page, key


def test_app_reports_bad_setting_in_one_line_without_traceback():
    """What `make synth -c ...` shows: the CLI passes context to app.py through CDK_CONTEXT_JSON."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"max_job_runtime_minutes": "ten"}),
           "CDK_OUTDIR": "/nonexistent-never-written"}
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: invalid setting max_job_runtime_minutes='ten': expected a whole number from 5 to 1440"]


def test_each_workflow_needs_room_for_its_own_jobs(tmp_path):
    """BuildAndRegister runs at most four jobs one after another (one of its two data jobs, train, transform,
    evaluate; the baseline runs beside the last two), five job runtimes with spot training's capacity wait: the
    default 360 minutes hold five of 72, not of 73."""
    from stacks.app.kit import build_app, cdk_json_context

    with pytest.raises(ConfigError, match=r"invalid setting workflow_timeout_minutes=360: expected at least 5 x "
                                          r"max_job_runtime_minutes \(365\) for BuildAndRegister"):
        build_app({**cdk_json_context(), "spot_training": "true", "max_job_runtime_minutes": "73"},
                  outdir=str(tmp_path))
