"""processing/metrics.py, the one module for metrics: each metric against scikit-learn on random data with ties, the
gate's direction, reading served answers, the processing script end to end, and the two Lambda functions that
ship it beside their handler (read_metrics, smoke_test)."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from sklearn import metrics as sk

from contract.data import TASKS
from tests.conftest import BUCKET, ROOT, load_lambda_module, load_processing_module

metrics = load_processing_module("metrics")
read_metrics = load_lambda_module("read_metrics", "handler")
smoke = load_lambda_module("smoke_test", "handler")


# The keys SageMaker's model registry reads model quality under (SageMaker developer guide, "Model quality
# metrics and Amazon CloudWatch monitoring": binary, multiclass and regression statistics).
REGISTRY_KEYS = {"binary": "binary_classification_metrics", "multiclass": "multiclass_classification_metrics",
                 "regression": "regression_metrics"}
# Labels, answers that match them, and answers that do not, per task (classes: binary 0/1, multiclass a/b/c).
CASES = {
    "binary": (["0", "1"], [0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.9, 0.8, 0.3, 0.7], [0.9, 0.6, 0.2, 0.4, 0.7, 0.3]),
    "multiclass": (["a", "b", "c"], [0, 1, 2, 0, 1, 2],
                   [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]] * 2,
                   [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]] * 2),
    "regression": (None, [1.0, 2.0, 3.0, 4.0], [1.1, 2.0, 2.9, 4.0], [4.0, 1.0, 1.0, 2.0]),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_each_metric_prefers_better_answers_in_the_direction_its_task_says(task):
    """What the task table must achieve, not what it holds: every metric of the task scores matching answers
    better than wrong ones in its stated direction, the gate is one of them, and the report's key is SageMaker's."""
    spec = metrics.BY_TASK[task]
    assert set(metrics.BY_TASK) == set(CASES) and spec.registry_key == REGISTRY_KEYS[task]
    assert spec.gate_metric in spec.metrics and spec.classification == (task != "regression")
    classes, labels, good, poor = CASES[task]
    scored = {which: metrics.measure(task, classes, labels, answers, list(spec.metrics))
              for which, answers in (("good", good), ("poor", poor))}
    for name, better in spec.metrics.items():
        assert better in ("higher", "lower"), name
        good_value, poor_value = scored["good"][name], scored["poor"][name]
        assert good_value > poor_value if better == "higher" else good_value < poor_value, (name, good_value, poor_value)


def test_the_module_uses_the_standard_library_and_the_contract_only():
    """It runs in the smoke-test function and the evaluation job, where only these are."""
    source = (ROOT / "processing" / "metrics.py").read_text()
    imported = {line.split()[1].split(".")[0] for line in source.splitlines()
                if line.startswith(("import ", "from ")) and "__future__" not in line}
    assert imported == {"argparse", "bisect", "csv", "io", "json", "math", "sys", "dataclasses", "pathlib", "typing",
                        "contract"}


def test_the_task_table_covers_the_contracts_tasks():
    assert tuple(metrics.BY_TASK) == TASKS


# -- each metric against scikit-learn ------------------------------------------------------------
def lines(values) -> str:
    return "".join(",".join(map(repr, v)) + "\n" if isinstance(v, (list, tuple)) else f"{v!r}\n" for v in values)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binary_metrics_match_scikit_learn_with_tied_scores(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 500)
    scores = np.round(np.clip(truth * 0.3 + rng.random(500) * 0.7, 0, 1), 1)  # one decimal: many ties
    classes = ["no", "yes"]
    report = metrics.evaluate("binary", classes, "".join(f"{classes[t]}\n" for t in truth), lines(scores.tolist()))
    found = {k: v["value"] for k, v in report["binary_classification_metrics"].items() if k != "confusion_matrix"}
    predicted = (scores >= 0.5).astype(int)
    precision, recall, f1, _ = sk.precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
    assert found == pytest.approx({"accuracy": sk.accuracy_score(truth, predicted),
                                   "auc": sk.roc_auc_score(truth, scores), "precision": precision, "recall": recall,
                                   "f1": f1}, abs=1e-12)
    (tn, fp), (fn, tp) = sk.confusion_matrix(truth, predicted)
    assert report["binary_classification_metrics"]["confusion_matrix"] == {"no": {"no": tn, "yes": fp},
                                                                          "yes": {"no": fn, "yes": tp}}
    assert all(v["standard_deviation"] == "NaN" for k, v in report["binary_classification_metrics"].items()
               if k != "confusion_matrix")


def test_binary_metrics_match_their_definitions():
    report = metrics.evaluate("binary", ["0", "1"], "0\n0\n1\n1\n", "0.1\n0.6\n0.4\n0.9\n")
    found = report["binary_classification_metrics"]
    assert found["auc"]["value"] == 0.75 and found["accuracy"]["value"] == 0.5
    assert found["confusion_matrix"] == {"0": {"0": 1, "1": 1}, "1": {"0": 1, "1": 1}}
    assert found["precision"]["value"] == found["recall"]["value"] == found["f1"]["value"] == 0.5


def test_the_auc_counts_a_tie_half_and_needs_both_classes():
    assert metrics.roc_auc([False, True, False, True], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert metrics.roc_auc([False, False, True, True], [0.1, 0.6, 0.4, 0.9]) == 0.75
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc([True, True], [0.2, 0.3])


@pytest.mark.parametrize("seed", [4, 5])
def test_multiclass_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    classes = ["10", "2", "cat", "dog"]
    truth = rng.integers(0, 4, 400)
    # Probabilities from a few fixed rows (each sums to 1): many ties in every class's scores, argmax ties too.
    palette = np.array([[0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25], [0.1, 0.6, 0.1, 0.2], [0.3, 0.3, 0.3, 0.1]])
    probabilities = np.array([np.roll(palette[rng.integers(0, 4)], t if rng.random() < 0.6 else rng.integers(0, 4))
                              for t in truth])
    report = metrics.evaluate("multiclass", classes, "".join(f"{classes[t]}\n" for t in truth),
                              lines(probabilities.tolist()))
    found = {k: v["value"] for k, v in report["multiclass_classification_metrics"].items() if k != "confusion_matrix"}
    predicted = probabilities.argmax(axis=1)  # the first of tied maxima, as the module
    precision, recall, f1, _ = sk.precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)
    assert found == pytest.approx({
        "accuracy": sk.accuracy_score(truth, predicted),
        "auc": sk.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"),
        "precision": precision, "recall": recall, "f1": f1}, abs=1e-12)
    matrix = sk.confusion_matrix(truth, predicted, labels=range(4))
    assert report["multiclass_classification_metrics"]["confusion_matrix"] == {
        classes[t]: {classes[p]: int(matrix[t, p]) for p in range(4)} for t in range(4)}
    # The monitor's baseline: how often each class was predicted.
    assert report["predictions"] == {"type": "categorical", "count": 400, "of": "predicted class", "frequencies": {
        c: float(np.mean(predicted == k)) for k, c in enumerate(classes)}}


def test_macro_scores_cover_the_classes_in_truth_or_predictions_and_the_auc_needs_every_class():
    truth, predicted = [0, 0, 1, 1], [0, 2, 1, 1]  # class 2 is predicted once and never true
    expected = sk.precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)[:3]
    assert metrics.precision_recall_f1(truth, predicted) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no label is 'c'"):
        metrics.evaluate("multiclass", ["a", "b", "c"], "a\nb\n", "0.5,0.3,0.2\n0.1,0.8,0.1\n")


@pytest.mark.parametrize("seed", [6, 7])
def test_regression_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    truth = np.round(rng.normal(100, 20, 300), 2)
    predicted = truth + rng.normal(0, 5, 300)
    report = metrics.evaluate("regression", None, lines(truth.tolist()), lines(predicted.tolist()))
    found = {k: v["value"] for k, v in report["regression_metrics"].items()}
    assert found == pytest.approx({"rmse": math.sqrt(sk.mean_squared_error(truth, predicted)),
                                   "mae": sk.mean_absolute_error(truth, predicted),
                                   "r2": sk.r2_score(truth, predicted)}, abs=1e-9)
    assert report["task"] == "regression" and report["classes"] is None
    # The monitor's baseline: exact percentiles (numpy's linear interpolation) and bins over the answers' range.
    distribution = report["predictions"]
    assert distribution["percentiles"] == pytest.approx(np.percentile(predicted, np.arange(101)).tolist(), abs=1e-9)
    counts, edges = np.histogram(predicted, bins=10)
    assert distribution["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert distribution["histogram"]["counts"] == counts.tolist() and distribution["type"] == "numeric"
    # A constant truth: r2 is 1 when matched exactly, else 0 (scikit-learn's convention).
    assert metrics.r2([3.0, 3.0], [3.0, 3.0]) == sk.r2_score([3.0, 3.0], [3.0, 3.0]) == 1.0
    assert metrics.r2([3.0, 3.0], [2.0, 3.0]) == sk.r2_score([3.0, 3.0], [2.0, 3.0]) == 0.0


def test_binary_answers_keep_their_bins_over_zero_to_one_with_exact_percentiles():
    scores = [0.2] * 60 + [0.9] * 40  # atoms: a percentile must be the value itself, not a hair off
    distribution = metrics.evaluate("binary", ["0", "1"], "0\n" * 60 + "1\n" * 40, lines(scores))["predictions"]
    assert distribution["percentiles"] == np.percentile(scores, np.arange(101)).tolist()
    counts, edges = np.histogram(scores, bins=10, range=(0, 1))
    assert distribution["histogram"] == {"edges": pytest.approx(edges.tolist()), "counts": counts.tolist()}
    assert (distribution["type"], distribution["count"], distribution["of"]) == ("numeric", 100, "probability")


def test_a_million_rows_take_seconds_not_hours():
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 1_000_000)
    scores = np.round(rng.random(1_000_000), 3)
    import time
    started = time.perf_counter()
    area = metrics.roc_auc((truth == 1).tolist(), scores.tolist())
    assert time.perf_counter() - started < 20
    assert area == pytest.approx(sk.roc_auc_score(truth, scores), abs=1e-12)


# -- the gate -------------------------------------------------------------------------------------
def regression_report(truth, predicted) -> dict:
    return metrics.evaluate("regression", None, lines(truth), lines(predicted))


def test_the_gate_follows_each_metrics_direction():
    report = regression_report([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])  # rmse 0.408, r2 0.75
    assert metrics.gate(report, "rmse", 0.5) == {"metric": "rmse", "value": pytest.approx(math.sqrt(1 / 6)),
                                                 "threshold": 0.5, "better": "lower", "passed": True}
    assert not metrics.gate(report, "rmse", 0.4)["passed"]  # lower is better: 0.408 is above 0.4
    assert metrics.gate(report, "r2", 0.75)["passed"] and not metrics.gate(report, "r2", 0.76)["passed"]
    with pytest.raises(ValueError, match="'auc' is not a regression metric; choose one of rmse, mae, r2"):
        metrics.gate(report, "auc", 0.8)
    assert metrics.resolve_gate("binary") == ("auc", 0.8) and metrics.resolve_gate("multiclass") == ("accuracy", 0.8)
    assert metrics.resolve_gate("regression", "mae", 2) == ("mae", 2.0)
    with pytest.raises(ValueError, match="task 'ranking' is not one of binary, multiclass, regression"):
        metrics.resolve_gate("ranking")
    with pytest.raises(ValueError, match="finite number"):
        metrics.resolve_gate("binary", "auc", math.nan)


# -- reading answers and labels -------------------------------------------------------------------
@pytest.mark.parametrize("task, classes, answers, message", [
    ("binary", ["0", "1"], "0.2\n0.3,0.7\n", "line 2 has 2 values ('0.3,0.7'); a binary model answers one "
                                             "probability (of '1') per line"),
    ("binary", ["0", "1"], "0.2\nyes\n", "line 2: 'yes' is not a probability (a number from 0 to 1)"),
    ("binary", ["0", "1"], "0.2\n1.5\n", "line 2: '1.5' is not a probability"),
    ("binary", ["0", "1"], "nan\n0.2\n", "line 1: 'nan' is not a probability"),
    ("multiclass", ["a", "b", "c"], "0.2,0.3,0.5\n0.5,0.5\n", "line 2 has 2 values ('0.5,0.5'); a multiclass model "
                                                             "answers 3 probabilities (classes 'a', 'b', 'c')"),
    ("multiclass", ["a", "b", "c"], "0.2,x,0.5\n", "line 1: 'x' is not a probability"),
    ("regression", None, "1.5\n2,3\n", "line 2 has 2 values"),
    ("regression", None, "1.5\ninf\n", "line 2: 'inf' is not a finite number; a regression model answers one "
                                       "predicted value per line"),
    ("regression", None, "1_000\n", "line 1: '1_000' is not a finite number"),
])
def test_a_wrong_answer_is_named_by_its_line(task, classes, answers, message):
    with pytest.raises(ValueError) as error:
        metrics.parse_answers(task, classes, answers, "out/part-0.out")
    assert str(error.value).startswith("out/part-0.out line") and message in str(error.value)


def test_a_batch_transforms_bracketed_rows_are_the_endpoints_probabilities():
    """Built-in XGBoost's server writes a multiclass row as "[p0, p1, p2]" in a batch transform, "p0,p1,p2" on an
    endpoint (sagemaker-xgboost-container 1.7-1, algorithm_mode/serve.py)."""
    classes = ["a", "b", "c"]
    assert metrics.parse_answers("multiclass", classes, "[0.2, 0.3, 0.5]\n[0.7, 0.2, 0.1]\n") == \
        metrics.parse_answers("multiclass", classes, "0.2,0.3,0.5\n0.7,0.2,0.1\n") == [[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]]
    with pytest.raises(ValueError, match="line 1 has 2 values"):
        metrics.parse_answers("multiclass", classes, "[0.5, 0.5]\n")


def test_labels_must_be_classes_or_numbers_and_match_the_answers_in_number():
    with pytest.raises(ValueError, match=r"labels.csv line 2: 'maybe' is not one of the 2 classes \('no', 'yes'\)"):
        metrics.parse_labels("binary", ["no", "yes"], "yes\nmaybe\n", "labels.csv")
    with pytest.raises(ValueError, match="line 1: 'high' is not a finite number"):
        metrics.parse_labels("regression", None, "high\n")
    with pytest.raises(ValueError, match="3 answers for 2 labels"):
        metrics.evaluate("binary", ["0", "1"], "0\n1\n", "0.1\n0.2\n0.3\n")
    with pytest.raises(ValueError, match="a binary task needs 2 distinct classes"):
        metrics.evaluate("binary", ["0", "1", "2"], "0\n", "0.1\n")


# -- the processing script ------------------------------------------------------------------------
def job_folders(tmp_path, task, classes, labels: str, outputs: dict[str, str]):
    for folder in ("predictions", "labels", "params"):
        (tmp_path / folder).mkdir()
    (tmp_path / "params" / "features.json").write_text(json.dumps({"task": task, "classes": classes, "other": 1}))
    (tmp_path / "labels" / "labels.csv").write_text(labels)
    for name, text in outputs.items():
        (tmp_path / "predictions" / name).write_text(text)
    return [f"--{f}-dir={tmp_path / f}" for f in ("predictions", "labels", "params")] + \
        [f"--output-dir={tmp_path / 'evaluation'}"]


def test_the_script_evaluates_batch_transform_output_in_file_order(tmp_path, capsys):
    # Two output files, the second without a final newline (as a transform's last record may end).
    args = job_folders(tmp_path, "binary", ["0", "1"], "0\n0\n1\n1\n",
                       {"test.csv.2.out": "0.6\n0.9", "test.csv.1.out": "0.1\n0.4\n"})
    assert metrics.main(args) == 0
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] == 1.0
    assert report["binary_classification_metrics"]["accuracy"]["value"] == 1.0
    assert report["gate"] == {"metric": "auc", "value": 1.0, "threshold": 0.8, "better": "higher", "passed": True}
    assert (report["task"], report["classes"], report["predictions"]["count"]) == ("binary", ["0", "1"], 4)
    assert capsys.readouterr().out.startswith("binary: auc 1 (>= 0.8 to pass): passed; accuracy 1, auc 1")


def test_the_script_takes_the_gate_it_is_given(tmp_path, capsys):
    args = job_folders(tmp_path, "regression", None, "1\n2\n3\n", {"part.out": "1.5\n2\n2.5\n"})
    assert metrics.main([*args, "--gate-metric", "rmse", "--gate-threshold", "0.3"]) == 0
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert report["gate"]["better"] == "lower" and report["gate"]["passed"] is False
    assert "rmse 0.408248 (<= 0.3 to pass): FAILED" in capsys.readouterr().out


def test_the_script_compares_the_groups_of_a_bias_column_on_the_raw_test_rows(tmp_path, monkeypatch):
    """--group-columns names features of the raw test rows (--groups-dir: the rows a client sends, line-aligned
    with the labels): the gate metric per group of enough rows, the rate of each group, and their gap."""
    monkeypatch.setattr(metrics, "MIN_GROUP_ROWS", 4)
    labels = "0\n1\n0\n1\n0\n1\n0\n1\n"
    args = job_folders(tmp_path, "binary", ["0", "1"], labels, {"a.out": "0.1\n0.9\n0.2\n0.8\n0.9\n0.1\n0.3\n0.6\n"})
    (tmp_path / "params" / "features.json").write_text(json.dumps({"task": "binary", "classes": ["0", "1"],
                                                                   "features": ["x", "region"]}))
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "test.csv").write_text("1, north\n2,north\n3,north\n4,north\n5,south\n6,south\n7,south\n"
                                                  "8,south\n")
    assert metrics.main([*args, f"--groups-dir={tmp_path / 'groups'}", "--group-columns", "region"]) == 0
    bias = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())["bias"]
    assert bias == {"region": {"groups": {"north": {"rows": 4, "positive_rate": 0.5, "auc": 1.0},
                                          "south": {"rows": 4, "positive_rate": 0.5, "auc": 0.25}},
                               "gap": 0.75}}
    assert metrics.main([*args, f"--groups-dir={tmp_path / 'groups'}", "--group-columns", "city"]) == 1


@pytest.mark.parametrize("change, message", [
    (lambda t: (t / "predictions" / "b.out").write_text("0.2\n0.7,0.1\n"), "b.out line 2 has 2 values"),
    (lambda t: (t / "labels" / "labels.csv").write_text("0\n1\n"), "3 answers for 2 labels"),
    (lambda t: (t / "params" / "features.json").write_text('{"task": "ranking"}'),
     "features.json has task 'ranking'; it must be one of binary, multiclass, regression"),
    (lambda t: (t / "params" / "features.json").write_text("{"), "features.json is not JSON"),
    (lambda t: (t / "labels" / "labels.csv").unlink(), "no file labels.csv in"),
    (lambda t: (t / "predictions" / "b.out").write_bytes(b"\xff\n"), "b.out is not UTF-8 text"),
])
def test_the_script_names_bad_input_and_exits_1(tmp_path, capsys, change, message):
    args = job_folders(tmp_path, "binary", ["0", "1"], "0\n1\n1\n", {"a.out": "0.1\n", "b.out": "0.2\n0.7\n"})
    assert metrics.main(args) == 0  # as given, it evaluates
    change(tmp_path)
    (tmp_path / "evaluation" / "evaluation.json").unlink()
    assert metrics.main(args) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "evaluation" / "evaluation.json").exists()
    assert metrics.main([*args, "--gate-metric", "rmse"]) == 1


# -- read_metrics ---------------------------------------------------------------------------------
def test_read_metrics_returns_the_task_the_gate_and_the_tasks_metrics(s3):
    report = regression_report([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    report["gate"] = metrics.gate(report, "mae", 0.5)
    s3.put_object(Bucket=BUCKET, Key="runs/r1/evaluation/evaluation.json", Body=json.dumps(report).encode())
    found = read_metrics.handler({"evaluation_uri": f"s3://{BUCKET}/runs/r1/evaluation/evaluation.json"}, None, s3)
    assert found == {"task": "regression", "gate": report["gate"], "metrics": {
        "rmse": pytest.approx(math.sqrt(1 / 6)), "mae": pytest.approx(1 / 3), "r2": 0.75}}
    with pytest.raises(ValueError, match="evaluation_uri must be"):
        read_metrics.handler({"evaluation_uri": "s3://other/runs/r1/evaluation/evaluation.json"}, None, s3)


# -- the smoke test -------------------------------------------------------------------------------
class Runtime:
    """sagemaker-runtime's InvokeEndpoint, answering each raw row with `answer(row)` per the model contract."""

    def __init__(self, answer):
        self.answer, self.requests = answer, []

    def invoke_endpoint(self, EndpointName, ContentType, Accept, Body):  # noqa: N803 (boto3's names)
        rows = Body.decode().splitlines()
        self.requests.append((EndpointName, ContentType, Accept, len(rows)))
        return {"Body": io.BytesIO("".join(f"{self.answer(row)}\n" for row in rows).encode())}


