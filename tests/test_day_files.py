"""TrainOnDayFiles, the workflow that reaches beyond SageMaker through the extension API: its declared S3
integrations (a Task and a Distributed Map's ItemReader) synthesize with scoped IAM, run offline as the state
machine's role, and refuse what offline cannot run or what the declaration does not allow."""
from __future__ import annotations

import json

import pytest
from aws_cdk import App, Stack, aws_s3

from offline.cloud.account import LocalCloud
from offline.cloud.integrations import MAP_FEATURE, UnsupportedIntegration, check_supported
from offline.cloud.sfn_distributed_map import batches, json_lines
from stacks.app.kit import WORKFLOWS
from stacks.asl.definition import WorkflowDefinitionError
from stacks.asl.integrations import Integration, integration_table
from stacks.constructs.workflow import workflow_policy_statements
from tests.conftest import BUCKET, load_lambda_module
from tests.test_build_and_register import csv_text

STACK = "TrainOnDayFiles"
DISTRIBUTED_PASS = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}}}
split_day_file = load_lambda_module("split_day_file", "handler")


def day_file(rows: int, seed: int, bad: tuple[int, str] | None = None) -> bytes:
    """A day's file: header, then label-first rows of the kit's line data set; `bad` replaces line N's y."""
    lines = csv_text(rows, seed).decode().splitlines()
    if bad:
        line, value = bad
        lines[line - 1] = lines[line - 1].rsplit(",", 1)[0] + f",{value}"
    return ("\n".join(lines) + "\n").encode()


def run(cloud: LocalCloud, name: str, execution_input: dict) -> dict:
    arn = cloud.start(STACK, execution_input, name)
    described = cloud.wait([arn])[arn]
    described["history"] = cloud.history(arn)
    return described


def role_calls(cloud: LocalCloud, action: str, decision: str = "Allow") -> list[str]:
    workflow = cloud.workflows[STACK]
    role = workflow.role_arn.rsplit("/", 1)[1]
    return [d.resource for d in cloud.iam.decisions
            if d.action == action and d.decision == decision and f"assumed-role/{role}/" in d.caller]


# -- the per-file function ------------------------------------------------------------------------------------

def test_a_file_splits_every_row_unchanged_one_in_five_to_validation():
    text = "label,x,y\n1,0.10,5\n0,3e2,+7\n" + "".join(f"{i % 2},{i},{i * 3}\n" for i in range(200))
    header, train, validation = split_day_file.split(text, "s3://b/incoming/d/a.csv")
    assert header == ["label", "x", "y"] and len(train) + len(validation) == 202
    assert "1,0.10,5" in train + validation and "0,3e2,+7" in train + validation  # the values' text as given
    assert 0.1 < len(validation) / 202 < 0.3
    assert (header, train, validation) == split_day_file.split(text, "s3://b/incoming/d/a.csv")  # the same every run


def test_a_batch_skips_folder_markers_and_says_which_sets_its_files_gave(s3):
    """One-row files may all fall to training: the function says so (has_validation) and the run checks the day."""
    s3.put_object(Bucket=BUCKET, Key="incoming/d/", Body=b"")  # what the S3 console's "Create folder" leaves
    s3.put_object(Bucket=BUCKET, Key="incoming/d/one.csv", Body=b"label,x\n1,2\n")
    event = {"Items": [{"Key": "incoming/d/"}, {"Key": "incoming/d/one.csv"}],
             "BatchInput": {"run_prefix": "runs/r/", "objective": "binary:logistic"}}
    found = split_day_file.handler(event, None, s3_client=s3)
    row = "train" if found["has_train"] else "validation"
    assert found == {"header": "label,x", "has_train": row == "train", "has_validation": row == "validation"}
    assert s3.get_object(Bucket=BUCKET, Key=next(o["Key"] for o in s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"runs/r/input/{row}/")["Contents"]))["Body"].read() == b"1,2\n"


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("label,x\n1,2\n1,2,3\n", "line 3: 3 values, but the header names 2 columns"),
    ("label,x\n1,2\n1,abc\n", "line 3 column 'x': 'abc' is not a finite number"),
    ("label,x\n1,inf\n", "line 2 column 'x': 'inf' is not a finite number"),
    ("label,x\n", "the file has a header but no rows"),
    ("0,1.5,2\n1,2,3\n", "line 1: '0,1.5,2' looks like a row of data, not a header"),
    ("label,x\n1,2\n2,3\n", "line 3 column 'label': label '2' is not one of 0, 1, which the objective takes"),
])
def test_a_file_the_kit_cannot_train_on_is_refused_naming_where(text, message):
    with pytest.raises(split_day_file.BadInput, match="^s3://b/k.csv.*" + message.replace("(", r"\(")):
        split_day_file.split(text, "s3://b/k.csv", split_day_file.BINARY_LABELS)


