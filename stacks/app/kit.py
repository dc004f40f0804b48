"""Builds the kit's CDK app: configuration, one stack per workflow, cdk-nag rule packs."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Collection, Mapping

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, ServerlessChecks

from stacks import workflows
from stacks.settings.config import KitConfig, cdk_json_context  # noqa: F401 (the app's context, for its users)
from stacks.app.stage import KitStage, build_workflow_stacks
from stacks.workflows.workflow_stack import WORKFLOWS, workflow_settings

# Every module of stacks/workflows registers its stack (@register); each deploys and destroys on its own.
for module in sorted(m.name for m in pkgutil.iter_modules(workflows.__path__)):
    importlib.import_module(f"{workflows.__name__}.{module}")


# cdk-nag rule packs applied to every stack; each finding must be fixed or acknowledged where it occurs.
NAG_PACKS = (AwsSolutionsChecks, NIST80053R5Checks, HIPAASecurityChecks, ServerlessChecks)


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None,
              workflows: Collection[str] | None = None) -> App:
    """The app: every workflow stack (with `stage`, inside that stage), or, with the pipeline settings, the
    pipeline that delivers them to dev and prod. `context` adds to cdk.json's (tests); the CLI passes its own.
    `workflows` (stack ids) builds only those, for tests that need no others; the CLI always builds them all."""
    app = App(context=dict(context or {}), outdir=outdir, analytics_reporting=False)
    config = KitConfig.from_context(app.node.get_all_context(), workflow_settings())
    if config.pipeline:
        from stacks.app.pipeline import PipelineStack, stage_environment

        PipelineStack(app, "Pipeline", config=config, env=stage_environment(config, "pipeline"))
    elif config.stage:
        KitStage(app, config.stage, config=config)
    else:
        build_workflow_stacks(app, config, workflows)
    Validations.of(app).add_plugins(*(pack(app) for pack in NAG_PACKS))
    return app
