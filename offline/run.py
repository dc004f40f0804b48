"""`make run`: synthesize the app, then run its workflows offline and report how they did.

    python -m offline.run [--workflow NAME] [--input JSON] [--name NAME] [--keep-s3 DIR] [--summary PATH]
                          [--assembly DIR] [--no-synth] [--stage NAME] [--dataset FILE] [--approve]
                          [--context KEY=VALUE ...]

Workflows a model approval starts (DeployApproved) run only with --approve: the runner approves each version
the runs registered, as a person would, and the approval event starts them; then, when MonitorEndpoint is part
of the app, the loop closes (offline/monitor_loop.py): traffic, a drifted batch, the monitor, the alarms.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from offline.cloud import LocalCloud
from offline.evaluate import evaluate
from stacks.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SUMMARY = ROOT / ".offline" / "summary.json"


def synthesize(outdir: Path, stage: str | None, context: dict[str, str] | None = None) -> float:
    from stacks.kit import build_app, cdk_json_context

    start = time.perf_counter()
    build_app({**cdk_json_context(), **(context or {}), **({"stage": stage} if stage else {})},
              outdir=str(outdir)).synth()
    return time.perf_counter() - start


class Progress:
    """Prints each state as it starts and ends, with failures and retries."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels, self.entered, self.states = labels, {}, dict.fromkeys(labels, 0)

    def __call__(self, arn: str, event: dict) -> None:
        label, kind, when = self.labels[arn], event["type"], event["timestamp"].timestamp()
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[(arn, name)] = when
            self.states[arn] += 1
            print(f"[{label}] -> {name}", flush=True)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            print(f"[{label}] ok {name} ({when - self.entered.get((arn, name), when):.2f} s)", flush=True)
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            print(f"[{label}] !! {kind}: {details.get('error')}: {str(details.get('cause', ''))[:300]}", flush=True)


