"""Measures the kit against a hand-written peer (synthesis time, jsii round trips), the cost of each added
workflow, the test suite and `make run`, and prints each figure with its target. Printed, never asserted:
timings depend on the machine and its load.

`python benchmarks/measure.py` runs it all (`make bench`); the other commands are the pieces it runs in
fresh processes: `synth kit|peer|empty|app OUTDIR`, `copies COUNT OUTDIR`, `count kit|peer STACK OUTDIR`.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
ENV = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",
       "PYTHONDONTWRITEBYTECODE": "1"}
# The kit's stacks the peer (benchmarks/peer_app.py) writes by hand, and the peer's names for them.
PEER_STACKS = {"TrainAndTransform": "PeerTrainAndTransform", "PreprocessAndTrain": "PeerPreprocessAndTrain"}


# -- the apps, each built in a fresh process --------------------------------------------------------------------
def kit_app(outdir: str, stacks: dict[str, int]):
    """The kit's app with `stacks` (stack id -> copies), cdk.json's context and the kit's nag packs."""
    sys.path.insert(0, str(ROOT))
    from aws_cdk import App, Validations
    from stacks.settings.config import KitConfig
    from stacks.app.kit import NAG_PACKS, WORKFLOWS, cdk_json_context
    from stacks.workflows.workflow_stack import workflow_settings

    app = App(context=cdk_json_context(), outdir=outdir, analytics_reporting=False)
    config = KitConfig.from_context(app.node.get_all_context(), workflow_settings())
    for stack_id, copies in stacks.items():
        for index in range(copies):
            WORKFLOWS[stack_id](app, stack_id if copies == 1 else f"{stack_id}{index}", config=config)
    Validations.of(app).add_plugins(*(pack(app) for pack in NAG_PACKS))
    return app


def peer_app(outdir: str, stacks: list[str]):
    """The peer's app with `stacks`, given the context `cdk synth` gives the kit: the same feature flags (a new
    project's cdk.json sets the same ones) and the CLI's path metadata."""
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from peer_app import build_peer_app
    from stacks.settings.config import cdk_json_context

    return build_peer_app(outdir, [PEER_STACKS[stack] for stack in stacks], cdk_json_context())


def synth(kind: str, outdir: str) -> None:
    """One synthesis, as `cdk synth` runs an app (cdk.json's context, a cloud assembly in `outdir`)."""
    if kind == "empty":
        import aws_cdk as cdk

        app = cdk.App(outdir=outdir, analytics_reporting=False)
        cdk.Stack(app, "Empty")
    elif kind == "app":
        os.environ["CDK_OUTDIR"] = outdir
        os.environ["CDK_CONTEXT_JSON"] = json.dumps(json.loads((ROOT / "cdk.json").read_text())["context"])
        os.chdir(ROOT)
        sys.path.insert(0, str(ROOT))
        import runpy

        runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
        return
    elif kind == "kit":
        app = kit_app(outdir, dict.fromkeys(PEER_STACKS, 1))
    else:
        app = peer_app(outdir, list(PEER_STACKS))
    app.synth()


def count(kind: str, stack: str, outdir: str) -> None:
    """Prints, as JSON, the Python->Node requests one stack's app makes from its construction to its synthesis.

    Every request of the jsii Python runtime to its Node kernel (create, invoke, get, set, answering a callback,
    ...) goes through one method, `_NodeProcess.send`, each a round trip over the kernel's pipe: counting there
    sees them all. The imports (loading the libraries into the kernel) happen before counting starts."""
    from jsii._kernel.providers import process

    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    import peer_app as _  # noqa: F401
    import stacks.app.kit  # noqa: F401
    calls: Counter = Counter()
    send = process._NodeProcess.send

    def counted(self, request, response_type):
        calls[type(request).__name__] += 1
        return send(self, request, response_type)

    process._NodeProcess.send = counted
    app = kit_app(outdir, {stack: 1}) if kind == "kit" else peer_app(outdir, [stack])
    constructed = sum(calls.values())
    assembly = app.synth()
    counted = {"total": sum(calls.values()), "construction": constructed, "by_request": dict(calls)}
    # Read after counting: reading the assembly is a round trip too, not the app's.
    counted["resources"] = sum(len(stack.template["Resources"]) for stack in assembly.stacks)
    print(json.dumps(counted))


