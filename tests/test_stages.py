"""Two copies of the kit (stages dev and prod) in one account and region: no physical name in common, and no
IAM permission of one that reaches anything of the other."""
from __future__ import annotations

import fnmatch
import json
import re

import pytest

from stacks.settings.config import ConfigError, KitConfig
from stacks.app.kit import build_app, cdk_json_context
from tests.cfn import of_type

ACCOUNT, REGION = "123456789012", "eu-west-1"


def render(node, stack: str, parameters: dict[str, str] | None = None) -> str:
    """A CloudFormation value as the deployed string: pseudo parameters filled in, a reference to a resource
    as that stack's own resource (another stack's resource is another resource), a template parameter as
    what `parameters` says it holds (another stack's value shared through SSM)."""
    parameters = parameters or {}
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return ",".join(render(item, stack, parameters) for item in node)
    if "Ref" in node:
        return {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                "AWS::URLSuffix": "amazonaws.com", "AWS::StackId": f"stack/{stack}/uuid", **parameters}.get(
            node["Ref"], f"<{stack}:{node['Ref']}>")
    if "Fn::GetAtt" in node:
        return f"<{stack}:{'.'.join(node['Fn::GetAtt'])}>"
    if "Fn::Join" in node:
        return node["Fn::Join"][0].join(render(part, stack, parameters) for part in node["Fn::Join"][1])
    if "Fn::Select" in node or "Fn::Split" in node or "Fn::FindInMap" in node:
        return f"<{stack}:{json.dumps(node, sort_keys=True)}>"
    return json.dumps(node, sort_keys=True)


def shared_values(templates: dict) -> dict[str, dict[str, str]]:
    """Per stack, what each of its SSM-typed template parameters holds: the value the copy's stack that
    creates that SSM parameter puts in it (a parameter no stack of the copy creates stays unresolved)."""
    ssm = {render(r["Properties"]["Name"], stack): render(r["Properties"]["Value"], stack)
           for stack, template in templates.items()
           for r in of_type(template, "AWS::SSM::Parameter").values()}
    return {stack: {name: ssm.get(p["Default"], f"<ssm:{p['Default']}>")
                    for name, p in template.get("Parameters", {}).items()
                    if p["Type"].startswith("AWS::SSM::Parameter::Value") and name != "BootstrapVersion"}
            for stack, template in templates.items()}


def physical_names(templates: dict) -> set[str]:
    """Every name a copy gives AWS: stack names and each resource property that names the resource."""
    names, shared = set(templates), shared_values(templates)
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            for key, value in resource.get("Properties", {}).items():
                # PolicyName is an inline policy's name within its own role, DisplayName a topic's label,
                # MetricName the CloudWatch metric an alarm watches (SageMaker's, the same in every account).
                if (key.endswith("Name") or key == "Name") and key not in ("PolicyName", "DestinationBucketName",
                                                                           "DisplayName", "MetricName"):
                    names.add(render(value, stack, shared[stack]))
    return names


def iam_resources(templates: dict) -> set[str]:
    """Every resource pattern any IAM statement of a copy names."""
    found, shared = set(), shared_values(templates)
    for stack, template in templates.items():
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy in of_type(template, kind).values():
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    resources = statement["Resource"]
                    for resource in resources if isinstance(resources, list) else [resources]:
                        found.add(render(resource, stack, shared[stack]))
    return found


@pytest.fixture(scope="module")
def copies(synthesized):
    return synthesized["stage-dev"].templates, synthesized["stage-prod"].templates


def test_each_stage_holds_every_workflow_under_its_own_stack_names(copies):
    dev, prod = copies
    assert sorted(dev) == [f"dev-{s}" for s in sorted(s.removeprefix("prod-") for s in prod)]


def test_no_physical_name_is_shared(copies):
    dev, prod = (physical_names(templates) for templates in copies)
    assert {name for name in dev if "mlkit-dev-" in name}  # the stage is in the names
    assert dev & prod == set()