def test_a_regression_objective_takes_any_number_as_its_label():
    _, train, validation = split_day_file.split("y,x\n2.5,1\n-7,2\n", "s3://b/k.csv", None)
    assert sorted(train + validation) == ["-7,2", "2.5,1"]


# -- synthesis: declarations follow the kit's rules ------------------------------------------------------------

def test_the_example_declares_its_integrations_in_its_own_module_only():
    spec = WORKFLOWS[STACK].spec
    assert set(spec.integrations) == {"aws-sdk:s3:listObjectsV2", "s3:listObjectsV2"}
    assert all(not cls.spec.integrations for stack, cls in WORKFLOWS.items() if stack != STACK)


@pytest.mark.parametrize(("declared", "message"), [
    ({"lambda:invoke": Integration(actions=("lambda:InvokeFunction",), target_parameter="FunctionName")},
     "is one of the kit's own"),
    ({"aws-sdk:s3:listObjectsV2": Integration(actions=("s3:ListBucket",), bucket_prefixes=("*",))},
     "reaches the whole data bucket"),
    ({"aws-sdk:s3:copyObject": Integration(actions=("s3:PutObject",), bucket_objects=("?*",))},
     "reaches the whole data bucket"),
    ({"aws-sdk:s3:copyObject": Integration(actions=("s3:PutObject",), bucket_objects=("incoming*",))},
     "reaches the whole data bucket"),
    ({"aws-sdk:s3:getObject": Integration(actions=("s3:GetObject",))}, "names S3 actions without bucket_prefixes"),
    ({"aws-sdk:s3:getObject": Integration(actions=("s3:GetObject",), bucket_prefixes=("incoming/",))},
     "gives bucket_prefixes, which grant actions on the bucket itself"),
    ({"aws-sdk:s3:getObject": Integration(actions=("s3:*",), bucket_objects=("incoming/*",))},
     "names actions with a wildcard"),
    ({"aws-sdk:glue:getJobRun": Integration(actions=("glue:GetJobRun",), fixed_resources=(("glue", "job/*"),))},
     "names a fixed resource with a wildcard"),
    ({"aws-sdk:glue:getJobRun": Integration(actions=("glue:GetJobRun",))}, "names no resource"),
    ({"glue:startJobRun.sync": Integration(actions=())}, "names no IAM action"),
    ({"glue:startJobRun.sync": Integration(actions=("glue:StartJobRun",), fixed_resources=(("glue", "job/etl"),))},
     "is an optimized integration: list the request fields"),
])
def test_a_declaration_that_breaks_the_kits_rules_stops_synthesis(declared, message):
    with pytest.raises(WorkflowDefinitionError, match=f"^x.asl.json: the workflow's integration '[^']+' {message}"):
        integration_table(declared, "x.asl.json")


