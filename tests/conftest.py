"""Shared fixtures: each distinct configuration is synthesized once per test run, whatever its workers."""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# jsii runs on the Node pinned in package.json, also when pytest is started without make.
os.environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
# The tests' Spark applications are short: the JVM's quick compiler alone and its serial collector cut their CPU
# by about a third (tests/test_spark_jobs.py: 29 s to 18 s, tests/test_spark_data_job.py: 59 s to 44 s); neither
# changes what an application computes. make run and make bench keep Java's defaults.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
from stacks.app.kit import WORKFLOWS, build_app, cdk_json_context  # noqa: E402

CDK_CONTEXT = cdk_json_context()
# Every registered workflow's stack id: tests iterate over these, so a new workflow is covered without edits.
WORKFLOW_IDS = sorted(WORKFLOWS)


def expanded_definition(workflow) -> dict:
    """A workflow's ASL with the fragments its stack adds under the default settings (the model contract's)."""
    import types

    from stacks.settings.config import KitConfig
    from stacks.asl.definition import expand, load_definition
    from stacks.settings.model_contract import ModelContract
    from stacks.workflows.workflow_stack import workflow_settings

    config = KitConfig.from_context({}, workflow_settings())
    stack = types.SimpleNamespace(spec=workflow.spec, config=config,
                                  contract=ModelContract.from_settings(config.workflow_settings))
    return expand(load_definition(ROOT / "statemachines" / f"{workflow.spec.definition}.asl.json"),
                  workflow.definition_fragments(stack))


def _asl(stack: str) -> str:
    return (ROOT / "statemachines" / f"{WORKFLOWS[stack].spec.definition}.asl.json").read_text()


# Every integration any workflow may use: the kit's own and each workflow's declared ones (which never clash).
EVERY_INTEGRATION = {key: row for cls in WORKFLOWS.values() for key, row in cls.spec.integration_table.items()}
# The workflows that run SageMaker jobs (every job check applies to them), and those that train.
JOB_WORKFLOW_IDS = [s for s in WORKFLOW_IDS if re.search(r"sagemaker:create\w+Job\.sync", _asl(s))]
# And those whose runs could leave something billing when they give up (jobs, an endpoint): they get JobCleanup.
CLEANUP_WORKFLOW_IDS = [s for s in WORKFLOW_IDS
                        if s in JOB_WORKFLOW_IDS or re.search(r"sagemaker:createEndpoint\"", _asl(s))]
TRAINING_WORKFLOW_IDS = [s for s in WORKFLOW_IDS
                         if re.search(r"sagemaker:create(TrainingJob|HyperParameterTuningJob)", _asl(s))]

# Every configuration the tests synthesize: name -> context overrides on top of cdk.json.
CONFIGURATIONS = {
    "default": {},
    "destroy-data": {"destroy_data_on_delete": "true"},
    "kms": {"encryption": "kms"},
}
PIPELINE = {"pipeline_repository": "example/sagemaker-kit", "pipeline_connection_arn":
            "arn:aws:codeconnections:eu-west-1:111122223333:connection/12345678-1234-1234-1234-123456789012"}
# The pipeline in one account, dev and prod in two others (one region).
CROSS_ACCOUNT = {"pipeline_environment": "aws://111111111111/eu-west-1", "dev_environment": "aws://222222222222/eu-west-1",
                 "prod_environment": "aws://333333333333/eu-west-1"}
# The results site as the README's `make synth` line sets it.
RESULTS_SITE = {"results_site": "true", "results_site_domain": "results.example.com", "results_site_certificate_arn":
                "arn:aws:acm:eu-west-1:111122223333:certificate/12345678-1234-1234-1234-123456789012"}
# Synthesized only for the tests that ask: two copies side by side (one account and region), and the pipeline.
EXTRA_CONFIGURATIONS = {"retrain": {"retrain_schedule": "rate(7 days)", "notification_email": "ml-team@example.com",
                                    "retrain_on_drift": "true"},
                        "spot": {"spot_training": "true", "workflow_timeout_minutes": "420"},
                        "stage-dev": {"stage": "dev"}, "stage-prod": {"stage": "prod"}, "pipeline": PIPELINE,
                        # Stages in other accounts, their data under customer-managed keys.
                        "pipeline-cross-account-kms": {**PIPELINE, **CROSS_ACCOUNT, "encryption": "kms"},
                        # The model contract's cases, each through the whole loop (tests/test_model_loop.py).
                        "contract-multiclass": {"task": "multiclass", "label_column": "species"},
                        "contract-regression": {"task": "regression", "label_column": "price", "gate_metric": "rmse",
                                                "gate_threshold": "60000", "drop_columns": "listing_id"},
                        "contract-binary": {"label_column": "churned"},
                        "contract-script": {"model": "training/sklearn_linear", "task": "multiclass",
                                            "label_column": "species"},
                        # Several training instances from a small size on (tests/test_model_loop.py).
                        "distributed": {"distributed_above_mib": "1", "training_instance_count": "3"},
                        # The data job on Spark whatever the data set's size (tests/test_spark_data_job.py).
                        "spark": {"spark_above_mib": "0", "label_column": "churned"},
                        # The results site's stack beside the copy (tests/test_results_site.py).
                        "results-site": RESULTS_SITE}


