"""`make preflight`: before a first deployment, what the synthesized app relies on AWS to do, and where each fact is
stated; fails on a Task field Step Functions would refuse when it creates the state machine.

    python -m operations.preflight [--assembly cdk.out] [--stage NAME]

Reads the cloud assembly `make synth` wrote (no AWS credentials): every state machine's definition as
CloudFormation would create it, and the rows of stacks/aws_behaviours.py its workflows rely on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from offline.sources.assembly import load_workflows
from stacks.aws_behaviours import BEHAVIOURS
from stacks.asl.definition import WorkflowDefinitionError, integration_of, task_states
from stacks.asl.task_checks import check_parameters

ROOT = Path(__file__).resolve().parent.parent


def refused_fields(workflows: dict) -> list[str]:
    """One line per Task whose Parameters hold a field outside its optimized integration's documented list."""
    found = []
    for stack, workflow in workflows.items():
        for name, state in task_states(json.loads(workflow.definition)):
            try:
                check_parameters(state, integration_of(name, state, source=stack), f"{stack}: state {name!r}")
            except WorkflowDefinitionError as error:
                found.append(str(error))
    return found


def report(workflows: dict) -> list[str]:
    """The behaviours the app's workflows rely on, unverified first: status, row, what, source, and what then."""
    lines = []
    rows = [(key, row) for key, row in BEHAVIOURS.items() if set(row.relied_on_by) & set(workflows)]
    for key, row in sorted(rows, key=lambda item: (item[1].status == "stated", item[1].status, item[0])):
        used = ", ".join(sorted(set(row.relied_on_by) & set(workflows)))
        lines.append(f"[{row.status}] {key} ({used}): {row.what}")
        lines.append(f"    source: {row.source}")
        if row.alternatives:
            lines.append(f"    if AWS does otherwise ({', '.join(row.alternatives)}): the suite rehearses it "
                         "offline; the run ends in a named failure that notifies (tests/test_aws_behaviours.py)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out", help="the cloud assembly folder")
    parser.add_argument("--stage", help="the stage whose copy to check (as make synth STAGE=...)")
    args = parser.parse_args(argv)
    if not (args.assembly / "manifest.json").is_file():
        parser.error(f"{args.assembly} holds no cloud assembly; run make synth first")
    workflows = load_workflows(args.assembly, args.stage)
    lines = report(workflows)
    print(f"{len(workflows)} workflows rely on {sum(1 for line in lines if line.startswith('['))} AWS behaviours "
          "that no service model states (stacks/aws_behaviours.py):")
    print("\n".join(lines))
    refused = refused_fields(workflows)
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    if refused:
        return 1
    print("every optimized integration's Parameters are within Step Functions' documented lists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