def test_listing_is_granted_on_the_stacks_bucket_under_the_declared_prefixes_only(templates):
    statements = [s for r in templates[STACK]["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  and "WorkflowRole" in json.dumps(r["Properties"]["Roles"])
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    (listing,) = [s for s in statements if "s3:ListBucket" in json.dumps(s["Action"])]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["incoming/*", "runs/*/input/*"]}}
    (bucket,) = [k for k, r in templates[STACK]["Resources"].items() if r["Type"] == "AWS::S3::Bucket"
                 and k.startswith("DataBucket")]
    assert listing["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}  # this stack's own bucket, no other
    children = [s for s in statements
                if s["Action"] in ("states:StartExecution", ["states:DescribeExecution", "states:StopExecution"])]
    assert [s["Resource"]["Fn::Join"][1][-1] for s in children] == [":stateMachine:mlkit-df", ":execution:mlkit-df/*"]


def test_a_declared_object_integration_gets_its_objects_and_the_bucket_keys_use_through_s3_only():
    copy = Integration(actions=("s3:GetObject", "s3:PutObject"), bucket_objects=("incoming/*", "runs/*/input/*"))
    definition = {"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:copyObject",
                                                   "Parameters": {"Bucket": "b"}, "End": True}}}
    stack = Stack(App(), "Probe")
    statements = [stack.resolve(s.to_statement_json()) for s in workflow_policy_statements(
        definition, scope=stack, source="probe.asl.json", job_name_prefix="p-x", sagemaker_role_arn="r",
        table=integration_table({"aws-sdk:s3:copyObject": copy}, "probe.asl.json"),
        bucket=aws_s3.Bucket.from_bucket_name(stack, "Data", "data"),
        data_key_arn="arn:aws:kms:us-east-1:1:key/k")]
    objects, key = statements
    assert objects["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert [r["Fn::Join"][1][-1] for r in objects["Resource"]] == [":s3:::data/incoming/*", ":s3:::data/runs/*/input/*"]
    assert key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and key["Resource"] == "arn:aws:kms:us-east-1:1:key/k"
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"},
                                                                                     ".amazonaws.com"]]}}}


def test_the_same_actions_under_two_conditions_stay_two_statements():
    """The data key through S3 (a declared object row) and the topic key through SNS share their actions, never a
    statement: merged, one condition would be lost and the other key usable through the wrong service."""
    copy = Integration(actions=("s3:GetObject", "s3:PutObject"), bucket_objects=("incoming/*",))
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:copyObject", "Parameters": {}, "Next": "N"},
        "N": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Parameters": {"TopicArn": "arn:t",
                                                                                          "Message": "m"},
              "End": True}}}
    stack = Stack(App(), "Probe")
    statements = [stack.resolve(s.to_statement_json()) for s in workflow_policy_statements(
        definition, scope=stack, source="probe.asl.json", job_name_prefix="p-x", sagemaker_role_arn="r",
        table=integration_table({"aws-sdk:s3:copyObject": copy}, "probe.asl.json"),
        bucket=aws_s3.Bucket.from_bucket_name(stack, "Data", "data"),
        data_key_arn="arn:data-key", topic_key_arn="arn:topic-key")]
    keys = {s["Resource"]: s["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0]
            for s in statements if s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]}
    assert keys == {"arn:data-key": "s3.", "arn:topic-key": "sns."}


def test_a_declared_optimized_integration_is_checked_against_the_fields_it_declares():
    glue = Integration(actions=("glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun"),
                       fixed_resources=(("glue", "job/etl"),), accepted_parameters=("JobName", "Arguments"))
    table = integration_table({"glue:startJobRun.sync": glue}, "probe.asl.json")

    def derive(parameters: dict) -> list:
        definition = {"StartAt": "Etl", "States": {"Etl": {
            "Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": parameters,
            "End": True}}}
        stack = Stack(App(), "Probe")
        return [stack.resolve(s.to_statement_json()) for s in workflow_policy_statements(
            definition, scope=stack, source="probe.asl.json", job_name_prefix="p-x", sagemaker_role_arn="r",
            table=table)]

    (granted,) = derive({"JobName": "etl", "Arguments": {"--day": "1"}})
    assert granted["Action"] == ["glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun"]
    assert granted["Resource"]["Fn::Join"][1][-1] == ":job/etl"
    with pytest.raises(WorkflowDefinitionError, match="^probe.asl.json: state 'Etl' passes Timeout to "
                                                      "glue:startJobRun.sync, which Step Functions refuses"):
        derive({"JobName": "etl", "Timeout": 5})


# -- offline: runs as AWS runs it, or refused before the run ---------------------------------------------------

@pytest.mark.slow
def test_a_days_files_are_split_in_a_distributed_map_then_trained_and_registered(cloud):
    bucket = cloud.workflows[STACK].data_bucket
    for part in range(12):
        cloud.upload(bucket, f"incoming/2026-12-07/part-{part:02}.csv", day_file(100, seed=part))
    described = run(cloud, "day-2026-12-07", {"day": "2026-12-07"})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["files"] == "incoming/2026-12-07/" and output["columns"] == "label,x,y"
    assert output["batches"] == 2  # child executions of at most ten files each
    assert ":model-package/mlkit-df-models/" in output["model_package_arn"]
    train = cloud.keys(bucket, "runs/day-2026-12-07/input/train/")
    validation = cloud.keys(bucket, "runs/day-2026-12-07/input/validation/")
    assert len(train) == len(validation) == 12  # every file split
    rows = sum(cloud.read(f"s3://{bucket}/{key}").count(b"\n") for key in train + validation)
    assert rows == 1200
    # The listing and the ItemReader ran as the state machine's role, under the day's prefix.
    assert role_calls(cloud, "s3:ListBucket").count(f"arn:aws:s3:::{bucket}") >= 2
    assert not role_calls(cloud, "s3:ListBucket", "ImplicitDeny")


@pytest.mark.slow
def test_a_bad_value_in_one_file_stops_the_run_before_training_naming_file_line_and_column(cloud):
    bucket = cloud.workflows[STACK].data_bucket
    cloud.upload(bucket, "incoming/2026-12-08/good.csv", day_file(200, seed=1))
    cloud.upload(bucket, "incoming/2026-12-08/bad.csv", day_file(200, seed=2, bad=(17, "12;5")))
    described = run(cloud, "day-2026-12-08", {"day": "2026-12-08"})
    assert (described["status"], described["error"]) == ("FAILED", "InvalidDayFile")
    assert described["cause"].startswith(  # the function's message alone, not its error's JSON
        f"s3://{bucket}/incoming/2026-12-08/bad.csv line 17 column 'y': '12;5' is not a finite number")
    assert not [e for e in described["history"] if e["type"] == "TaskScheduled"
                and "createTrainingJob" in e["taskScheduledEventDetails"]["resource"]]


@pytest.mark.slow
def test_a_day_too_small_to_train_and_validate_on_is_refused_before_training(cloud):
    cloud.upload(cloud.workflows[STACK].data_bucket, "incoming/2026-12-20/tiny.csv", b"label,x\n1,2\n")
    described = run(cloud, "day-2026-12-20", {"day": "2026-12-20"})
    assert (described["status"], described["error"]) == ("FAILED", "InvalidDayFile")
    assert described["cause"].startswith("The day's rows gave no training or no validation row")


@pytest.mark.slow
def test_a_day_without_files_fails_with_what_to_do(cloud):
    described = run(cloud, "day-2026-12-09", {"day": "2026-12-09"})
    assert (described["status"], described["error"]) == ("FAILED", "NoDayFiles")
    assert "upload the day's CSV files under incoming/<day>/" in described["cause"]


def planted(bucket: str, reader: bool) -> dict:
    """A definition listing datasets/, a prefix the workflow did not declare, as a Task or as an ItemReader."""
    if reader:
        return {"StartAt": "M", "States": {"M": {
            "Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                                          "Parameters": {"Bucket": bucket, "Prefix": "datasets/"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "End": True}}}
    return {"StartAt": "L", "States": {"L": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
        "Parameters": {"Bucket": bucket, "Prefix": "datasets/"}, "End": True}}}


@pytest.mark.slow
@pytest.mark.parametrize("reader", [False, True], ids=["task", "item-reader"])
def test_an_over_reach_beyond_the_declared_prefixes_is_denied_offline(cloud, reader):
    workflow = cloud.workflows[STACK]
    definition = json.dumps(planted(workflow.data_bucket, reader))
    check_supported(STACK, definition)  # offline has a runner: what stops it is IAM
    arn = cloud.sfn.create_state_machine(name=f"mlkit-df-planted-{reader}", definition=definition,
                                         roleArn=workflow.role_arn)["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name=f"overreach-{reader}")["executionArn"]
    described = cloud.wait([execution])[execution]
    assert described["status"] == "FAILED"
    denied = [d for d in cloud.iam.decisions
              if d.decision == "ImplicitDeny" and d.caller.endswith(f"/overreach-{reader}")]
    assert [(d.action, d.resource) for d in denied] == [("s3:ListBucket", f"arn:aws:s3:::{workflow.data_bucket}")]
    assert "is not authorized to perform: s3:ListBucket" in described["cause"]


@pytest.mark.parametrize(("state", "refused"), [
    ({"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "End": True},
     "glue:startJobRun.sync: it has no offline runner; add one in offline/cloud/integrations.py LOCAL_INTEGRATIONS "
     "(and serve it in the local service it names)"),
    ({"Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST"},
                                    "Parameters": {"Bucket": "b", "Key": "k"}},
      "ItemProcessor": DISTRIBUTED_PASS, "End": True},
     "an ItemReader of InputType MANIFEST: " + MAP_FEATURE),
    ({"Type": "Map", "ItemBatcher": {"MaxItemsPerBatchPath": "$.n"},
      "ItemProcessor": DISTRIBUTED_PASS, "End": True},
     "an ItemBatcher's MaxItemsPerBatchPath: " + MAP_FEATURE),
    ({"Type": "Map", "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
      "ItemProcessor": DISTRIBUTED_PASS, "End": True},
     "a Map's ResultWriter: " + MAP_FEATURE),
    ({"Type": "Map", "ItemBatcher": {"MaxItemsPerBatch": 2},
      "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "End": True},
     "ItemBatcher: a Distributed Map's field, which an INLINE Map does not take; set "
     "ItemProcessor.ProcessorConfig.Mode to DISTRIBUTED"),
], ids=["glue", "manifest", "batch-size-path", "result-writer", "inline-batcher"])
def test_what_offline_cannot_run_is_refused_before_the_run_in_one_line(state, refused):
    definition = json.dumps({"StartAt": "S", "States": {"S": state}})
    with pytest.raises(UnsupportedIntegration) as error:
        check_supported("Planted", definition)
    assert str(error.value) == f"Planted: state 'S' uses {refused}"


# -- Distributed Map features offline/cloud/sfn_distributed_map.py adds to moto's interpreter ------------------

def test_items_are_batched_within_the_count_and_the_byte_limit_with_the_batch_input():
    items = [{"Key": f"k{i}"} for i in range(7)]  # {"Key":"k0"} is 12 bytes
    assert [len(b["Items"]) for b in batches(items, {"MaxItemsPerBatch": 3})] == [3, 3, 1]
    # {"Items":[],"BatchInput":{"r":1}} is 33 bytes, each item 12 more and a comma between two.
    sized = batches(items, {"MaxInputBytesPerBatch": 33 + 12 * 2 + 1, "BatchInput": {"r": 1}})
    assert [len(b["Items"]) for b in sized] == [2, 2, 2, 1] and sized[0]["BatchInput"] == {"r": 1}
    assert all(len(json.dumps(b, separators=(",", ":"))) <= 58 for b in sized)
    assert [b["Items"] for b in batches(items, {"MaxItemsPerBatch": 5})] == [items[:5], items[5:]]  # order kept
    with pytest.raises(ValueError, match="an item of 12 bytes does not fit in a batch of MaxInputBytesPerBatch 20"):
        batches(items, {"MaxInputBytesPerBatch": 20})


def test_json_lines_are_one_value_a_line_with_the_line_of_a_bad_one():
    assert list(json_lines('{"a": 1}\n[2]\n"x"\n')) == [{"a": 1}, [2], "x"]
    with pytest.raises(ValueError, match="^line 2 is not a JSON value"):
        list(json_lines('{"a": 1}\n\n{"b": 2}\n'))


@pytest.mark.slow
def test_a_json_lines_reader_a_selector_and_a_batcher_run_offline_as_the_state_machines_role(cloud):
    workflow = cloud.workflows[STACK]
    bucket = workflow.data_bucket
    cloud.upload(bucket, "incoming/2026-12-10/items.jsonl", b"".join(b'{"n": %d}\n' % n for n in range(5)))
    definition = json.dumps({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True, "MaxConcurrency": 2,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                       "Parameters": {"Bucket": bucket, "Key": "incoming/2026-12-10/items.jsonl"}},
        "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "index.$": "$$.Map.Item.Index", "day.$": "$.day"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"day.$": "$.day", "run.$": "$$.Execution.Name"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}})
    check_supported(STACK, definition)
    # The workflow's role lists its prefixes but reads no object itself: the reader's GetObject is denied.
    arn = cloud.sfn.create_state_machine(name="mlkit-df-jsonl", definition=definition,
                                         roleArn=workflow.role_arn)["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name="jsonl-denied", input='{"day": "d"}')
    denied = cloud.wait([execution["executionArn"]])[execution["executionArn"]]
    assert denied["status"] == "FAILED" and "is not authorized to perform: s3:GetObject" in denied["cause"]
    # A role that may read the file (the function's, which reads incoming/) gets the batches.
    reader = next(f.role_arn for f in workflow.functions.values() if "splitdayfile" in f.name.lower())
    arn = cloud.sfn.create_state_machine(name="mlkit-df-jsonl-read", definition=definition,
                                         roleArn=reader)["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name="jsonl-read", input='{"day": "d"}')
    described = cloud.wait([execution["executionArn"]])[execution["executionArn"]]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    # Each item selected (ItemSelector: the Map's input, the item and its index), then batched with the BatchInput.
    selected = [{"n": n, "index": n, "day": "d"} for n in range(5)]
    assert json.loads(described["output"]) == [
        {"Items": selected[:2], "BatchInput": {"day": "d", "run": "jsonl-read"}},
        {"Items": selected[2:4], "BatchInput": {"day": "d", "run": "jsonl-read"}},
        {"Items": selected[4:], "BatchInput": {"day": "d", "run": "jsonl-read"}}]


def failing_map(bucket: str, day: str, tolerance: dict) -> str:
    """A Distributed Map over a day's files whose child execution fails for a file named bad*."""
    return json.dumps({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True, **tolerance,
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": bucket,
                                                                                     "Prefix": f"incoming/{day}/"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "C",
                          "States": {"C": {"Type": "Choice", "Default": "Ok", "Choices": [
                              {"Variable": "$.Key", "StringMatches": "*/bad*", "Next": "Broken"}]},
                              "Ok": {"Type": "Pass", "End": True},
                              "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "a bad file"}}}}}})


@pytest.mark.slow
@pytest.mark.parametrize(("tolerance", "status"), [
    ({}, "FAILED"), ({"ToleratedFailureCount": 1}, "SUCCEEDED"), ({"ToleratedFailurePercentage": 40}, "FAILED"),
    ({"ToleratedFailurePercentage": 50}, "SUCCEEDED"),
], ids=["none-tolerated", "one-tolerated", "40-percent", "50-percent"])
def test_failed_child_executions_fail_the_map_beyond_what_it_tolerates(cloud, tolerance, status):
    workflow, day = cloud.workflows[STACK], "2026-12-11"
    for name in ("good.csv", "bad.csv"):
        cloud.upload(workflow.data_bucket, f"incoming/{day}/{name}", b"label,x\n1,2\n")
    label = "-".join(f"{k[17:].lower()}{v}" for k, v in tolerance.items()) or "none"
    arn = cloud.sfn.create_state_machine(name=f"mlkit-df-tolerance-{label}",
                                         definition=failing_map(workflow.data_bucket, day, tolerance),
                                         roleArn=workflow.role_arn)["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name=f"tolerance-{label}")["executionArn"]
    described = cloud.wait([execution])[execution]
    assert described["status"] == status, described.get("cause")
    if status == "FAILED":
        assert described["error"] == "States.ExceedToleratedFailureThreshold"
        assert described["cause"].startswith("1 of 2 items failed, over what the Map tolerates")


@pytest.mark.slow
def test_a_map_reading_an_input_type_offline_cannot_read_is_created_and_refused_before_its_run(cloud):
    workflow = cloud.workflows[STACK]
    definition = json.dumps({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST"},
                       "Parameters": {"Bucket": workflow.data_bucket, "Key": "incoming/manifest.json"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "End": True}}}}}})
    cloud.sfn.create_state_machine(name="mlkit-df-manifest", definition=definition, roleArn=workflow.role_arn)
    with pytest.raises(UnsupportedIntegration, match="^Planted: state 'M' uses an ItemReader of InputType MANIFEST"):
        check_supported("Planted", definition)