def register(s3, task, classes, rows: list[str], labels: list[str], answers: list, gate_metric: str) -> dict:
    """A registered version's files as BuildAndRegister leaves them, its evaluation made from `answers`."""
    report = metrics.evaluate(task, classes, "".join(f"{v}\n" for v in labels), lines(answers))
    report["gate"] = metrics.gate(report, gate_metric, 0.0)  # the smoke test compares values, not the verdict
    files = {"evaluation/evaluation.json": json.dumps(report), "input/raw/test.csv": "".join(f"{r}\n" for r in rows),
             "input/test-labels/labels.csv": "".join(f"{v}\n" for v in labels)}
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"runs/r1/{key}", Body=body.encode())
    return {"evaluation": f"s3://{BUCKET}/runs/r1/evaluation/evaluation.json",
            "test_data": f"s3://{BUCKET}/runs/r1/input/raw/test.csv",
            "test_labels": f"s3://{BUCKET}/runs/r1/input/test-labels/labels.csv", "rows": 1000, "tolerance": 0.02}


def smoke_run(monkeypatch, event, runtime, **changes) -> dict:
    monkeypatch.setenv("BUILD_DATA_BUCKET", BUCKET)
    monkeypatch.setenv("ENDPOINT_NAME", "ep")
    import boto3
    return smoke.handler({**event, **changes}, None, boto3.client("s3", region_name="us-east-1"), runtime)


