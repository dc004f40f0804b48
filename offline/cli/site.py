"""The results site offline (results_site/): what make run keeps of its account for it, and serving it.

`keep` writes site.json beside make run's summary: where make run kept the buckets, the copy's names, the registry's
and the alarms' answers in their API shapes, and the listings of the site's buckets. `python -m offline.cli.site`
(`make site`) serves the last run's results with .venv's Streamlit, until Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offline.cloud.account import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
STREAMLIT = Path(sys.executable).parent / "streamlit"  # .venv's (requirements-dev.txt takes the site's pins)
APP = ROOT / "results_site" / "app.py"
SITE_FILE = "site.json"
DEFAULT_SNAPSHOT = ROOT / ".offline" / SITE_FILE
PORT = 8501
WORKFLOWS = {"BUILD_BUCKET": "BuildAndRegister", "DEPLOY_BUCKET": "DeployApproved", "MONITOR_BUCKET": "MonitorEndpoint"}


def keep(cloud: "LocalCloud", snapshot: Path, s3_folder: Path) -> bool:
    """Writes `snapshot` for the site (the buckets being kept in `s3_folder`); False (nothing written) when the
    run has no model loop to show. (Imports here: `make site` itself needs neither the CDK nor the emulator.)"""
    import boto3

    from offline.cloud.account import REGION
    from stacks.constructs.model_registry import model_package_group_name

    if any(stack not in cloud.workflows for stack in WORKFLOWS.values()):
        return False
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    packages = [sagemaker.describe_model_package(ModelPackageName=arn) for arn in cloud.sagemaker.model_packages]
    names = {name: cloud.workflows[stack].data_bucket for name, stack in WORKFLOWS.items()}
    # Each workflow's state machine is named by its job name prefix, which names its resources too.
    names.update(MODEL_PACKAGE_GROUP=model_package_group_name(cloud.workflows["BuildAndRegister"].state_machine_name),
                 ALARM_PREFIX=f"{cloud.workflows['MonitorEndpoint'].state_machine_name}-")
    alarms = [{"AlarmName": name, "StateValue": cloud.alarms.states[name],
               "AlarmDescription": alarm.get("AlarmDescription", "")} for name, alarm in cloud.alarms.alarms.items()]
    listings = {bucket: [[item["Key"], item["LastModified"].isoformat()]
                         for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                         for item in page.get("Contents", [])]
                for bucket in (names[name] for name in WORKFLOWS)}
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_text(json.dumps({"s3": str(s3_folder.resolve()), "names": names, "model_packages": packages,
                                    "alarms": alarms, "objects": listings}, indent=1, default=str))
    return True


def command(port: int = PORT) -> list[str]:
    return [str(STREAMLIT), "run", str(APP), "--server.headless=true", f"--server.port={port}",
            "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]


def start(snapshot: Path, port: int = PORT, **popen) -> subprocess.Popen:
    """Streamlit serving the results `snapshot` names, on localhost:`port`."""
    if not snapshot.is_file():
        raise FileNotFoundError(f"{snapshot} is missing: run make run first")
    return subprocess.Popen(command(port), env={**os.environ, "RESULTS_SNAPSHOT": str(snapshot.resolve())},
                            cwd=APP.parent, **popen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT,
                        help="what make run kept for the site (default .offline/site.json)")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    try:
        server = start(args.snapshot, args.port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError as error:
        print(f"site: {error}", file=sys.stderr)
        return 1
    print(f"results site: http://localhost:{args.port} (the last make run's results; Ctrl-C stops it)", flush=True)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait(timeout=10)
        return 0


if __name__ == "__main__":
    sys.exit(main())
