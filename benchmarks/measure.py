"""Measures synthesis against an empty CDK app (same run, medians), the test suite, and `make run`."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
EMPTY_APP = "import aws_cdk as cdk; app = cdk.App(); cdk.Stack(app, 'Empty'); app.synth()"
EMPTY_APP_WITH_NAG = ("import aws_cdk as cdk, cdk_nag; app = cdk.App(); cdk.Stack(app, 'Empty'); "
                      "cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app)); app.synth()")
ENV = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",
       "PYTHONDONTWRITEBYTECODE": "1"}


def timed(command: list[str], **extra_env: str) -> float:
    start = time.perf_counter()
    # The empty stack's "no resources" warning goes to stderr; it is expected, so it is not shown.
    subprocess.run(command, cwd=ROOT, env=ENV | extra_env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def synth_app(outdir: str) -> list[str]:
    # What `cdk synth` runs: the app with cdk.json's context, writing a cloud assembly.
    return [sys.executable, "-c", f"""
import json, os
os.environ['CDK_OUTDIR'] = {outdir!r}
os.environ['CDK_CONTEXT_JSON'] = json.dumps(json.load(open('cdk.json'))['context'])
import runpy; runpy.run_path('app.py', run_name='__main__')
"""]


def copies_app(count: int, outdir: str) -> list[str]:
    """An app with `count` copies of one workflow stack (cdk-nag applied), to price each added workflow."""
    return [sys.executable, "-c", f"""
from aws_cdk import App, Validations
from stacks.config import KitConfig
from stacks.kit import NAG_PACKS, WORKFLOWS, cdk_json_context
app = App(context=cdk_json_context(), outdir={outdir!r}, analytics_reporting=False)
config = KitConfig.from_context(app.node.get_all_context())
for index in range({count}):
    WORKFLOWS["TrainAndTransform"](app, f"Copy{{index}}", config=config)
Validations.of(app).add_plugins(*(pack(app) for pack in NAG_PACKS))
app.synth()
"""]


def main() -> None:
    empty, empty_nag, app = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEATS):  # interleaved, so drift on the machine hits all alike
            empty.append(timed([sys.executable, "-c", EMPTY_APP], CDK_OUTDIR=f"{tmp}/e{i}"))
            empty_nag.append(timed([sys.executable, "-c", EMPTY_APP_WITH_NAG], CDK_OUTDIR=f"{tmp}/n{i}"))
            app.append(timed(synth_app(f"{tmp}/a{i}")))
    empty_median, nag_median, app_median = map(statistics.median, (empty, empty_nag, app))
    print(f"empty CDK app synth:           median {empty_median:.2f} s over {REPEATS} runs")
    print(f"empty CDK app + cdk-nag synth: median {nag_median:.2f} s")
    print(f"kit app synth:                 median {app_median:.2f} s (all stacks, cdk-nag)")
    print(f"ratio app/empty:               {app_median / empty_median:.2f} (target <= 2)")
    print(f"ratio app/empty+nag:           {app_median / nag_median:.2f}")
    one, ten = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEATS):
            one.append(timed(copies_app(1, f"{tmp}/one{i}")))
            ten.append(timed(copies_app(10, f"{tmp}/ten{i}")))
    per_workflow = (statistics.median(ten) - statistics.median(one)) / 9
    print(f"synth, 1 vs 10 copies of a workflow: {statistics.median(one):.2f} s vs {statistics.median(ten):.2f} s "
          f"= {per_workflow:.2f} s per added workflow (target <= 0.3)")
    tests = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    print(f"test suite wall time:          {tests:.2f} s = {tests / app_median:.1f} x one app synth (target <= 10)")
    with tempfile.TemporaryDirectory() as tmp:
        run = timed([sys.executable, "-m", "offline.run", "--assembly", f"{tmp}/cdk.out", "--summary",
                     f"{tmp}/summary.json"])
    print(f"make run (every workflow):     {run:.2f} s = {run / app_median:.1f} x one app synth "
          f"(targets: < 30 s, <= 5x)")
    offline_tests = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_offline.py"])
    print(f"offline test group:            {offline_tests:.2f} s")


if __name__ == "__main__":
    main()
