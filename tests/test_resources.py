"""Bucket protections, state machine logging and tracing, Lambda settings."""
from __future__ import annotations

import json

from tests.cfn import get_att, of_type, resource

STACK = "TrainAndTransform"


def test_data_buckets_are_encrypted_private_versioned_and_logged(templates):
    template = templates[STACK]
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


def test_bucket_policies_deny_plain_http_and_old_tls(templates):
    for policy in of_type(templates[STACK], "AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        conditions = [s["Condition"] for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_destroy_opt_in_deletes_buckets_and_their_objects(synthesized):
    template = synthesized["destroy-data"].templates[STACK]
    for path in ("Data/Bucket/Resource", "Data/AccessLogs/Resource"):
        assert resource(template, path)["DeletionPolicy"] == "Delete"
    assert len(of_type(template, "Custom::S3AutoDeleteObjects")) == 2
    assert {r["DeletionPolicy"] for r in of_type(template, "AWS::Logs::LogGroup").values()} == {"Delete"}


def test_state_machine_logs_everything_and_traces(templates):
    template = templates[STACK]
    props = resource(template, "Workflow/StateMachine/Resource")["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": get_att(template, "Workflow/Logs/Resource")}}],
        "IncludeExecutionData": True, "Level": "ALL"}
    logs = resource(template, "Workflow/Logs/Resource")
    assert logs["Properties"]["RetentionInDays"] == 30 and logs["DeletionPolicy"] == "Retain"
    assert logs["Properties"]["LogGroupName"]["Fn::Join"][1][0] == "/aws/vendedlogs/states/mlkit-tt-"


def test_state_machine_definition_is_inline_with_timeout(templates):
    definition = resource(templates[STACK], "Workflow/StateMachine/Resource")["Properties"]["DefinitionString"]
    text = "".join(part if isinstance(part, str) else "<token>" for part in definition["Fn::Join"][1])
    parsed = json.loads(text)
    assert parsed["TimeoutSeconds"] == 240 * 60
    assert parsed["StartAt"] == "ValidateInput"
    assert parsed["States"]["TrainModel"]["Parameters"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert parsed["States"]["BatchTransform"]["TimeoutSeconds"] == 3600


def test_functions_use_current_runtime_arm64_json_logs_and_tracing(templates):
    template = templates[STACK]
    for name in ("ValidateInput", "SeedDataset"):
        props = resource(template, f"{name}/Function/Resource")["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["Handler"] == "handler.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"] == {
            "ApplicationLogLevel": "INFO", "LogFormat": "JSON",
            "LogGroup": {"Ref": get_att(template, f"{name}/Logs/Resource")["Fn::GetAtt"][0]}, "SystemLogLevel": "WARN"}
        assert props["Role"] == get_att(template, f"{name}/Role/Resource")
        assert resource(template, f"{name}/Logs/Resource")["Properties"]["RetentionInDays"] == 30
    seed = resource(template, "SeedDataset/Function/Resource")["Properties"]
    assert seed["Environment"] == {"Variables": {"DATA_BUCKET": {"Ref": get_att(template, "Data/Bucket/Resource")["Fn::GetAtt"][0]}}}
    validate = resource(template, "ValidateInput/Function/Resource")["Properties"]
    assert validate["Environment"] == {"Variables": {
        "ALLOWED_INSTANCE_TYPES": "ml.m5.large,ml.m5.xlarge,ml.m5.2xlarge,ml.c5.xlarge,ml.c5.2xlarge"}}


def test_images_come_from_the_region_mapping(templates):
    template = templates[STACK]
    from stacks.images import REGISTRY_ACCOUNTS

    assert template["Mappings"]["SageMakerImageRegistry"] == {
        region: {"Account": account} for region, account in REGISTRY_ACCOUNTS.items()}