@pytest.mark.parametrize("direction", ["dev->prod", "prod->dev"])
def test_no_iam_pattern_of_one_stage_matches_anything_of_the_other(copies, direction):
    mine, theirs = copies if direction == "dev->prod" else copies[::-1]
    # Shared by AWS's design, one per account: "*" (actions with no resource scope), Step Functions' managed
    # rules for .sync tasks, and SageMaker's job log groups, where the group-level actions (create the group,
    # list its streams) cannot name a stream; writing is scoped to the stage's own job streams, and no role
    # may read log events. And CDK's bootstrap assets bucket, content-addressed: a stage reads the one object
    # whose hash its definition names, the same script in every stage. And the log streams of Model Monitor's
    # jobs, which SageMaker names model-monitoring-<time>-<id> itself, with no part a stage could choose.
    shared = re.compile(r"^\*$|:rule/StepFunctionsGetEventsFor|:log-group:/aws/sagemaker/\w+:\*$|cdk-\w+-assets-"
                        r"|:log-group:/aws/sagemaker/ProcessingJobs:log-stream:model-monitoring-\*$")
    patterns = {p for p in iam_resources(mine) if not shared.search(p)}
    targets = {t.replace("*", "x") for t in iam_resources(theirs) | physical_names(theirs)}
    for pattern in patterns:
        matched = sorted(t for t in targets if fnmatch.fnmatchcase(t, pattern))
        assert matched == [], (pattern, matched[:3])


def test_sagemaker_scopes_carry_the_stage(copies):
    for stack, template in copies[0].items():
        sagemaker = {r for r in iam_resources({stack: template}) if ":sagemaker:" in r}
        # <prefix>-* of the stage's own workflow, or a name of it (an endpoint, the build stack's model group).
        assert sagemaker and all(re.search(r"/mlkit-dev-[a-z]+-(\*|[a-z-]+(/\*)?)$", r) for r in sagemaker), stack


@pytest.mark.parametrize(("value", "allowed"), [
    ("Dev", "1 to 6 lowercase letters or digits"), ("staging1", "1 to 6"), ("1dev", "starting with a letter"),
    ("de-v", "1 to 6"),
])
def test_bad_stage_names_are_refused_in_one_line(value, allowed):
    with pytest.raises(ConfigError, match=rf"invalid setting stage='{value}': expected .*{allowed}"):
        KitConfig.from_context({"stage": value})


def test_a_stage_named_like_a_workflow_slug_is_refused(tmp_path):
    # <prefix>-tt-* (the copy without a stage) would match the names of a stage called "tt".
    with pytest.raises(ConfigError, match=r"invalid setting stage='tt': expected a name other than a workflow slug"):
        build_app({**cdk_json_context(), "stage": "tt"}, outdir=str(tmp_path))


def alarm_sources(templates: dict) -> set[str]:
    """The alarms (aws:SourceArn patterns) each key policy lets CloudWatch use its key for."""
    found = set()
    for stack, template in templates.items():
        for key in of_type(template, "AWS::KMS::Key").values():
            for statement in key["Properties"]["KeyPolicy"]["Statement"]:
                source = statement.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn")
                if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and source:
                    found |= {render(s, stack) for s in (source if isinstance(source, list) else [source])}
    return found


def test_the_copy_without_a_stage_reaches_no_staged_copys_alarms(synthesized):
    """The copy with no stage names its alarms `<prefix>-<slug>-...`, a staged one `<prefix>-<stage>-<slug>-...`
    (a stage may not be named like a slug): the unstaged copy's topic keys let CloudWatch in for its own alarms
    only, never for a staged copy's alarm of the same account."""
    unstaged, staged = synthesized["default"].templates, synthesized["stage-dev"].templates
    patterns = alarm_sources(unstaged)
    assert patterns and all(":alarm:mlkit-" in p and not p.endswith(":alarm:mlkit-*") for p in patterns)
    alarms = {f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{a['Properties']['AlarmName']}"
              for template in staged.values() for a in of_type(template, "AWS::CloudWatch::Alarm").values()}
    assert alarms and not [(p, a) for p in patterns for a in alarms if fnmatch.fnmatchcase(a, p)]
    own = {f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{a['Properties']['AlarmName']}"
           for template in unstaged.values() for a in of_type(template, "AWS::CloudWatch::Alarm").values()}
    assert all(any(fnmatch.fnmatchcase(a, p) for p in patterns) for a in own)  # each of its own still reaches


def test_the_docs_list_every_workflow_slug_a_stage_may_not_take():
    from stacks.app.kit import WORKFLOWS
    from tests.conftest import ROOT

    row = next(line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines()
               if line.startswith("| `stage` |"))
    listed = re.search(r"not a workflow slug \(([^)]*)\)", row).group(1)
    assert sorted(re.findall(r"`(\w+)`", listed)) == sorted(cls.spec.slug for cls in WORKFLOWS.values())
