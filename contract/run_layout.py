"""The run layout: every execution works under runs/<execution name>/ of its bucket, one folder per kind of data.

The one place that says so. The CDK side names the folders in its IAM (`glob`) and workflow specs; the functions
that take a run's prefix or an s3:// URI into a run check it with the patterns below (each compiled once). Standard
library only, compatible with the Python of every place it ships to.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

RUNS = "runs/"  # the folder of all runs; what lies outside it is user data (data sets, ground truth)
# Where operators upload the true labels of an endpoint's answers, in DeployApproved's bucket beside the capture
# they label: ground-truth/yyyy/mm/dd/hh/<file>.jsonl (the hour of the predictions, UTC).
GROUND_TRUTH = "ground-truth/"
# One path segment: an execution name, never a folder of its own.
_RUN = re.escape(RUNS) + r"[^/]+/"

# The folders of a run, runs/<run>/<folder>/.
INPUT = "input"  # the data set the run works on (raw/, train/, validation/, test-labels/, ...)
PROCESSED = "processed"  # processed data, and the fitted preprocessing
PREPROCESSOR = f"{PROCESSED}/preprocessor"  # the fitted preprocessing (model.tar.gz), the pipeline's first container
MODEL = "model"  # model artifacts
ANSWERS = "answers"  # the model's answers on the test set
PREDICTIONS = "predictions"  # batch transform output
EVALUATION = "evaluation"  # evaluation.json, what the gate reads
BASELINE = "baseline"  # the drift-check baseline (statistics.json, constraints.json)
CHECKPOINTS = "checkpoints"  # spot training checkpoints
CAPTURE = "capture"  # an endpoint's data capture
DEPLOYMENT = "deployment"  # a deployment's record (version.json), for the monitor
TRAFFIC = "traffic"  # a monitor window's captured traffic and ground truth
REPORT = "report"  # a monitor window's report
# What DeployApproved writes of each deployment (version, baseline, capture folder), for the monitor to find.
DEPLOYMENT_RECORD = f"{DEPLOYMENT}/version.json"
FOLDERS = (INPUT, PROCESSED, MODEL, ANSWERS, PREDICTIONS, EVALUATION, BASELINE, CHECKPOINTS, CAPTURE, DEPLOYMENT,
           TRAFFIC, REPORT)


def run_prefix(name: str) -> str:
    """The key prefix of the execution `name`: runs/<name>/."""
    return f"{RUNS}{name}/"


def glob(folder: Optional[str] = None) -> str:
    """The objects of `folder` in every run, runs/*/<folder>/* (IAM resources); every run's objects, runs/*,
    without one."""
    return f"{RUNS}*" if folder is None else f"{RUNS}*/{folder}/*"


@lru_cache(maxsize=None)
def run_prefix_pattern() -> re.Pattern:
    """A run's prefix, runs/<run>/ (use fullmatch)."""
    return re.compile(_RUN)


@lru_cache(maxsize=None)
def folder_prefix_pattern(folder: str) -> re.Pattern:
    """A key prefix of one run's `folder`, runs/<run>/<folder>/ (use fullmatch)."""
    return re.compile(_RUN + re.escape(folder) + "/")


@lru_cache(maxsize=None)
def folder_uri_pattern(folder: str) -> re.Pattern:
    """The s3:// URI of one run's `folder` itself, with or without its closing slash (use fullmatch). Groups:
    bucket; run (runs/<run>/)."""
    return re.compile(rf"s3://(?P<bucket>[^/]+)/(?P<run>{_RUN}){re.escape(folder)}/?")


@lru_cache(maxsize=None)
def uri_pattern(folder: Optional[str] = None, file: Optional[str] = None) -> re.Pattern:
    """The s3:// URI of an object in a run (use fullmatch): `file` (a path) under `folder`, or any object under it
    without `file`; any object of the run without either. Groups: bucket; key (from runs/); run (runs/<run>/)."""
    under = "" if folder is None else re.escape(folder) + "/"
    name = ".+" if file is None else re.escape(file)
    return re.compile(rf"s3://(?P<bucket>[^/]+)/(?P<key>(?P<run>{_RUN}){under}{name})")