# -- the measurements, from this process -----------------------------------------------------------------------
def timed(command: list[str], check: bool = True) -> float:
    start = time.perf_counter()
    # stderr is not shown: the empty stack warns that it has no resources, which is expected.
    done = subprocess.run(command, cwd=ROOT, env=ENV, check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    if done.returncode:  # a failing test suite is still timed; say so, so the figure is not taken for a pass
        print(f"  ({' '.join(command[1:4])} exited with status {done.returncode})")
    return time.perf_counter() - start


def piece(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def interleaved(commands: dict[str, Callable[[str], list[str]]], repeats: int = REPEATS) -> dict[str, list[float]]:
    """Runs each command once per round, round after round, so drift in the machine's load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeats):
            for name, command in commands.items():
                times[name].append(timed(command(f"{tmp}/{name}{round_}")))
    return times


def jsii_calls(kind: str, stack: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(piece("count", kind, stack, tmp), cwd=ROOT, env=ENV, check=True, capture_output=True,
                              text=True)
    return json.loads(done.stdout.splitlines()[-1])


def calls_text(calls: dict) -> str:
    """Total round trips, the most frequent kinds of request, and the resources of the stack's template."""
    kinds = ", ".join(f"{name.removesuffix('Request')} {n}" for name, n in Counter(calls["by_request"]).most_common(4))
    return f"{calls['total']} ({kinds}; {calls['resources']} resources)"


def main() -> None:
    print(f"Each timing is the median of {REPEATS} runs (BENCH_REPEATS), interleaved; on a shared or busy machine "
          "they are noisy.")
    pair = interleaved({"kit": lambda out: piece("synth", "kit", out), "peer": lambda out: piece("synth", "peer", out)})
    ratios = [kit / peer for kit, peer in zip(pair["kit"], pair["peer"])]
    kit_median, peer_median = statistics.median(pair["kit"]), statistics.median(pair["peer"])
    print(f"kit vs hand-written peer ({', '.join(PEER_STACKS)}; python process to cloud assembly, cdk-nag):\n"
          f"  kit {kit_median:.2f} s, peer {peer_median:.2f} s: ratio {kit_median / peer_median:.2f}x "
          f"(pairwise ratios: median {statistics.median(ratios):.2f}x, {min(ratios):.2f}-{max(ratios):.2f}) "
          "(target <= 1.0x)")
    print("jsii round trips (Python->Node requests) per stack, construction + synthesis of an app with that stack "
          "(no target of their own: where the kit's time beyond the peer's goes, for the ratio's target):")
    for stack in PEER_STACKS:
        kit, peer = jsii_calls("kit", stack), jsii_calls("peer", stack)
        print(f"  {stack}: kit {calls_text(kit)}, peer {calls_text(peer)}: {kit['total'] / peer['total']:.2f}x")

    whole = interleaved({"empty": lambda out: piece("synth", "empty", out),
                         "app": lambda out: piece("synth", "app", out)})
    empty_median, app_median = statistics.median(whole["empty"]), statistics.median(whole["app"])
    print(f"whole app synth (every workflow, cdk-nag): {app_median:.2f} s = {app_median / empty_median:.2f}x an "
          f"empty CDK app's {empty_median:.2f} s (no target: the unit of the test suite's target below)")

    copies = interleaved({"one": lambda out: piece("copies", "1", out), "ten": lambda out: piece("copies", "10", out)})
    one, ten = statistics.median(copies["one"]), statistics.median(copies["ten"])
    print(f"synth, 1 vs 10 copies of TrainAndTransform: {one:.2f} s vs {ten:.2f} s = {(ten - one) / 9:.2f} s per "
          "added workflow (target <= 0.25 s)")

    suite = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], check=False)
    print(f"test suite (make test's pytest, everything, workers as pytest.ini sets them): {suite:.0f} s = "
          f"{suite / app_median:.0f}x one whole-app synth (target <= 20x)")
    quick = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"], check=False)
    print(f"  without the slow tests (-m \"not slow\"): {quick:.0f} s = {quick / app_median:.0f}x (no target: what a "
          "developer waits for while working)")

    with tempfile.TemporaryDirectory() as tmp:
        run = timed([sys.executable, "-m", "offline.run", "--approve", "--assembly", f"{tmp}/cdk.out",
                     "--summary", f"{tmp}/summary.json", "--keep-s3", f"{tmp}/s3", "--log", f"{tmp}/run.log"])
        startups = job_startups(Path(tmp) / "cdk.out")
    print(f"make run (every workflow, synthesis included): {run:.1f} s (target < 30 s)")
    print("SageMaker job start-ups a run waits for one after another, from the synthesized definitions (each is "
          "minutes of provisioning on AWS; BuildAndRegister's target <= 4):")
    for stack, count in startups.items():
        print(f"  {stack}: {count}")


def job_startups(assembly: Path) -> dict[str, int]:
    """Per stack of the assembly, the longest chain of SageMaker jobs its state machine runs in a row."""
    sys.path.insert(0, str(ROOT))
    from stacks.asl.definition import job_startups_in_a_row

    found = {}
    for template in sorted(assembly.glob("*.template.json")):
        for resource in json.loads(template.read_text())["Resources"].values():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                parts = resource["Properties"]["DefinitionString"]["Fn::Join"][1]
                definition = json.loads("".join(p if isinstance(p, str) else "<token>" for p in parts))
                found[template.name.removesuffix(".template.json")] = job_startups_in_a_row(definition)
    return found


if __name__ == "__main__":
    if len(sys.argv) == 1:
        main()
    elif sys.argv[1] == "synth":
        synth(*sys.argv[2:])
    elif sys.argv[1] == "copies":
        kit_app(sys.argv[3], {"TrainAndTransform": int(sys.argv[2])}).synth()
    elif sys.argv[1] == "count":
        count(*sys.argv[2:])
    else:
        sys.exit(f"error: unknown command {sys.argv[1]!r}; run without arguments for every measurement")
