"""`make run`: synthesize the app, then run its workflows offline and report how they did.

    python -m offline.run [--workflow NAME] [--input JSON] [--name NAME] [--keep-s3 DIR] [--summary PATH]
                          [--log PATH] [--assembly DIR] [--no-synth] [--stage NAME] [--cdk-args "-c k=v ..."]
                          [--context KEY=VALUE ...] [--dataset FILE] [--approve] [--roll-back]

Workflows a model approval starts (DeployApproved) run only with --approve: the runner approves each version
the runs registered, as a person would, and the approval event starts them; then, when MonitorEndpoint is part
of the app, the loop closes (offline/cli/monitor_loop.py): traffic, a drifted batch, the monitor, the alarms. With
--roll-back, a second version is then registered and deployed, and the roll back docs/deploy-approved.md shows is
rehearsed: DeployApproved started by hand with the first version's ARN. Last, CloudWatch evaluates the alarms once,
as the runs ended: a failed or timed-out run's alarm notifies its stack's topic.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from offline.cloud.account import LocalCloud
from offline.cloud.integrations import UnsupportedIntegration
from offline.cli.console import Progress, log_to, print_summary, reason
from offline.cli.evaluate import evaluate
from offline.cli.site import PORT as SITE_PORT, SITE_FILE, keep as keep_for_site
from stacks.settings.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SUMMARY = ROOT / ".offline" / "summary.json"
DEFAULT_S3 = ROOT / ".offline" / "s3"  # the last run's local buckets, so the paths it printed resolve
DEFAULT_LOG = ROOT / ".offline" / "run.log"


def synthesize(outdir: Path, stage: str | None, settings: dict[str, str]) -> float:
    from stacks.app.kit import build_app, cdk_json_context

    start = time.perf_counter()
    build_app({**cdk_json_context(), **settings, **({"stage": stage} if stage else {})}, outdir=str(outdir)).synth()
    return time.perf_counter() - start


def context_settings(cdk_args: str) -> dict[str, str]:
    """The settings of CDK_ARGS (`-c key=value`, `--context key=value`), which reach this synthesis as they reach
    `cdk synth`; anything else means nothing offline and is refused."""
    words, settings = shlex.split(cdk_args), {}
    while words:
        flag = words.pop(0)
        if flag in ("-c", "--context") and words and "=" in words[0]:
            key, value = words.pop(0).split("=", 1)
            settings[key] = value
        else:
            raise ValueError(f"CDK_ARGS: make run takes only settings (-c key=value); {flag!r} means nothing "
                             "offline")
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the kit's workflows offline, end to end.")
    parser.add_argument("--workflow", action="append", help="stack name to run (default: every workflow)")
    parser.add_argument("--input", default="{}", help="execution input as JSON, e.g. '{\"rows\": 2000, \"seed\": 7}'")
    parser.add_argument("--name", help="execution name (default: generated); with several workflows, a suffix")
    parser.add_argument("--keep-s3", type=Path, default=DEFAULT_S3,
                        help="where the local S3 buckets of this run are kept afterwards, as <bucket>/<key>")
    parser.add_argument("--summary", type=Path, default=DEFAULT_SUMMARY, help="where to write the JSON summary")
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG, help="where full causes and internal logs go")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out", help="cloud assembly folder")
    parser.add_argument("--no-synth", action="store_true", help="run the assembly already in --assembly")
    parser.add_argument("--stage", help="synthesize and run this stage's copy of the kit (as -c stage=...)")
    parser.add_argument("--cdk-args", default="", help="settings for the synthesis, as CDK_ARGS gives them to "
                                                        "cdk synth: -c key=value ...")
    parser.add_argument("--dataset", type=Path, help="a local CSV file to train on: put under datasets/ in the "
                                                     "data bucket of the workflows that take a dataset_uri, and "
                                                     "named in their input")
    parser.add_argument("--approve", action="store_true", help="approve each model version the runs register, "
                                                               "which starts the workflows that deploy approved models")
    parser.add_argument("--roll-back", action="store_true", help="with --approve: register and deploy a second "
                                                                 "version, then start DeployApproved by hand with "
                                                                 "the first version's ARN, as docs/deploy-approved.md "
                                                                 "rolls back")
    parser.add_argument("--context", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for this synthesis, as cdk -c KEY=VALUE (e.g. retrain_on_drift=true)")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.context):
        parser.error("--context takes KEY=VALUE, e.g. --context retrain_on_drift=true")
    try:
        execution_input = json.loads(args.input)
        settings = {**context_settings(args.cdk_args), **dict(item.split("=", 1) for item in args.context)}
    except json.JSONDecodeError as error:
        parser.error(f"--input is not JSON: {error}")
    except ValueError as error:
        parser.error(str(error))
    if args.roll_back and not args.approve:
        parser.error("--roll-back rolls back an approved deployment: add --approve (make run does)")
    if args.dataset and not args.dataset.is_file():
        parser.error(f"--dataset {args.dataset} is not a file")

    log_to(args.log)
    print(f"full causes and internal logs: {args.log}", flush=True)
    if not args.no_synth:
        try:
            seconds = synthesize(args.assembly, args.stage, settings)
        except ConfigError as error:  # a bad setting: the one line synthesis gives
            parser.error(str(error))
        print(f"synthesized the app into {args.assembly} in {seconds:.1f} s", flush=True)
    elif settings:
        parser.error("CDK_ARGS settings need a synthesis; drop --no-synth")
    try:
        local = LocalCloud(args.assembly, stage=args.stage)
    except ValueError as error:
        parser.error(str(error))
    with local as cloud:
        on_approval = {stack for stack, w in cloud.workflows.items() if w.starts_on_model_approval}
        takes_dataset = [stack for stack, w in cloud.workflows.items() if w.takes_dataset]
        default = takes_dataset if args.dataset else [s for s in cloud.workflows if s not in on_approval]
        stacks = args.workflow or default
        unknown = sorted(set(stacks) - set(cloud.workflows))
        if unknown:
            parser.error(f"unknown workflow {unknown[0]}; choose from {', '.join(cloud.workflows)}")
        for stack in sorted(on_approval & set(stacks)):  # offline, no version exists until a run registers one
            parser.error(f"{stack} starts when a model version is approved: run the workflow that registers one "
                         "with --approve (make run does), e.g. --workflow BuildAndRegister --approve")
        if args.dataset:
            for stack in sorted(set(stacks) - set(takes_dataset)):
                parser.error(f"{stack} takes no data set (no dataset_uri); --dataset is for "
                             f"{', '.join(takes_dataset) or 'no workflow of this app'}")
        for stack in stacks:  # before any run starts: what this account cannot run as AWS would, in one line
            try:
                cloud.check(stack)
            except UnsupportedIntegration as error:
                parser.error(str(error))
        names = {stack: (f"{args.name}-{stack}" if args.name and len(stacks) > 1 else args.name) for stack in stacks}
        inputs = {stack: dict(execution_input) for stack in stacks}
        if args.dataset:  # as a user would: upload the file, then name it in the input
            for stack in stacks:
                key = f"datasets/{args.dataset.stem}/{args.dataset.name}"
                cloud.s3.put_object(Bucket=cloud.workflows[stack].data_bucket, Key=key,
                                    Body=args.dataset.read_bytes())
                inputs[stack]["dataset_uri"] = f"s3://{cloud.workflows[stack].data_bucket}/{key}"
        arns = {cloud.start(stack, inputs[stack], names[stack]): stack for stack in stacks}
        progress = Progress(arns)
        ended = cloud.wait(list(arns), progress)
        loop = None
        if args.approve:  # as a person would in the registry; the approval event starts the deployments
            for arn in list(ended):
                registered = json.loads(ended[arn].get("output") or "{}").get("model_package_arn")
                if registered:
                    print(f"approving {registered}", flush=True)
                    for delivery in cloud.approve(registered):
                        started = delivery["result"]
                        arns[started] = next(s for s, w in cloud.workflows.items()
                                             if w.state_machine_arn == delivery["target"])
                        progress.labels[started], progress.states[started] = arns[started], 0
            ended.update(cloud.wait([arn for arn in arns if arn not in ended], progress))
            loop = _close_the_loop(cloud, arns, ended)
        rolled_back = _roll_back(cloud, arns, ended, inputs) if args.roll_back else None
        run_alarms = cloud.alarms.evaluate(datetime.datetime.now(datetime.timezone.utc))
        for change in run_alarms:
            told = ", ".join(a["action"] if a["delivered"] else f"{a['action']} FAILED: {a['error']}"
                             for a in change["actions"]) or "no action"
            print(f"alarm {change['alarm']}: {change['previous']} -> {change['state']} ({told})", flush=True)
        summary = {"monitoring": loop} if loop else {}
        if rolled_back:
            summary["roll_back"] = rolled_back
        for arn, stack in arns.items():
            described = ended[arn]
            result = {
                "execution": arn, "status": described["status"],
                "duration_seconds": round((described["stopDate"] - described["startDate"]).total_seconds(), 2),
                "states_executed": progress.states[arn],
            }
            if described["status"] == "SUCCEEDED":
                output = json.loads(described["output"])
                result.update(output=output)
                if "predictions" in output:  # a batch transform ran: score it against the true labels
                    result.update(quality=evaluate(cloud, output))
            else:
                result.update(error=described.get("error"), reason=reason(described.get("cause")),
                              cause=described.get("cause"))
            summary[stack] = result
        approvals = {arn: cloud.sagemaker.model_packages[arn]["ModelApprovalStatus"]
                     for arn in cloud.sagemaker.model_packages}
        notifications = cloud.notifications()
        authorizations, refused = len(cloud.iam.decisions), cloud.iam.denials()
        shutil.rmtree(args.keep_s3, ignore_errors=True)  # the folder holds the last run's buckets only
        kept = cloud.save_s3(args.keep_s3)
        site = keep_for_site(cloud, args.summary.parent / SITE_FILE, args.keep_s3)
        print()
        print_summary(summary, approvals, notifications, cloud.read,
                      lambda uri: str(args.keep_s3 / uri.removeprefix("s3://")))

    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps({"local_s3": str(args.keep_s3), **summary}, indent=2) + "\n")
    print(f"IAM: {authorizations} authorizations against the synthesized policies of the calling roles, "
          f"{len(refused)} refused")
    for denial in dict.fromkeys(refused):
        print(f"  refused: {denial.caller} {denial.action} on {denial.resource}")
    print(f"the {kept} objects of this run's local S3 are in {args.keep_s3}/ (s3://<bucket>/<key> is "
          f"{args.keep_s3}/<bucket>/<key>)")
    print(f"summary written to {args.summary}; full causes and internal logs in {args.log}")
    if site:
        print(f"results site: make site serves this run's results at http://localhost:{SITE_PORT}")
    return 0 if all(r["status"] == "SUCCEEDED" for s, r in summary.items() if s not in ("monitoring", "roll_back")) \
        and (not rolled_back or rolled_back["status"] == "SUCCEEDED") else 1


def _roll_back(cloud: LocalCloud, arns: dict, ended: dict, inputs: dict) -> dict:
    """Register a second version and deploy it (approved, as before); then roll back as docs/deploy-approved.md
    says: start DeployApproved by hand with the first version's ARN. Returns what the roll back did; its runs are
    shown as they go and summarized apart from the workflows'."""
    build, deploy = "BuildAndRegister", "DeployApproved"
    first = next((json.loads(ended[arn].get("output") or "{}").get("model_package_arn") for arn, stack in arns.items()
                  if stack == build and ended[arn]["status"] == "SUCCEEDED"), None)
    if not first or deploy not in cloud.workflows:
        return {"status": "NOT_RUN", "reason": "no version of BuildAndRegister was registered and deployed"}
    progress = Progress({})

    def run(stack: str, execution_input: dict, name: str) -> dict:
        arn = cloud.start(stack, execution_input, name)
        progress.labels[arn], progress.states[arn] = f"{stack} ({name})", 0
        return cloud.wait([arn], progress)[arn]

    second = run(build, inputs.get(build, {}), f"roll-back-v2-{time.strftime('%H%M%S')}")
    version = json.loads(second.get("output") or "{}").get("model_package_arn")
    if not version:
        return {"status": second["status"], "reason": f"the second version was not registered: {second.get('cause')}"}
    print(f"approving {version}", flush=True)
    for delivery in cloud.approve(version):
        progress.labels[delivery["result"]], progress.states[delivery["result"]] = f"{deploy} (second version)", 0
        cloud.wait([delivery["result"]], progress)
    print(f"rolling back: starting {deploy} with {first}", flush=True)
    rolled = run(deploy, {"model_package_arn": first}, f"roll-back-to-v1-{time.strftime('%H%M%S')}")
    return {"status": rolled["status"], "first_version": first, "second_version": version,
            "execution": rolled["executionArn"], **({"reason": reason(rolled.get("cause"))}
                                                    if rolled["status"] != "SUCCEEDED" else {})}


def _close_the_loop(cloud: LocalCloud, arns: dict, ended: dict) -> dict | None:
    """After a successful deployment, with MonitorEndpoint in the app: traffic, drift, alarms, retraining."""
    from offline.cli.monitor_loop import MONITOR, close_the_loop

    outputs = {arns[arn]: json.loads(d.get("output") or "{}") for arn, d in ended.items() if d["status"] == "SUCCEEDED"}
    if MONITOR not in cloud.workflows or "endpoint" not in outputs.get("DeployApproved", {}):
        return None

    progress = Progress({})  # the loop's runs, shown as they go, summarized apart from the workflows'

    def wait(started: list[str]) -> dict:
        for arn in started:
            name = next(s for s, w in cloud.workflows.items() if arn.split(":")[6] == w.state_machine_name)
            progress.labels[arn], progress.states[arn] = name, 0
        return cloud.wait(started, progress)

    return close_the_loop(cloud, outputs["BuildAndRegister"], outputs["DeployApproved"], wait,
                          ROOT / ".offline")


if __name__ == "__main__":
    sys.exit(main())
