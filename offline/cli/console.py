"""What `make run` shows: one line per state, one line per failure (its own reason), and a summary whose figures
are the run's own; full causes, stack traces and the interpreter's logs go to a log file named on the console."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable


class _RunLog(logging.FileHandler):
    """The log file of one run (a later run replaces it)."""


def log_to(path: Path) -> None:
    """Send every logger (moto's interpreter, botocore, the Lambda handlers) to `path`: with a handler on the
    root logger, Python no longer prints their warnings and errors on the console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RunLog)]:
        root.removeHandler(old)
        old.close()
    handler = _RunLog(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def failure(error: str | None, cause: str | None) -> str:
    """`error: reason`, the class said once: a job's message starts with its class (the workflow reads it there,
    `InvalidDataset: ...`), which the Fail state also names as its error."""
    why = reason(cause)
    return f"{error}: {why.removeprefix(f'{error}: ')}"


def reason(cause: str | None) -> str:
    """The one line that says why: a Lambda error's type and message, a SageMaker job's FailureReason (its
    script's last error line), or the cause's first line."""
    try:
        found = json.loads(cause or "")
    except ValueError:
        return (cause or "").strip().splitlines()[0] if (cause or "").strip() else ""
    if isinstance(found, dict):
        if "errorMessage" in found:
            return f"{found.get('errorType', 'Error')}: {found['errorMessage']}"
        if "FailureReason" in found:
            job = next((found[k] for k in found if k.endswith("JobName")), "the job")
            return f"{job} failed: {found['FailureReason']}"
    return json.dumps(found)[:300]


class Progress:
    """Prints each state as it starts and ends, and each failure on one line; the full cause goes to the log."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels, self.entered, self.states = labels, {}, dict.fromkeys(labels, 0)
        self.log = logging.getLogger("offline.run")

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
            print(f"[{label}] !! {kind}: {failure(details.get('error'), details.get('cause'))}", flush=True)
            self.log.info("%s %s %s: %s", label, kind, details.get("error"), details.get("cause"))


def print_summary(summary: dict, approvals: dict, notifications: list[dict], read: Callable[[str], bytes],
                  local: Callable[[str], str]) -> None:
    """Each workflow's outcome; every figure as the run computed it (the evaluation's own values, not rounded
    again), with where each S3 object of the run now is on this machine."""
    where = lambda uri: f"{uri}\n               ({local(uri)})"  # noqa: E731
    for stack, result in summary.items():
        if stack == "monitoring":  # make run's closed loop: each hour the monitor checked, and what it started
            for name, step in result.items():
                if "page" in step:
                    print(f"monitor ({name}): {step['output']['outcome']}; report: {step['page']}")
            for arn, status in result.get("retraining", {}).items():
                print(f"retraining (started by the drift alarm): {status}, {arn}")
            continue
        if stack == "roll_back":  # make run --roll-back: docs/deploy-approved.md's roll back, rehearsed
            print(f"roll back to {result.get('first_version')} (from {result.get('second_version')}): "
                  f"{result['status']}{'; ' + result['reason'] if result.get('reason') else ''}")
            continue
        print(f"{stack}: {result['status']} in {result['duration_seconds']} s, {result['states_executed']} states")
        output = result.get("output", {})
        if "quality" in result:
            quality = result["quality"]
            print(f"  model:       {where(output['model_artifacts'])}")
            print(f"  predictions: {where(output['predictions'])}")
            print(f"  test set:    accuracy {quality['accuracy']}, AUC {quality['auc']} ({quality['test_rows']} rows)")
        elif "endpoint" in output:
            print(f"  endpoint:    {output['endpoint']} ({output['deployment']}d) serves {output['model_package_arn']}")
            print(f"  smoke test:  {output['smoke_test']}")
            print(f"  monitoring:  {output['monitoring_schedule']} (MonitorEndpoint's schedule); traffic captured "
                  f"under {where(output['capture'])}")
        elif "metrics" in output:  # BuildAndRegister: evaluated as served, gated, registered
            measured, verdict = output["metrics"]["metrics"], output["metrics"]["gate"]
            report = json.loads(read(output["evaluation"]))
            matrix = next(iter(report.values())).get("confusion_matrix")
            print(f"  model:       {where(output['model_artifacts'])}")
            print(f"  registered:  {output['model_package_arn']} ({approvals[output['model_package_arn']]})")
            print(f"  test set:    {output['metrics']['task']}: "
                  + ", ".join(f"{name} {value}" for name, value in measured.items()))
            print(f"  gate:        {verdict['metric']} {verdict['value']} ({verdict['better']} is better, threshold "
                  f"{verdict['threshold']}): {'passed' if verdict['passed'] else 'failed'}")
            if matrix:
                print("  confusion:   " + "; ".join(f"true {true}: " + ", ".join(
                    f"{count} predicted {predicted}" for predicted, count in row.items()) for true, row in matrix.items()))
            print(f"  evaluation:  {where(output['evaluation'])}")
            print(f"  test rows:   {where(output['test_data'])}\n               (raw, as a client sends them; "
                  f"labels: {output['test_labels']})")
        elif "model_package_arn" in output:  # a model registered without an evaluation (TrainOnDayFiles)
            print(f"  model:       {where(output['model_artifacts'])}")
            print(f"  registered:  {output['model_package_arn']} "
                  f"({approvals.get(output['model_package_arn'], 'PendingManualApproval')})")
        elif "error" in result:
            print(f"  error: {failure(result['error'], result['cause'])}")
    for sent in notifications:
        print(f"notification to {sent['topic'].rsplit(':', 1)[1]}: {sent['subject']}\n  {sent['message']}")