def sample(seed: int, rows: int):
    rng = np.random.default_rng(seed)
    x = np.round(rng.random(rows), 3)
    return rng, x, [f"{v},blue" for v in x]  # raw rows: a number and a category


def test_the_smoke_test_measures_a_binary_endpoints_gate_metric(s3, monkeypatch):
    rng, x, rows = sample(1, 450)
    labels = ["yes" if v + rng.normal(0, 0.2) > 0.5 else "no" for v in x]
    event = register(s3, "binary", ["no", "yes"], rows, labels, x.tolist(), "auc")
    registered = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/r1/evaluation/evaluation.json")["Body"].read())
    runtime = Runtime(lambda row: row.split(",")[0])  # answers exactly as at registration
    result = smoke_run(monkeypatch, event, runtime)
    auc = registered["gate"]["value"]
    assert result["passed"] and result["measured"] == pytest.approx(auc) and result["rows"] == 450
    assert result["summary"] == (f"Smoke test passed on 450 registered test rows: auc {auc:.6g} (registered "
                                 f"{auc:.6g}); tolerance 0.02.")
    assert [r[3] for r in runtime.requests] == [200, 200, 50] and runtime.requests[0][:3] == ("ep", "text/csv",
                                                                                             "text/csv")
    # A model that answers differently: out of tolerance; only the first `rows` rows are sent.
    worse = smoke_run(monkeypatch, event, Runtime(lambda row: round(1 - float(row.split(",")[0]), 3)), rows=100)
    assert not worse["passed"] and worse["rows"] == 100
    assert worse["summary"].startswith("Smoke test FAILED on 100 registered test rows: auc ")