def _message(cause: str | None) -> str | None:
    """A failed Lambda's cause is its error as JSON: show the message, not the stack trace."""
    try:
        return json.loads(cause)["errorMessage"]
    except (TypeError, ValueError, KeyError):
        return cause


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the kit's workflows offline, end to end.")
    parser.add_argument("--workflow", action="append", help="stack name to run (default: every workflow)")
    parser.add_argument("--input", default="{}", help="execution input as JSON, e.g. '{\"rows\": 2000, \"seed\": 7}'")
    parser.add_argument("--name", help="execution name (default: generated); with several workflows, a suffix")
    parser.add_argument("--keep-s3", type=Path, help="copy the local S3 buckets into this folder afterwards")
    parser.add_argument("--summary", type=Path, default=DEFAULT_SUMMARY, help="where to write the JSON summary")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out", help="cloud assembly folder")
    parser.add_argument("--no-synth", action="store_true", help="run the assembly already in --assembly")
    parser.add_argument("--stage", help="synthesize and run this stage's copy of the kit (as -c stage=...)")
    parser.add_argument("--dataset", type=Path, help="a local CSV file to train on: put under datasets/ in the "
                                                     "workflow's data bucket and named as dataset_uri in its input")
    parser.add_argument("--approve", action="store_true", help="approve each model version the runs register, "
                                                               "which starts the workflows that deploy approved models")
    parser.add_argument("--context", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for this synthesis, as cdk -c KEY=VALUE (e.g. retrain_on_drift=true)")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.context):
        parser.error("--context takes KEY=VALUE, e.g. --context retrain_on_drift=true")
    try:
        execution_input = json.loads(args.input)
    except json.JSONDecodeError as error:
        parser.error(f"--input is not JSON: {error}")

    if not args.no_synth:
        try:
            seconds = synthesize(args.assembly, args.stage, dict(item.split("=", 1) for item in args.context))
        except ConfigError as error:  # a bad setting: the one line synthesis gives
            parser.error(str(error))
        print(f"synthesized the app into {args.assembly} in {seconds:.1f} s", flush=True)
    try:
        local = LocalCloud(args.assembly, stage=args.stage)
    except ValueError as error:
        parser.error(str(error))
    with local as cloud:
        on_approval = {stack for stack, w in cloud.workflows.items() if w.starts_on_model_approval}
        stacks = args.workflow or [stack for stack in cloud.workflows if stack not in on_approval]
        unknown = sorted(set(stacks) - set(cloud.workflows))
        if unknown:
            parser.error(f"unknown workflow {unknown[0]}; choose from {', '.join(cloud.workflows)}")
        for stack in sorted(on_approval & set(stacks)):  # offline, no version exists until a run registers one
            parser.error(f"{stack} starts when a model version is approved: run the workflow that registers one "
                         "with --approve (make run does), e.g. --workflow BuildAndRegister --approve")
        names = {stack: (f"{args.name}-{stack}" if args.name and len(stacks) > 1 else args.name) for stack in stacks}
        inputs = {stack: dict(execution_input) for stack in stacks}
        if args.dataset:  # as a user would: upload the file, then name it in the input
            if not args.dataset.is_file():
                parser.error(f"--dataset {args.dataset} is not a file")
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
        summary = {"monitoring": loop} if loop else {}
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
                result.update(error=described.get("error"), cause=_message(described.get("cause")))
            summary[stack] = result
        approvals = {arn: cloud.sagemaker.model_packages[arn]["ModelApprovalStatus"]
                     for arn in cloud.sagemaker.model_packages}
        notifications = cloud.notifications()
        if args.keep_s3:
            print(f"copied {cloud.save_s3(args.keep_s3)} objects of the local S3 into {args.keep_s3}")

    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print()
    for stack, result in summary.items():
        if stack == "monitoring":
            for name, step in result.items():
                if "page" in step:
                    print(f"monitor ({name}): {step['output']['outcome']}; report: {step['page']}")
            for arn, status in result.get("retraining", {}).items():
                print(f"retraining (started by the drift alarm): {status}, {arn}")
            continue
        print(f"{stack}: {result['status']} in {result['duration_seconds']} s, {result['states_executed']} states")
        if "quality" in result:
            quality, output = result["quality"], result["output"]
            print(f"  model:       {output['model_artifacts']}")
            print(f"  predictions: {output['predictions']}")
            print(f"  test set:    accuracy {quality['accuracy']:.3f}, AUC {quality['auc']:.3f} "
                  f"({quality['test_rows']} rows)")
        elif "endpoint" in result.get("output", {}):
            output = result["output"]
            print(f"  endpoint:    {output['endpoint']} ({output['deployment']}d) serves {output['model_package_arn']}")
            print(f"  smoke test:  {output['smoke_test']}")
            print(f"  monitoring:  {output['monitoring_schedule']} (MonitorEndpoint's schedule); traffic captured under "
                  f"{output['capture']}")
        elif "output" in result:
            output = result["output"]
            print(f"  model:       {output['model_artifacts']}")
            print(f"  registered:  {output['model_package_arn']} ({approvals[output['model_package_arn']]})")
            print(f"  test set:    accuracy {output['metrics']['accuracy']:.3f}, AUC {output['metrics']['auc']:.3f} "
                  f"(the run's evaluation job: {output['evaluation']})")
        else:
            print(f"  error: {result['error']}: {str(result['cause'])[:500]}")
    for sent in notifications:
        print(f"notification to {sent['topic'].rsplit(':', 1)[1]}: {sent['subject']}\n  {sent['message']}")
    print(f"summary written to {args.summary}")
    return 0 if all(r["status"] == "SUCCEEDED" for s, r in summary.items() if s != "monitoring") else 1


def _close_the_loop(cloud: LocalCloud, arns: dict, ended: dict) -> dict | None:
    """After a successful deployment, with MonitorEndpoint in the app: traffic, drift, alarms, retraining."""
    from offline.monitor_loop import MONITOR, close_the_loop

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
