"""One copy of the kit: every registered workflow's stack, named and scoped for one stage (dev, prod, ...)."""
from __future__ import annotations

import dataclasses
from typing import Collection

from aws_cdk import Stage
from constructs import Construct

from stacks.settings.config import ConfigError, KitConfig
from stacks.app.delivery_check import DeliveryCheckStack, check_role_name
from stacks.app.results_site import ResultsSiteStack, site_environment
from stacks.workflows.workflow_stack import WORKFLOWS


def build_workflow_stacks(scope: Construct, config: KitConfig, workflows: Collection[str] | None = None) -> dict:
    """Every registered workflow's stack under `scope` (an app or a stage), by stack id; or only `workflows`."""
    slugs = {cls.spec.slug for cls in WORKFLOWS.values()}
    if config.stage in slugs:  # <prefix>-<slug>-* of the unstaged copy would match <prefix>-<stage>-... names
        raise ConfigError(f"invalid setting stage={config.stage!r}: expected a name other than a workflow slug "
                          f"({', '.join(sorted(slugs))})")
    if workflows is not None and set(workflows) - set(WORKFLOWS):
        raise ValueError(f"no such workflows: {sorted(set(workflows) - set(WORKFLOWS))}")
    stacks = {stack_id: cls(scope, stack_id, config=config) for stack_id, cls in WORKFLOWS.items()
              if workflows is None or stack_id in workflows}
    if config.results_site:  # it reads what the loop's three stacks share, so it deploys after them
        site = ResultsSiteStack(scope, "ResultsSite", config=config, env=site_environment(config))
        for stack_id in ("BuildAndRegister", "DeployApproved", "MonitorEndpoint"):
            if stack_id in stacks:
                site.node.add_dependency(stacks[stack_id])
        stacks["ResultsSite"] = site
    return stacks


class KitStage(Stage):
    """All workflow stacks for one stage; CloudFormation names them <stage>-<StackId>, the CLI <stage>/<StackId>.
    With `checked_by` (a role ARN), also the role that role assumes to check the stage (DeliveryCheck)."""

    def __init__(self, scope: Construct, stage: str, *, config: KitConfig, checked_by: str | None = None,
                 **kwargs) -> None:
        super().__init__(scope, stage, **kwargs)
        self.config = dataclasses.replace(config, stage=stage)
        self.stacks = build_workflow_stacks(self, self.config)
        if checked_by:
            self.check = DeliveryCheckStack(self, "DeliveryCheck", workflows=self.stacks, trusted_role_arn=checked_by,
                                            role_name=check_role_name(config.name_prefix, stage))
