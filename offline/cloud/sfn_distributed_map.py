"""Teaches moto's Step Functions interpreter what a Distributed Map does that it lacks, as Step Functions does it.

- The ItemReader calls S3 as the execution's role (Step Functions developer guide, "IAM policies for using
  Distributed Map states": the state machine's role lists the bucket and reads the objects). moto calls it with no
  one acting, so IAM offline would not authorize it.
- `s3:listObjectsV2` lists every page (moto stops at S3's first, 1,000 keys) and gives each object as Key,
  Etag, LastModified (epoch seconds), Size and StorageClass (moto hands on the SDK's datetime objects). Only Key is
  checked against a source here (the ItemReader page's and CDK's S3ObjectsItemReader examples); the other
  fields' names and forms are unverified, so the kit's workflows read Key alone, and so should a team's.
- `ReaderConfig.InputType` `JSONL` (the ItemReader page: JSON Lines, one item per line), which moto lacks.
- `ItemBatcher` (the developer guide's "ItemBatcher (Map)" page): each child execution gets {"Items": [...]} of at
  most MaxItemsPerBatch items and MaxInputBytesPerBatch bytes (at most 256 KiB), plus the BatchInput, whose paths
  read the Map state's input ($.) or the context object ($$.). moto's grammar has no ItemBatcher, so it is taken
  out of the definition before moto parses it and applied to the items before the child executions start, after
  the ItemSelector (the guide's "Map state input and output fields" gives the order).
- Failed child executions fail the Map with States.ExceedToleratedFailureThreshold once the items they held exceed
  ToleratedFailureCount or ToleratedFailurePercentage, any failure when neither is set (the Map state page's
  failure thresholds, counted in items); moto counts child executions and carries on with a null result. A
  whole-number ToleratedFailurePercentage (40) is read as AWS reads it; moto's grammar takes only 40.0.
What no page fixes, and what moto does not run, offline/cloud/integrations.py refuses before a run.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Iterator

from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (FailureEvent,
                                                                                     FailureEventException)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import item_reader_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
    ResourceEvalS3)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer import (  # noqa: E501
    ResourceOutputTransformer)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.reader_config import input_type
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.json_path import extract_json

from offline.iam import iam

MAX_INPUT_BYTES_PER_BATCH = 256 * 1024  # the ItemBatcher page's limit on MaxInputBytesPerBatch
JSON_LINES = "JSONL"

_installed = threading.Lock()
_original_eval = ResourceEvalS3.eval_resource
_original_parse = AmazonStateLanguageParser.parse
_original_map_run = DistributedIterationComponent._map_run
_original_input_type_init = input_type.InputType.__init__
_original_transformer_for = item_reader_decl.resource_output_transformer_for


def _map_failure(env, kind: StatesErrorNameType, cause: str) -> FailureEventException:
    """The Map run's failure, as moto's own reader reports one (States.ItemReaderFailed, ...)."""
    error = StatesErrorName(typ=kind)
    return FailureEventException(failure_event=FailureEvent(
        env=env, error_name=error, event_type=HistoryEventType.MapRunFailed,
        event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(
            error=error.error_name, cause=cause))))


# -- the ItemReader's S3 calls --------------------------------------------------------------------------------

def _object_item(listed: dict) -> dict:
    return {"Etag": listed["ETag"], "Key": listed["Key"], "LastModified": int(listed["LastModified"].timestamp()),
            "Size": listed["Size"], "StorageClass": listed.get("StorageClass", "STANDARD")}


def _list_every_object(env, resource_runtime_part, state_credentials: StateCredentials) -> None:
    client = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                           state_credentials=state_credentials)
    items = []
    for page in client.get_paginator("list_objects_v2").paginate(**env.stack.pop()):
        items += [_object_item(listed) for listed in page.get("Contents", [])]
    env.stack.append(items)


def _as_execution_role(self, env) -> None:
    with iam.as_execution(env):
        return _original_eval(self, env)


# -- JSON Lines -----------------------------------------------------------------------------------------------

def json_lines(text: str) -> Iterator[Any]:
    """Each line's JSON value; only the file's last line break may end an empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        try:
            yield json.loads(line)
        except ValueError as error:
            raise ValueError(f"line {number} is not a JSON value: {error}") from None


