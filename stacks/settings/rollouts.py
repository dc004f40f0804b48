"""How DeployApproved shifts traffic to a new version: SageMaker's blue/green deployment guardrails, one table.

`all_at_once` moves all traffic to the new fleet at once; `canary` first moves `rollout_step_percent` of the
endpoint's instances' traffic, bakes, then the rest; `linear` moves that share at a time, baking after each step.
`shadow` first serves the new version as a shadow variant beside production for `shadow_hours` and promotes it
only if it compares well (lambda/compare_shadow); an update without a shadow period is all at once.
Every step bakes for BAKE_SECONDS while the rollback alarms watch; an alarm that fires rolls the endpoint back to
the old fleet, which kept serving. SageMaker's rules, checked here so that synthesis refuses what UpdateEndpoint
would (AWS::SageMaker::Endpoint TrafficRoutingConfig, CloudFormation reference): a canary is at most 50% of the
variant's instances; a linear step is 10-50% of them. Steps are given as whole instances (CapacitySize
INSTANCE_COUNT), so what shifts is never a rounding SageMaker does, and a step must be at least one instance:
canary and linear need two instances or more. The guardrails apply to every image the kit serves (their
exclusions are Marketplace containers and Inf1 instances: deployment-guardrails-exclusions.html).
"""
from __future__ import annotations

import math

from stacks.settings.config import ConfigError

ROLLOUTS = ("all_at_once", "canary", "linear", "shadow")
BAKE_SECONDS = 300  # each step's baking period (WaitIntervalInSeconds)
TERMINATION_WAIT_SECONDS = 120  # the old fleet stays up this long after the last step
CANARY_MAX_SHARE, LINEAR_SHARES = 0.5, (0.1, 0.5)


def _step(rollout: str, percent: int, instances: int) -> int | None:
    """Instances per step when SageMaker takes it, else None."""
    step = math.floor(instances * percent / 100)
    low, high = (1 / instances, CANARY_MAX_SHARE) if rollout == "canary" else LINEAR_SHARES
    return step if step >= 1 and low <= step / instances <= high else None


def step_instances(rollout: str, percent: int, instances: int) -> int:
    """The instances each step (the canary, or each linear step) moves. Refuses a step SageMaker would refuse, or
    one smaller than an instance, naming the instance count that works."""
    step = _step(rollout, percent, instances)
    if step is None:
        need = "at most 50%" if rollout == "canary" else "10% to 50%"
        enough = next(n for n in range(2, 1001) if _step(rollout, percent, n))
        raise ConfigError(
            f"invalid setting rollout={rollout}: rollout_step_percent={percent} of endpoint_instance_count="
            f"{instances} is {math.floor(instances * percent / 100)} instances, and SageMaker takes a {rollout} step "
            f"of {need} of the endpoint's instances, at least one: set endpoint_instance_count to {enough} or more, "
            "or rollout=all_at_once")
    return step


def traffic_routing(rollout: str, percent: int, instances: int) -> dict:
    """The BlueGreenUpdatePolicy's TrafficRoutingConfiguration."""
    if rollout in ("all_at_once", "shadow"):
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": BAKE_SECONDS}
    routing = {"Type": rollout.upper(), "WaitIntervalInSeconds": BAKE_SECONDS}
    size = {"Type": "INSTANCE_COUNT", "Value": step_instances(rollout, percent, instances)}
    return {**routing, "CanarySize" if rollout == "canary" else "LinearStepSize": size}
