"""Bucket protections, state machine logging and tracing, Lambda settings."""
from __future__ import annotations

import json

import pytest

from contract.bundle import bundle
from stacks.asl.definition import task_states

from stacks.app.kit import WORKFLOWS
from tests.cfn import get_att, of_type, resource
from tests.conftest import CLEANUP_WORKFLOW_IDS, EVERY_INTEGRATION, JOB_WORKFLOW_IDS


@pytest.fixture
def stack(workflow_id):
    return workflow_id


def prefix(stack: str) -> str:
    return f"mlkit-{WORKFLOWS[stack].spec.slug}"


def test_data_buckets_are_encrypted_private_versioned_and_logged(templates, stack):
    template = templates[stack]
    for path in ("Data/Bucket/Resource", "Data/AccessLogs/Resource"):
        bucket = resource(template, path)
        props = bucket["Properties"]
        assert props["BucketEncryption"] == {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    data = resource(template, "Data/Bucket/Resource")["Properties"]
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    assert data["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert data["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": get_att(template, "Data/AccessLogs/Resource")["Fn::GetAtt"][0]},
        "LogFilePrefix": "data-bucket/"}
    assert data["LifecycleConfiguration"] == {"Rules": [{
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "Status": "Enabled"}]}


def test_bucket_policies_deny_plain_http_and_old_tls(templates, stack):
    for policy in of_type(templates[stack], "AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        conditions = [s["Condition"] for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_destroy_opt_in_deletes_buckets_and_their_objects(synthesized, stack):
    template = synthesized["destroy-data"].templates[stack]
    for path in ("Data/Bucket/Resource", "Data/AccessLogs/Resource"):
        assert resource(template, path)["DeletionPolicy"] == "Delete"
    assert len(of_type(template, "Custom::S3AutoDeleteObjects")) == 2
    assert {r["DeletionPolicy"] for r in of_type(template, "AWS::Logs::LogGroup").values()} == {"Delete"}


def test_state_machine_logs_everything_and_traces(templates, stack):
    template = templates[stack]
    props = resource(template, "Workflow/StateMachine/Resource")["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": get_att(template, "Workflow/Logs/Resource")}}],
        "IncludeExecutionData": True, "Level": "ALL"}
    logs = resource(template, "Workflow/Logs/Resource")
    assert logs["Properties"]["RetentionInDays"] == 30 and logs["DeletionPolicy"] == "Retain"
    assert logs["Properties"]["LogGroupName"]["Fn::Join"][1][0] == f"/aws/vendedlogs/states/{prefix(stack)}-"


def inline_definition(template: dict) -> dict:
    """The state machine's ASL from the template, CloudFormation values shown as <token>."""
    definition = resource(template, "Workflow/StateMachine/Resource")["Properties"]["DefinitionString"]
    return json.loads("".join(part if isinstance(part, str) else "<token>" for part in definition["Fn::Join"][1]))


def test_state_machine_definition_is_inline_with_timeout(templates, stack):
    parsed = inline_definition(templates[stack])
    shadow = 24 * 60 if stack == "DeployApproved" else 0  # a run's shadow test (shadow_hours) waits on top
    assert parsed["TimeoutSeconds"] == (360 + shadow) * 60
    # Every run checks its input first; a run a rule started for an event claims the event before that.
    assert parsed["StartAt"] == "ValidateInput" or (
        parsed["StartAt"] == "FromEvent" and parsed["States"]["FromEvent"]["Default"] == "ValidateInput")


def test_build_and_register_waits_for_four_job_startups_in_a_row(templates):
    """One data job (import, checks, split and preprocessing), training, then evaluation's transform and metrics:
    four start-ups on the critical path, the baseline beside them."""
    from stacks.asl.definition import job_startups_in_a_row

    assert job_startups_in_a_row(inline_definition(templates["BuildAndRegister"])) == 4


@pytest.mark.parametrize("stack", JOB_WORKFLOW_IDS)
def test_every_job_is_capped_at_max_job_runtime(templates, stack):
    """Jobs with a runtime field get max_job_runtime_minutes; transform jobs, which have none, a task timeout."""
    jobs = [(name, state) for name, state in task_states(inline_definition(templates[stack]))
            if EVERY_INTEGRATION[state["Resource"].split(":::")[1]].stoppable_job]
    assert jobs
    for name, state in jobs:
        parameters = state["Parameters"]
        stopping = parameters.get("StoppingCondition") or parameters.get("TrainingJobDefinition", {}).get(
            "StoppingCondition")
        if "TransformJobName.$" in parameters:
            assert state["TimeoutSeconds"] == 3600 and stopping is None, name
        else:
            assert stopping == {"MaxRuntimeInSeconds": 3600}, name