def pytest_configure(config: pytest.Config) -> None:
    # `make test PYTEST_ARGS='-m "not slow"'` skips these while working; CI and `make test` run everything.
    config.addinivalue_line("markers", "slow: runs the CLI in new shells or whole offline loops (tens of seconds "
                                       "each); skip with -m \"not slow\"")


# Fixtures that run a whole offline loop (build, approve, deploy, monitor; a stage's delivery check of every
# workflow): the tests that use one are slow.
LOOP_FIXTURES = {"loop", "duplicated", "dev_stage"}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a loop fixture are marked slow. Files with slow tests go first (each file's own order kept): a
    parallel run, which gives each worker a file at a time, then ends on short files instead of waiting on a long
    one it started last."""
    for item in items:
        if LOOP_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@dataclass(frozen=True)
class Synthesis:
    templates: dict[str, dict]
    report: dict
    outdir: Path


def all_stacks(assembly) -> list:
    """The assembly's stacks and those of its stages, nested as deep as they go."""
    return [*assembly.stacks, *(stack for nested in assembly.nested_assemblies
                                for stack in all_stacks(nested.nested_assembly))]


def _synthesis(assembly, outdir: Path) -> Synthesis:
    return Synthesis(templates={stack.stack_name: stack.template for stack in all_stacks(assembly)},
                     report=json.loads((outdir / "validation-report.json").read_text()), outdir=outdir)


# Configurations whose tests read only some workflows: only those stacks are synthesized (configuration -> ids).
LOOP_WORKFLOWS = ("BuildAndRegister", "DeployApproved", "MonitorEndpoint")  # build, deploy, monitor
PARTIAL = {**dict.fromkeys(("contract-multiclass", "contract-regression", "contract-binary", "contract-script",
                            "distributed", "retrain"), LOOP_WORKFLOWS),
           "spot": tuple(TRAINING_WORKFLOW_IDS), "spark": ("BuildAndRegister",)}


def synthesize(outdir: Path, overrides: dict, workflows: tuple[str, ...] | None = None) -> Synthesis:
    return _synthesis(build_app({**CDK_CONTEXT, **overrides}, outdir=str(outdir), workflows=workflows).synth(),
                      outdir)


class _Configurations(dict):
    """Synthesizes a configuration the first time a test asks for it, then remembers it.

    The workers of a parallel run (pytest-xdist) share one folder: the first worker to ask synthesizes the
    configuration there, under a file lock; the others wait for it and read the same cloud assembly."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        super().__init__()
        base = tmp_path_factory.getbasetemp()
        # Each worker's base folder (popen-gw<N>) lies in the run's own, which is new for every run.
        self.shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def __missing__(self, name: str) -> Synthesis:
        outdir, done = self.shared / f"synthesized-{name}", self.shared / f"synthesized-{name}.done"
        with open(self.shared / f"synthesized-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if done.exists():
                from aws_cdk import cx_api

                self[name] = _synthesis(cx_api.CloudAssembly(str(outdir)), outdir)
            else:
                self[name] = synthesize(outdir, {**CONFIGURATIONS, **EXTRA_CONFIGURATIONS}[name], PARTIAL.get(name))
                done.touch()
        return self[name]


BUCKET = "data"  # the data bucket of a function under test, against moto's S3 (the s3 fixture)


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 with the function's data bucket, named in DATA_BUCKET as the stack sets it."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, Synthesis]:
    return _Configurations(tmp_path_factory)


@pytest.fixture(scope="module")
def cloud(synthesized):
    """The default configuration's local account, one per test module (a module needing another defines its own)."""
    from offline.cloud.account import LocalCloud  # here, so collecting the tests loads no emulator

    with LocalCloud(synthesized["default"].outdir) as local:
        yield local


@pytest.fixture(params=WORKFLOW_IDS)
def workflow_id(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def templates(synthesized) -> dict[str, dict]:
    """Templates of the default configuration, by stack name."""
    return synthesized["default"].templates


def load_lambda_module(folder: str, module: str) -> ModuleType:
    """Import lambda/<folder>/<module>.py with its folder importable, as Lambda does. Every function has a
    `handler` module, so handlers get a unique name; helper modules keep theirs (they are unique)."""
    directory = ROOT / "lambda" / folder
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    if module != "handler":
        return importlib.import_module(module)
    name = f"{folder}_handler"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, directory / "handler.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def load_processing_module(name: str) -> ModuleType:
    """Import processing/<name>.py, a job script (not a package module), once."""
    key = f"processing_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "processing" / f"{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]
