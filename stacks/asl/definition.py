"""Amazon States Language files: load, substitute `${Name}` placeholders, walk Task states."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")
INTEGRATION_RESOURCE = re.compile(r"^arn:[^:]+:states:::(?P<integration>.+)$")


class WorkflowDefinitionError(ValueError):
    """An ASL file cannot be turned into a deployable state machine; the message says how to fix it."""


def load_definition(path: Path) -> dict[str, Any]:
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise WorkflowDefinitionError(f"{path.name}: cannot read the definition ({error})") from None
    null = next(_nulls(definition, ""), None)
    if null:
        raise WorkflowDefinitionError(
            f"{path.name}: {null} is null, which CDK drops when it writes the definition (a \"ResultPath\": null "
            "would become the default $, replacing the state's input); use a path such as \"$.response\"")
    return definition


def _nulls(node: Any, path: str) -> Iterator[str]:
    if node is None:
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _nulls(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _nulls(item, f"{path}[{index}]")


def placeholders(node: Any) -> set[str]:
    """Every `${Name}` used anywhere in the definition."""
    if isinstance(node, dict):
        return set().union(*map(placeholders, node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*map(placeholders, node)) if node else set()
    return set(PLACEHOLDER.findall(node)) if isinstance(node, str) else set()


Value = str | int | list | dict | None


def substitute(node: Any, values: Mapping[str, Value], *, source: str) -> Any:
    """Replace placeholders with values. A string that is exactly one placeholder of a whole number, a list
    or an object becomes that value, so numeric fields (timeouts) and shared fragments (retry policies) can
    be filled in too; a field whose value is exactly a placeholder set to None is left out (an optional
    setting, such as a KMS key)."""
    missing = sorted(placeholders(node) - values.keys())
    if missing:
        raise WorkflowDefinitionError(
            f"{source}: no value for placeholder(s) {', '.join(missing)}; known: {', '.join(sorted(values))}")
    return _replace(node, values, source)


def _replace(node: Any, values: Mapping[str, Value], source: str) -> Any:
    if isinstance(node, dict):
        return {key: _replace(value, values, source) for key, value in node.items() if not _omitted(value, values)}
    if isinstance(node, list):
        return [_replace(item, values, source) for item in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node)
    if whole and values[whole.group(1)] is None:
        raise WorkflowDefinitionError(f"{source}: optional placeholder {node} may only be a field's whole value")
    if whole and isinstance(values[whole.group(1)], (int, list, dict)):
        return _replace(copy.deepcopy(values[whole.group(1)]), values, source)  # fragments may hold placeholders

    def text(match: re.Match) -> str:
        value = values[match.group(1)]
        if not isinstance(value, str):
            raise WorkflowDefinitionError(f"{source}: placeholder {match.group(0)} must stand alone in its string")
        return value
    return PLACEHOLDER.sub(text, node)


def expand(node: Any, fragments: Mapping[str, Value]) -> Any:
    """Replace each value that is exactly a `${Name}` of `fragments` with (a copy of) that fragment, itself
    expanded; every other placeholder stays for `substitute`. Shared ASL goes in this way."""
    if isinstance(node, dict):
        return {key: expand(value, fragments) for key, value in node.items()}
    if isinstance(node, list):
        return [expand(item, fragments) for item in node]
    whole = PLACEHOLDER.fullmatch(node) if isinstance(node, str) else None
    if whole and whole.group(1) in fragments:
        return expand(copy.deepcopy(fragments[whole.group(1)]), fragments)
    return node


def all_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, state) for every state, including those inside Parallel branches and Map processors."""
    for name, state in definition.get("States", {}).items():
        if not isinstance(state, dict):
            continue  # a shared state, "${<Name>State}": none of them is a Task or a Map
        yield name, state
        for branch in state.get("Branches", []):
            yield from all_states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from all_states(state[key])


def task_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, state) for every Task state, including those inside Parallel branches and Map processors."""
    return ((name, state) for name, state in all_states(definition) if state.get("Type") == "Task")


def item_readers(definition: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(Map state name, its ItemReader) for every Map that reads its items from S3 (Distributed mode): the
    reader calls its Resource with the state machine's role, like a Task."""
    return ((name, state["ItemReader"]) for name, state in all_states(definition)
            if state.get("Type") == "Map" and isinstance(state.get("ItemReader"), dict))


def distributed_maps(definition: Mapping[str, Any]) -> list[str]:
    """Names of the Map states in Distributed mode, which run each item as a child execution of the state machine."""
    return [name for name, state in all_states(definition) if state.get("Type") == "Map"
            and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"]


def integration_of(state_name: str, state: Mapping[str, Any], *, source: str) -> str:
    """The service integration a Task calls, e.g. `sagemaker:createTrainingJob.sync`."""
    match = INTEGRATION_RESOURCE.match(str(state.get("Resource", "")))
    if not match:
        raise WorkflowDefinitionError(
            f"{source}: state {state_name!r} has Resource {state.get('Resource')!r}; "
            "expected a service integration arn:${Partition}:states:::<service>:<action>")
    return match.group("integration")


def _omitted(value: Any, values: Mapping[str, Value]) -> bool:
    whole = PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
    return bool(whole) and whole.group(1) in values and values[whole.group(1)] is None


JOB_STARTS = re.compile(r"^sagemaker:create\w+Job\.sync$")  # a job that provisions instances before it works


def job_startups_in_a_row(definition: Mapping[str, Any]) -> int:
    """The most SageMaker jobs a run waits for one after another (each start-up is minutes of provisioning)."""
    return longest_chain(definition, lambda name, state: int(state.get("Type") == "Task" and bool(
        (match := INTEGRATION_RESOURCE.match(str(state.get("Resource", "")))) and JOB_STARTS.match(match.group(
            "integration")))))


def longest_chain(definition: Mapping[str, Any], weight: Callable[[str, Mapping[str, Any]], int]) -> int:
    """The heaviest chain of states a run goes through one after another, each state weighing `weight(name,
    state)`: from StartAt along Next, Choices and Default (alternatives count as the heavier one; a Parallel state
    as its heaviest branch; catches lead to failure handling, not onward). A state met again on its own path is a
    loop and counts once."""
    states = definition.get("States", {})

    def longest(name: str | None, seen: frozenset) -> int:
        state = states.get(name) if name else None
        if not isinstance(state, dict) or name in seen:
            return 0
        seen = seen | {name}
        here = weight(name, state)
        if state.get("Type") == "Parallel":
            here = max((longest_chain(branch, weight) for branch in state.get("Branches", [])), default=0)
        following = [state.get("Next"), state.get("Default")] + [c.get("Next") for c in state.get("Choices", [])]
        return here + max((longest(after, seen) for after in following if after), default=0)

    return longest(definition.get("StartAt"), frozenset())