class _JsonLinesTransformer(ResourceOutputTransformer):
    def _eval_body(self, env) -> None:
        reader_config = env.stack.pop()
        text = env.stack.pop()
        try:
            items = list(json_lines(text))
        except ValueError as error:
            raise _map_failure(env, StatesErrorNameType.StatesItemReaderFailed, f"JSONL input: {error}") from None
        env.stack.append(items[:reader_config["MaxItemsValue"]])


def _input_type_init(self, input_type: str) -> None:
    """JSONL, and any type moto lacks kept as its name: the local account still creates the state machine, as
    AWS would, and offline/cloud/integrations.py refuses a run of one it cannot read, in one line."""
    try:
        _original_input_type_init(self, input_type)
    except ValueError:
        self.input_type_value = input_type


def _transformer_for(input_type):
    if input_type.input_type_value == JSON_LINES:
        return _JsonLinesTransformer()
    if isinstance(input_type.input_type_value, str):
        return None  # never read: such a run is refused before it starts
    return _original_transformer_for(input_type=input_type)


# -- ItemBatcher ----------------------------------------------------------------------------------------------

def batches(items: list, batcher: dict) -> list[dict]:
    """The child executions' inputs: {"Items": [...], "BatchInput": ...}, each within the batcher's limits."""
    max_items = batcher.get("MaxItemsPerBatch")
    max_bytes = batcher.get("MaxInputBytesPerBatch", MAX_INPUT_BYTES_PER_BATCH)
    extra = {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
    overhead = len(json.dumps({"Items": [], **extra}, separators=(",", ":")).encode())
    grouped: list[list] = [[]]
    size = overhead
    for item in items:
        item_bytes = len(json.dumps(item, separators=(",", ":")).encode())
        if overhead + item_bytes > max_bytes:
            raise ValueError(f"an item of {item_bytes} bytes does not fit in a batch of MaxInputBytesPerBatch "
                             f"{max_bytes}")
        grown = size + item_bytes + (1 if grouped[-1] else 0)
        if grouped[-1] and (grown > max_bytes or (max_items and len(grouped[-1]) >= max_items)):
            grouped.append([])
            grown = overhead + item_bytes
        grouped[-1].append(item)
        size = grown
    return [{"Items": group, **extra} for group in grouped if group]


def _maps(node: Any) -> Iterator[tuple[str, dict]]:
    """(name, state) of every Map state in a definition, nested ones too."""
    states = node.get("States", {}) if isinstance(node, dict) else {}
    for name, state in states.items():
        if isinstance(state, dict):
            if state.get("Type") == "Map":
                yield name, state
            for inner in (*state.get("Branches", []), state.get("ItemProcessor"), state.get("Iterator")):
                yield from _maps(inner)


def _parse(definition: str):
    """moto's parse of the definition without its ItemBatchers; each Map's iteration component then gets its
    batcher and which failure thresholds the definition sets (state names are unique in a state machine, Maps'
    processors included)."""
    try:
        parsed = json.loads(definition)
    except ValueError:
        return _original_parse(definition)
    maps = dict(_maps(parsed))
    if not maps:
        return _original_parse(definition)
    batchers = {name: state.pop("ItemBatcher") for name, state in maps.items() if "ItemBatcher" in state}
    # moto's grammar reads ToleratedFailurePercentage only as a decimal (40.0), not as the integer AWS takes too.
    whole = [state for state in maps.values() if isinstance(state.get("ToleratedFailurePercentage"), int)]
    for state in whole:
        state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
    program, context = _original_parse(json.dumps(parsed) if batchers or whole else definition)
    for component in _components(program):
        if isinstance(component, StateMap) and component.name in maps:
            processor, state = component.iteration_component, maps[component.name]
            processor.offline_item_batcher = batchers.get(component.name)
            processor.offline_thresholds = tuple(any(f"{field}{path}" in state for path in ("", "Path"))
                                                 for field in ("ToleratedFailureCount", "ToleratedFailurePercentage"))
    return program, context


def _components(root: Any) -> Iterator[Any]:
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen or not hasattr(node, "__dict__"):
            continue
        seen.add(id(node))
        yield node
        for value in vars(node).values():
            stack.extend(value if isinstance(value, (list, tuple)) else
                         value.values() if isinstance(value, dict) else [value])


def _batch_input(batch_input: dict, env) -> dict:
    """A BatchInput with its paths read: `$.` from the Map state's input, `$$.` from the context object."""
    resolved = {}
    for key, value in batch_input.items():
        if key.endswith(".$"):
            source = (env.states.context_object.context_object_data if value.startswith("$$")
                      else env.states.get_input())
            resolved[key[:-2]] = extract_json(value[1:] if value.startswith("$$") else value, source)
        else:
            resolved[key] = value
    return resolved


def _selected(items: list, selector, env) -> list:
    """Each item through the Map's ItemSelector, as a child execution's input would be: `$` the Map state's input,
    `$$.Map.Item` the item and its index."""
    state_input, chosen = env.stack[-1], []
    for index, item in enumerate(items):
        frame = env.open_frame()
        try:
            frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
            frame.states.reset(input_value=state_input)
            frame.stack.append(state_input)
            selector.eval(frame)
            chosen.append(frame.stack.pop())
        finally:
            env.close_frame(frame)
    return chosen


def _map_run(self, env, eval_input) -> None:
    batcher = getattr(self, "offline_item_batcher", None)
    items = env.stack[-1]
    jobs = [[item] for item in items]  # each child execution's items
    if batcher is not None:
        items = env.stack.pop()
        # The selector applies to each item, then the batcher groups them (the developer guide's "Map state input
        # and output fields": ItemReader, ItemsPath, ItemSelector, ItemBatcher, ResultWriter, in that order); moto
        # would apply it to each batch, so it is applied here and taken from the child executions.
        selector = eval_input.item_selector or eval_input.parameters
        if selector is not None:
            items = _selected(items, selector, env)
            eval_input.item_selector = eval_input.parameters = None
        if "BatchInput" in batcher:
            batcher = {**batcher, "BatchInput": _batch_input(batcher["BatchInput"], env)}
        try:
            batched = batches(items, batcher)
        except ValueError as error:
            raise _map_failure(env, StatesErrorNameType.StatesItemReaderFailed, f"ItemBatcher: {error}") from None
        env.stack.append(batched)
        jobs = [batch["Items"] for batch in batched]
    _original_map_run(self, env, eval_input)
    # The thresholds count items (the Map state page: failed items over all items); a failed child execution fails
    # every item of its batch. moto counts child executions, and a failed one's result is null.
    record = eval_input.map_run_record
    failed_children = record.item_counter.failed.get() + record.item_counter.timed_out.get()
    nulls = [job for job, output in zip(jobs, env.stack[-1]) if output is None]
    failed = (sum(map(len, nulls)) if len(nulls) == failed_children  # which children failed is known
              else failed_children * max(map(len, jobs), default=1))  # else as if each failed one were the fullest
    total = len(items)
    count_set, percentage_set = getattr(self, "offline_thresholds", (False, False))
    exceeded = (failed > 0 if not (count_set or percentage_set) else
                (count_set and failed > record.tolerated_failure_count)
                or (percentage_set and total and 100 * failed / total > record.tolerated_failure_percentage))
    if exceeded:
        count = record.tolerated_failure_count if count_set else "unset"
        percentage = record.tolerated_failure_percentage if percentage_set else "unset"
        raise _map_failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                           f"{failed} of {total} items failed, over what the Map tolerates (ToleratedFailureCount "
                           f"{count}, ToleratedFailurePercentage {percentage})")


def install() -> None:
    with _installed:
        ResourceEvalS3._handle_list_objects_v2 = staticmethod(_list_every_object)
        ResourceEvalS3.eval_resource = _as_execution_role
        input_type.InputType.__init__ = _input_type_init
        item_reader_decl.resource_output_transformer_for = _transformer_for
        AmazonStateLanguageParser.parse = staticmethod(_parse)
        DistributedIterationComponent._map_run = _map_run
