"""The monitor's results table (contract/results.py): each window's row, written by PublishMetrics beside its
CloudWatch metrics, is what the documented Athena table reads (docs/quicksight.md)."""
from __future__ import annotations

import json

import pytest

from contract import results
from processing import metrics
from stacks.workflows.monitor_endpoint import MONITOR_METRICS
from tests.conftest import BUCKET, ROOT, load_lambda_module

published = load_lambda_module("publish_metrics", "handler")
ATHENA_TYPES = {"string": str, "bigint": int, "double": (int, float), "array<string>": list,
                "map<string,double>": dict}

REPORT = {"window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "endpoint": "mlkit-da-endpoint",
                     "model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/mlkit-br-models/2"},
          "outcome": "Drift", "rows": 3, "requests": 1, "drift": {"share": 0.5, "drifted": ["x"]},
          "data_quality": {"violations": 1}, "predictions": {"psi": 0.5},
          "model_quality": {"rows": 3, "metrics": {name: 0.5 for task in ("binary", "regression")
                                                   for name in metrics.task_of(task).metrics},
                            "gate": {"metric": "auc", "better": "higher", "registered": 0.6, "live": 0.5,
                                     "worsening": 0.1}},
          "bias": {"region": {"widening": 0.3}}, "attribution": {"outcome": "NoDrift", "ndcg": 0.97}}


def typed(row: dict) -> list[str]:
    """Columns whose value Athena's JSON SerDe could not read as the column's type (null reads as null)."""
    wrong = [name for name, kind in results.COLUMNS.items()
             if row[name] is not None
             and (not isinstance(row[name], ATHENA_TYPES[kind]) or isinstance(row[name], bool))]
    wrong += [name for name in ("drifted",) if not all(isinstance(v, str) for v in row[name])]
    wrong += [name for name in ("live_metrics",) if not all(isinstance(v, (int, float)) for v in row[name].values())]
    return wrong


def test_every_published_metric_has_its_column_and_every_value_its_type():
    numbers = {name: value for name, (value, _) in published.metrics(REPORT).items()}
    assert set(numbers) == set(MONITOR_METRICS)
    row = results.row(REPORT, numbers)
    assert list(row) == list(results.COLUMNS) and typed(row) == []
    assert row["live_metrics"] == {name: 0.5 for name in REPORT["model_quality"]["metrics"]}
    assert (row["rows_checked"], row["drift_share"], row["bias_gap_widening"], row["attribution_ndcg"]) == (
        3, 0.5, 0.3, 0.97)


def test_a_quiet_window_is_a_row_of_nulls_but_its_outcome():
    quiet = {"window": REPORT["window"], "outcome": "NoTraffic", "rows": 0, "requests": 0}
    row = results.row(quiet, {name: value for name, (value, _) in published.metrics(quiet).items()})
    assert row["outcome"] == "NoTraffic" and row["rows_checked"] == 0 and row["drift_share"] is None
    assert typed(row) == []


def test_a_metric_without_a_column_is_refused_naming_the_module():
    with pytest.raises(KeyError, match="metric columns \\['new_metric'\\] are not in contract/results.py COLUMNS"):
        results.row(REPORT, {"NewMetric": 1.0})


class Recorder:
    def __init__(self):
        self.calls = []

    def put_metric_data(self, **call):
        self.calls.append(call)


def test_publish_metrics_writes_the_windows_row_once_as_one_json_line(s3, monkeypatch):
    monkeypatch.setenv("NAMESPACE", "mlkit-mon")
    monkeypatch.setenv("ENDPOINT_NAME", "mlkit-da-endpoint")
    key = "runs/monitor-2026010101/report/report.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(REPORT).encode())
    event = {"report_uri": f"s3://{BUCKET}/{key}"}
    published.handler(event, None, s3_client=s3, cloudwatch_client=Recorder())
    body = s3.get_object(Bucket=BUCKET, Key="results/monitor/monitor-2026010101.json")["Body"].read().decode()
    assert body.endswith("\n") and body.count("\n") == 1  # one line: what Athena's JSON SerDe reads
    assert json.loads(body)["drift_share"] == 0.5
    # A retry of the same run (the function retried after a partial success) goes on; the row stays the first one.
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**REPORT, "rows": 99}).encode())
    published.handler(event, None, s3_client=s3, cloudwatch_client=Recorder())
    again = s3.get_object(Bucket=BUCKET, Key="results/monitor/monitor-2026010101.json")["Body"].read().decode()
    assert again == body


def test_the_documented_athena_table_and_query_are_the_ones_the_rows_are_written_for():
    page = (ROOT / "docs" / "quicksight.md").read_text()
    assert results.ddl("<DataBucketName>") in page
    every_metric = sorted({name for task in ("binary", "multiclass", "regression")
                           for name in metrics.task_of(task).metrics})
    query = results.dataset_sql(every_metric)
    assert query in page and "element_at(live_metrics, 'rmse') AS live_rmse" in query  # no error on a missing key
    assert "drifted_features" in query and "array_join(drifted, ', ') AS drifted" in query
