"""One host of a built-in XGBoost training job, and the tracker that joins several: each runs as its own process
in the sagemaker-xgboost image's environment (offline/image_versions.py), so the image's xgboost trains.
Standard library, numpy and xgboost only: the kit's own packages are not there.

    python -m offline.xgboost_host host <config.json>      train as the config says (see sagemaker_jobs._run_hosts)
    python -m offline.xgboost_host tracker <hosts> <timeout>  print the hosts' collective arguments, then serve them
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "xgboost-model"  # the file name SageMaker's XGBoost container uses inside model.tar.gz


def parse_csv(body: bytes, where: str) -> np.ndarray:
    try:
        return np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    except ValueError as error:
        raise RuntimeError(f"ClientError: cannot read CSV {where}: {error}") from None


def boost(parameters: dict, rounds: int, data: dict) -> tuple[Any, dict]:
    """Train on data["train"], evaluating every channel; in a distributed job, inside the collective."""
    import xgboost

    history: dict = {}
    booster = xgboost.train({**parameters, "verbosity": 0, "nthread": 1}, data["train"], num_boost_round=rounds,
                            evals=list((matrix, channel) for channel, matrix in data.items()),
                            evals_result=history, verbose_eval=False)
    return booster, history


def host(config_file: str) -> None:
    """Read the host's channel folders, train (inside the collective when the job has several hosts with data),
    and, on the saving host, write the model and metrics. A failure goes to output/failure, as the container's
    toolkit writes /opt/ml/output/failure."""
    import xgboost
    from xgboost import collective

    config = json.loads(Path(config_file).read_text())
    folder = Path(config["folder"])
    try:
        data = {}
        for channel in config["channels"]:
            files = sorted(p for p in (folder / "input" / "data" / channel).rglob("*") if p.is_file())
            rows = np.vstack([parse_csv(p.read_bytes(), config["sources"][channel]) for p in files
                              if p.stat().st_size])
            data[channel] = xgboost.DMatrix(rows[:, 1:], label=rows[:, 0])
        tracker = config["tracker"]
        group = (collective.CommunicatorContext(**tracker["args"], **{tracker["task_key"]: config["host"]})
                 if tracker else contextlib.nullcontext())
        with group:
            booster, history = boost(config["parameters"], config["rounds"], data)
        if config["master"]:
            (folder / "model").mkdir(exist_ok=True)
            (folder / "model" / MODEL_FILE).write_bytes(bytes(booster.save_raw("json")))
            (folder / "output" / "history.json").write_text(json.dumps(history))
    except Exception as error:  # noqa: BLE001 - every failure is the job's, reported as SageMaker reports it
        (folder / "output" / "failure").write_text(str(error) or type(error).__name__)
        sys.exit(1)
    os._exit(0)  # its files are written; the interpreter's teardown after xgboost 1.7's collective takes a second


def tracker(hosts: int, timeout: int) -> None:
    """xgboost's tracker for `hosts` workers, ranked by task id (the host name, sorted as text as the container
    sorts hosts). Its first stdout line is what each host passes to the collective; it returns when they are done.
    xgboost 1.7 has the Python tracker (worker_envs, DMLC_TASK_ID); 2.0 and later the native one."""
    from xgboost.tracker import RabitTracker

    if hasattr(RabitTracker, "worker_args"):
        running = RabitTracker(n_workers=hosts, host_ip="127.0.0.1", sortby="task", timeout=timeout)
        running.start()
        print(json.dumps({"args": running.worker_args(), "task_key": "dmlc_task_id"}), flush=True)
        running.wait_for(timeout)
    else:
        running = RabitTracker(host_ip="127.0.0.1", n_workers=hosts, sortby="task")
        running.start(hosts)
        # TCP_NODELAY: each round's many small allreduces otherwise wait out delayed ACKs on the loopback (25
        # rounds took 8 s instead of 2); it changes how bytes travel, not what the hosts compute.
        arguments = {**running.worker_envs(), "rabit_enable_tcp_no_delay": "true"}
        print(json.dumps({"args": arguments, "task_key": "DMLC_TASK_ID"}), flush=True)
        sys.stdout = sys.stderr  # this tracker prints its progress
        running.join()


if __name__ == "__main__":
    if sys.argv[1] == "host":
        host(sys.argv[2])
    else:
        tracker(int(sys.argv[2]), int(sys.argv[3]))