def test_the_smoke_test_measures_multiclass_and_regression_endpoints(s3, monkeypatch):
    rng, x, rows = sample(2, 300)
    classes = ["high", "low", "mid"]
    probabilities = {row: [round(v, 3), round((1 - v) / 2, 3), round((1 - v) / 2, 3)] for row, v in zip(rows, x.tolist())}
    labels = [classes[int(np.argmax(probabilities[r]))] if rng.random() < 0.8 else "mid" for r in rows]
    event = register(s3, "multiclass", classes, rows, labels, [probabilities[r] for r in rows], "accuracy")
    result = smoke_run(monkeypatch, event, Runtime(lambda row: ",".join(map(str, probabilities[row]))))
    assert result["passed"] and result["metric"] == "accuracy" and result["measured"] == result["registered"]
    # The one-vs-rest AUC needs every class among the rows sent: with too few it fails, saying why.
    event = register(s3, "multiclass", classes, rows, labels, [probabilities[r] for r in rows], "auc")
    few = smoke_run(monkeypatch, event, Runtime(lambda row: ",".join(map(str, probabilities[row]))), rows=1)
    assert not few["passed"] and "auc cannot be measured (the one-vs-rest AUC needs rows of every class" in \
        few["summary"]

    truth = (x * 100 + rng.normal(0, 5, 300)).round(1)
    event = register(s3, "regression", None, rows, truth.tolist(), (x * 100).tolist(), "rmse")
    result = smoke_run(monkeypatch, event, Runtime(lambda row: float(row.split(",")[0]) * 100), tolerance=0.001)
    assert result["passed"] and result["metric"] == "rmse"
    drifted = smoke_run(monkeypatch, event, Runtime(lambda row: float(row.split(",")[0]) * 100 + 1), tolerance=0.001)
    assert not drifted["passed"] and "tolerance 0.001" in drifted["summary"]


