"""Mermaid diagrams of the workflows, generated from their ASL files into the docs pages (`make diagrams`).

    python -m stacks.app.diagram          # print every registered workflow's diagram
    python -m stacks.app.diagram --write  # rewrite the diagram blocks of docs/*.md
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Mapping

from stacks.asl.definition import expand, load_definition
from stacks.asl.shared_asl import shared_asl

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- diagram:(?P<stack>\w+) -->\n)```mermaid\n.*?```\n", re.S)


def _node(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(state: Mapping[str, Any]) -> str:
    resource = state.get("Resource", "")
    return resource.split(":::", 1)[1] if ":::" in resource else state["Type"]


def mermaid(definition: Mapping[str, Any]) -> str:
    """A top-down flowchart: one node per state, an edge per transition, dotted edges for caught errors."""
    lines = ["flowchart TD", f"  start((start)) --> {_node(definition['StartAt'])}"]
    for name, state in definition["States"].items():
        node, kind = _node(name), state["Type"]
        shape = {"Choice": "{{{{{}}}}}", "Succeed": "([{}])", "Fail": "([{}])"}.get(kind, "[\"{}\"]")
        text = name if kind in ("Succeed", "Fail", "Choice") else f"{name}<br/><small>{_label(state)}</small>"
        if kind == "Fail":
            text = f"{name}: {state.get('Error') or state.get('ErrorPath', 'failed')}"
        lines.append(f"  {node}{shape.format(text)}")
        for choice in state.get("Choices", []):
            lines.append(f"  {node} -- {_condition(choice)} --> {_node(choice['Next'])}")
        if "Default" in state:
            lines.append(f"  {node} -- otherwise --> {_node(state['Default'])}")
        if "Next" in state:
            lines.append(f"  {node} --> {_node(state['Next'])}")
        for catcher in state.get("Catch", []):
            lines.append(f"  {node} -. {' / '.join(catcher['ErrorEquals'])} .-> {_node(catcher['Next'])}")
    return "\n".join(lines) + "\n"


def _condition(choice: Mapping[str, Any]) -> str:
    for combinator in ("And", "Or"):
        if combinator in choice:
            return f" {combinator.lower()} ".join(_condition(rule) for rule in choice[combinator])
    if "Not" in choice:
        return f"not {_condition(choice['Not'])}"
    variable = choice.get("Variable", "")
    operator = next((k for k in choice if k not in ("Variable", "Next")), "")
    value = choice.get(operator, "")
    value = "''" if value == "" else value  # an empty string compared, shown as one
    return f"{variable} {operator} {value}".strip().replace('"', "'")


def diagrams() -> dict[str, str]:
    """Stack id -> Mermaid source, for every registered workflow."""
    from stacks.app.kit import WORKFLOWS

    return {stack: mermaid(expand(load_definition(ROOT / "statemachines" / f"{cls.spec.definition}.asl.json"),
                                  {**shared_asl(f"{stack}Failed"), **cls.spec.fragments}))
            for stack, cls in WORKFLOWS.items()}


def doc_pages() -> list[Path]:
    """The docs pages a diagram block may sit in (the workflows' pages: docs/workflows.md and the loop's own)."""
    return sorted(DOCS.glob("*.md"))


def render_page(text: str, generated: Mapping[str, str]) -> str:
    """A docs page with each `<!-- diagram:<Stack> -->` block replaced by that workflow's diagram."""
    return BLOCK.sub(lambda m: f"{m.group(1)}```mermaid\n{generated[m['stack']]}```\n", text)


def main(argv: list[str]) -> int:
    generated = diagrams()
    if argv[1:] == ["--write"]:
        for page in doc_pages():
            text = page.read_text()
            if (rendered := render_page(text, generated)) != text:
                page.write_text(rendered)
        return 0
    for stack, source in generated.items():
        print(f"{stack}:\n{source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