@pytest.mark.slow
@pytest.mark.parametrize(("tolerated", "status"), [(2, "FAILED"), (3, "SUCCEEDED")])
def test_a_failed_batch_counts_each_of_its_items_against_the_threshold(cloud, tolerated, status):
    workflow, day = cloud.workflows[STACK], f"2026-12-1{tolerated}"
    for name in ("a-1", "a-2", "a-3", "bad-1", "bad-2", "bad-3"):
        cloud.upload(workflow.data_bucket, f"incoming/{day}/{name}.csv", b"label,x\n1,2\n")
    definition = json.loads(failing_map(workflow.data_bucket, day, {"ToleratedFailureCount": tolerated}))
    definition["States"]["M"]["ItemBatcher"] = {"MaxItemsPerBatch": 3}
    # Each batch fails by its first file (not by the path $.Items[0].Key, a list in moto and the value on AWS).
    processor = definition["States"]["M"]["ItemProcessor"]
    processor["StartAt"] = "F"
    processor["States"]["F"] = {"Type": "Pass", "Next": "C", "OutputPath": "$.first",
                                "Parameters": {"first.$": "States.ArrayGetItem($.Items, 0)"}}
    arn = cloud.sfn.create_state_machine(name=f"mlkit-df-batch-tolerance-{tolerated}", definition=json.dumps(definition),
                                         roleArn=workflow.role_arn)["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name=f"batch-tolerance-{tolerated}")["executionArn"]
    described = cloud.wait([execution])[execution]
    assert described["status"] == status, described.get("cause")
    if status == "FAILED":  # the second batch's three items, not one child execution
        assert described["cause"].startswith("3 of 6 items failed")