def test_functions_use_current_runtime_arm64_json_logs_and_tracing(templates, stack):
    template = templates[stack]
    functions = [r["Metadata"]["aws:cdk:path"].split("/", 1)[1].removesuffix("/Function/Resource")
                 for r in of_type(template, "AWS::Lambda::Function").values()]
    assert {"ValidateInput", *(["JobCleanup/StopRunJobs"] if stack in CLEANUP_WORKFLOW_IDS else [])} <= set(functions)
    for name in functions:
        props = resource(template, f"{name}/Function/Resource")["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["Handler"] == "handler.handler"
        # Active, except in the partitions whose pages say Lambda has no X-Ray integration (stacks/settings/regions.py)
        assert props["TracingConfig"] == {"Mode": {"Fn::If": ["LambdaTracingAvailable", "Active", "PassThrough"]}}
        assert props["LoggingConfig"] == {
            "ApplicationLogLevel": "INFO", "LogFormat": "JSON",
            "LogGroup": {"Ref": get_att(template, f"{name}/Logs/Resource")["Fn::GetAtt"][0]}, "SystemLogLevel": "WARN"}
        assert props["Role"] == get_att(template, f"{name}/Role/Resource")
        assert resource(template, f"{name}/Logs/Resource")["Properties"]["RetentionInDays"] == 30
    if "SeedDataset" not in functions:
        return
    seed = resource(template, "SeedDataset/Function/Resource")["Properties"]
    assert seed["Environment"] == {"Variables": {"DATA_BUCKET": {"Ref": get_att(template, "Data/Bucket/Resource")["Fn::GetAtt"][0]}}}
    validate = resource(template, "ValidateInput/Function/Resource")["Properties"]
    assert validate["Environment"] == {"Variables": {
        "ALLOWED_INSTANCE_TYPES": "ml.m5.large,ml.m5.xlarge,ml.m5.2xlarge,ml.c5.xlarge,ml.c5.2xlarge",
        "DATA_BUCKET": {"Ref": get_att(template, "Data/Bucket/Resource")["Fn::GetAtt"][0]},
        "DATASET_PREFIXES": ",".join(WORKFLOWS[stack].spec.job_bucket_reads)}}


def test_lambda_tracing_follows_the_partition_table(templates, stack):
    """The condition holds in every partition but those a page says lack Lambda's X-Ray integration (China)."""
    from stacks.settings.regions import PARTITIONS, partitions_without

    condition = templates[stack]["Conditions"]["LambdaTracingAvailable"]

    def holds(node, partition: str) -> bool:
        (operator, arguments), = node.items()
        if operator == "Fn::Not":
            return not holds(arguments[0], partition)
        if operator == "Fn::Or":
            return any(holds(a, partition) for a in arguments)
        left, right = (partition if a == {"Ref": "AWS::Partition"} else a for a in arguments)
        return left == right

    assert {p: holds(condition, p) for p in PARTITIONS} == {p: p not in partitions_without("lambda X-Ray tracing")
                                                           for p in PARTITIONS}
    assert not holds(condition, "aws-cn") and holds(condition, "aws")


def test_image_uris_resolve_per_region_through_the_mapping(templates, stack):
    """The definition names images by the deploying region's registry, so one template works everywhere."""
    definition = resource(templates[stack], "Workflow/StateMachine/Resource")["Properties"]["DefinitionString"]
    from stacks.settings.images import IMAGES

    mappings = {image.mapping for image in IMAGES.values()}
    lookups = [part["Fn::FindInMap"] for part in definition["Fn::Join"][1]
               if isinstance(part, dict) and "Fn::FindInMap" in part]
    assert lookups and all(table in mappings and key == {"Ref": "AWS::Region"} and column == "Account"
                           for table, key, column in lookups)
    assert set(templates[stack]["Mappings"]["SageMakerImageRegistry"]) >= {"us-east-1", "eu-west-1", "cn-north-1"}


def test_processing_script_is_pinned_by_content_hash(synthesized):
    from tests.conftest import ROOT

    synthesis = synthesized["default"]
    parsed = inline_definition(synthesis.templates["PreprocessAndTrain"])
    app = parsed["States"]["Preprocess"]["Parameters"]["AppSpecification"]
    script = app["ContainerEntrypoint"][1].rsplit("/", 1)[1]
    digest = script.removesuffix(".py")
    assert len(digest) == 64 and app["ContainerEntrypoint"][0] == "python3"
    # The object the definition names is the asset CDK uploads, and that asset is this script, byte for byte, with
    # the contract it imports bundled in.
    assets = json.loads((synthesis.outdir / "PreprocessAndTrain.assets.json").read_text())["files"]
    staged = synthesis.outdir / assets[digest]["source"]["path"]
    assert staged.read_text() == bundle(ROOT / "processing" / "features.py")
    code = parsed["States"]["Preprocess"]["Parameters"]["ProcessingInputs"][1]["S3Input"]
    assert code["S3Uri"] == "<token>" and code["LocalPath"] == "/opt/ml/processing/code"


def test_training_reads_this_runs_processing_output():
    """Training and transform take their data from the processing step's output of the same execution."""
    from stacks.asl.definition import expand, load_definition
    from tests.conftest import ROOT, WORKFLOWS

    states = expand(load_definition(ROOT / "statemachines" / "preprocess_and_train.asl.json"),
                    WORKFLOWS["PreprocessAndTrain"].spec.fragments)["States"]  # the shared BatchTransform, filled in
    output = states["Preprocess"]["Parameters"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    assert output["S3Uri.$"] == "States.Format('s3://${DataBucket}/{}processed', $.settings.run_prefix)"
    assert states["Preprocess"]["ResultSelector"]["Output.$"] == "$.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri.$"]
                for c in states["TrainModel"]["Parameters"]["InputDataConfig"]}
    assert channels == {"train": "States.Format('{}/train/', $.processing.Output)",
                        "validation": "States.Format('{}/validation/', $.processing.Output)"}
    transform_input = states["BatchTransform"]["Parameters"]["TransformInput"]["DataSource"]["S3DataSource"]
    assert transform_input["S3Uri.$"] == "States.Format('{}/test/', $.processing.Output)"
