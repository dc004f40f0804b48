"""SageMaker Model Monitor's baseline job, emulated: the statistics and constraints its analyzer writes, in its
format (Model Monitor developer guide: statistics.json, constraints.json), computed from the same CSV data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_MONITOR_REPOSITORY = "sagemaker-model-monitor-analyzer"


def _feature(name: str, column: pd.Series) -> tuple[dict, dict]:
    """(statistics, constraints) of one column."""
    integral = bool(np.all(np.mod(column.dropna(), 1) == 0))
    kind = "Integral" if integral else "Fractional"
    present = int(column.notna().sum())
    counts, edges = np.histogram(column.dropna(), bins=10)
    statistics = {"name": name, "inferred_type": kind, "numerical_statistics": {
        "common": {"num_present": present, "num_missing": int(column.isna().sum())},
        "mean": float(column.mean()), "sum": float(column.sum()), "std_dev": float(column.std(ddof=0)),
        "min": float(column.min()), "max": float(column.max()),
        "distribution": {"kll": {"buckets": [
            {"lower_bound": float(low), "upper_bound": float(high), "count": float(count)}
            for low, high, count in zip(edges[:-1], edges[1:], counts)]}}}}
    constraints = {"name": name, "inferred_type": kind, "completeness": present / max(len(column), 1),
                   "num_constraints": {"is_non_negative": bool(column.min() >= 0)}}
    return statistics, constraints


def suggest_baseline(environment: dict[str, str]) -> None:
    """What the analyzer does for a data-quality baseline: read the CSV files under `dataset_source` (with or
    without a header, per `dataset_format`), write statistics.json and constraints.json to `output_path`."""
    options = json.loads(environment["dataset_format"])["csv"]
    files = sorted(p for p in Path(environment["dataset_source"]).rglob("*") if p.is_file())
    if not files:
        raise RuntimeError("ClientError: no data under dataset_source")
    frame = pd.concat([pd.read_csv(p, header=0 if options.get("header") else None) for p in files])
    if not options.get("header"):  # the analyzer's names for headerless columns
        frame.columns = [f"_c{index}" for index in range(frame.shape[1])]
    features = [_feature(str(name), frame[name].astype(float)) for name in frame.columns]
    output = Path(environment["output_path"])
    output.mkdir(parents=True, exist_ok=True)
    (output / "statistics.json").write_text(json.dumps(
        {"version": 0.0, "dataset": {"item_count": len(frame)}, "features": [s for s, _ in features]}, indent=2))
    (output / "constraints.json").write_text(json.dumps(
        {"version": 0.0, "features": [c for _, c in features], "monitoring_config": {
            "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0, "distribution_constraints": {
                "perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust"}}},
        indent=2))
