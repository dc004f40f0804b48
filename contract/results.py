"""The monitor's results as a table: one row per checked window, for a BI tool that reads S3 through Athena.

The one place that says what a row holds. PublishMetrics (lambda/publish_metrics) writes each window's row, a JSON
object on one line (what Athena's JSON SerDe reads), beside the CloudWatch metrics it publishes from the same
numbers; docs/quicksight.md shows the table this module's `ddl` defines, and a test keeps the two the same. Standard
library only.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

RESULTS = "results/monitor/"  # outside runs/: the table's location holds these rows and nothing else

# Column -> Athena type. The metric columns are PublishMetrics' CloudWatch metrics, snake_case; each task's metrics
# on ground truth (CloudWatch's Live<Metric>) go in live_metrics, by the metric's own name (auc, rmse, ...).
COLUMNS: Mapping[str, str] = {
    "window_start": "string", "window_end": "string", "endpoint": "string", "model_package_arn": "string",
    "outcome": "string", "rows_checked": "bigint", "drift_share": "double", "drifted_features": "bigint",
    "drifted": "array<string>", "data_quality_issues": "bigint", "prediction_psi": "double",
    "labelled_rows": "bigint", "live_gate_metric": "double", "gate_metric_worsening": "double",
    "bias_gap_widening": "double", "attribution_ndcg": "double", "live_metrics": "map<string,double>",
}
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
LIVE = "Live"
RENAMED = {"Rows": "rows_checked"}  # ROWS is a reserved word in Athena's DDL


def column(metric: str) -> str:
    """A CloudWatch metric's column: DriftShare -> drift_share, PredictionPSI -> prediction_psi."""
    return RENAMED.get(metric) or _WORD.sub("_", metric).lower()


def row(report: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
    """A window's row from its report and the metrics published from it (name -> value); absent ones are null."""
    window = report["window"]
    found: dict[str, Any] = dict.fromkeys(COLUMNS)
    found.update(window_start=window["start"], window_end=window["end"], endpoint=window.get("endpoint"),
                 model_package_arn=window.get("model_package_arn"), outcome=report["outcome"],
                 drifted=report.get("drift", {}).get("drifted", []), live_metrics={})
    for name, value in metrics.items():
        if name.startswith(LIVE) and column(name) not in COLUMNS:
            found["live_metrics"][name[len(LIVE)].lower() + name[len(LIVE) + 1:]] = value
        else:
            found[column(name)] = value
    unknown = sorted(set(found) - set(COLUMNS))
    if unknown:
        raise KeyError(f"metric columns {unknown} are not in contract/results.py COLUMNS; add them there")
    return found


def ddl(bucket: str, table: str = "mlkit.monitor_results") -> str:
    """The Athena table over the rows in `bucket` (docs/quicksight.md shows it for <DataBucketName>)."""
    columns = ",\n".join(f"  `{name}` {kind}" for name, kind in COLUMNS.items())
    return (f"CREATE EXTERNAL TABLE {table} (\n{columns}\n)\n"
            "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
            f"LOCATION 's3://{bucket}/{RESULTS}';")


def dataset_sql(task_metrics: Iterable[str], table: str = "mlkit.monitor_results") -> str:
    """A query QuickSight can take whole: it reads primitive columns only, so the list of drifted features is
    joined into text and each of `task_metrics` (processing/metrics.py's names, live_metrics' keys) becomes a
    column of its own."""
    parts = []
    for name, kind in COLUMNS.items():
        if kind == "array<string>":
            parts.append(f"array_join({name}, ', ') AS {name}")
        elif kind.startswith("map<"):
            parts += [f"element_at({name}, '{metric}') AS live_{metric}" for metric in task_metrics]
        else:
            parts.append(name)
    return "SELECT " + ",\n       ".join(parts) + f"\nFROM {table}"