def test_the_smoke_test_refuses_answers_that_break_the_model_contract(s3, monkeypatch):
    _, x, rows = sample(3, 20)
    event = register(s3, "binary", ["0", "1"], rows, ["0", "1"] * 10, x.tolist(), "auc")
    with pytest.raises(ValueError, match="ep's answer to rows 1-20 line 1 has 2 values"):
        smoke_run(monkeypatch, event, Runtime(lambda row: "0.1,0.9"))
    with pytest.raises(ValueError, match="ep's answer to rows 1-20 has 40 lines; the model contract is one line "
                                         "per row"):
        smoke_run(monkeypatch, event, Runtime(lambda row: "0.1\n0.9"))


def test_the_functions_ship_the_module_itself_beside_their_handlers(synthesized):
    """lambda/<function>/metrics.py is a link to processing/metrics.py; the asset holds a copy of its target, and
    of the contract it imports."""
    shipped = list(synthesized["default"].outdir.glob("asset.*/metrics.py"))
    assert sorted(p.with_name("handler.py").read_text() for p in shipped) == sorted(
        (ROOT / "lambda" / function / "handler.py").read_text() for function in ("compare_shadow", "read_metrics", "smoke_test"))
    for path in shipped:
        assert not path.is_symlink() and path.read_bytes() == (ROOT / "processing" / "metrics.py").read_bytes()
        assert (path.parent / "contract" / "data.py").read_bytes() == (ROOT / "contract" / "data.py").read_bytes()
