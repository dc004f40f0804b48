"""Lambda handler: is this the oldest running execution of its state machine? BuildAndRegister asks it for a run
that new data started, so uploads cannot stack up trainings: one build runs at a time per copy, and a run started
while an earlier one still runs ends without training (statemachines/build_and_register.asl.json).

It lists the state machine's RUNNING executions (every page) and compares start dates, ties broken by ARN, so two
runs started in the same instant agree on which one goes on. A run not listed yet (ListExecutions may lag a start)
counts as the newest.
"""
from __future__ import annotations

from typing import Any

import boto3


def handler(event: dict, context: Any, sfn=None) -> dict:
    machine, me = event.get("state_machine"), event.get("execution")
    if not (isinstance(machine, str) and isinstance(me, str)):
        raise ValueError(f"expected the state machine's and the execution's ARNs, got {event!r}")
    pages = (sfn or boto3.client("stepfunctions")).get_paginator("list_executions").paginate(
        stateMachineArn=machine, statusFilter="RUNNING")
    running = [e for page in pages for e in page["executions"]]
    oldest = min(running or [{"executionArn": me, "startDate": 0}], key=lambda e: (e["startDate"], e["executionArn"]))
    return {"oldest": oldest["executionArn"], "running": len(running), "first": oldest["executionArn"] == me}
