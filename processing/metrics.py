"""The kit's one module for model metrics: which metrics each task reports and which way each is better, the gate,
how a served model's answers are read, and the evaluation report. Standard library only: it runs as a SageMaker
Processing script, beside the smoke-test Lambda handler, and the CDK stack imports BY_TASK to validate settings.

A served model answers CSV, one line per row: binary -> the probability of classes[1]; multiclass -> K
probabilities in `classes` order (the prediction is the most probable class, the first on a tie); regression ->
the predicted value. Binary predicts classes[1] at a probability of 0.5 or more.

The report is Model Registry's model-quality JSON (`{<registry key>: {metric: {"value", "standard_deviation"}}}`),
plus `task`, `classes`, the `gate` verdict and `predictions`, the distribution of the answers on the test set that
the monitor (processing/monitor.py) compares the endpoint's answers with:
- binary: numeric, the probabilities: their 101 exact percentiles and 10 histogram bins over [0, 1];
- multiclass: categorical, the frequencies of the predicted classes. Chosen over the top-class probability
  because it keeps which class moved, and the monitor tests it as it tests a categorical feature (PSI, chi-square);
- regression: numeric, the predicted values: percentiles and 10 bins over their [min, max] on the test set (the
  monitor's outer bins take values beyond).

As a processing script:
  python metrics.py --predictions-dir P --labels-dir L --params-dir F [--gate-metric M --gate-threshold X]
                    --output-dir O
reads the answers (every file under P, sorted by path: batch transform's *.out), the labels (L's labels.csv, the
user's label text, one line per test row) and F's features.json (task, classes); writes O/evaluation.json.
"""
from __future__ import annotations

import argparse
import bisect
import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from contract.data import TASKS, BadInput

HIGHER, LOWER = "higher", "lower"
THRESHOLD = 0.5  # binary: the probability from which classes[1] is predicted
BINS = 10


@dataclass(frozen=True)
class Task:
    registry_key: str
    metrics: dict  # the scalar metrics, in report order -> which way is better (each one can gate)
    gate_metric: str  # the default gate
    gate_threshold: float
    classification: bool  # reports a confusion matrix too, keyed by class text


CLASSIFICATION = {"accuracy": HIGHER, "auc": HIGHER, "precision": HIGHER, "recall": HIGHER, "f1": HIGHER}
BY_TASK = {  # each of the contract's TASKS (a test holds the two to the same tasks)
    "binary": Task("binary_classification_metrics", CLASSIFICATION, "auc", 0.8, True),
    "multiclass": Task("multiclass_classification_metrics", CLASSIFICATION, "accuracy", 0.8, True),
    "regression": Task("regression_metrics", {"rmse": LOWER, "mae": LOWER, "r2": HIGHER}, "r2", 0.5, False),
}


# -- settings ---------------------------------------------------------------------------------
def task_of(name: str) -> Task:
    if not isinstance(name, str) or name not in TASKS:
        raise BadInput(f"task {name!r} is not one of {', '.join(TASKS)}")
    return BY_TASK[name]


def resolve_gate(task: str, metric: str | None = None, threshold: float | None = None) -> tuple[str, float]:
    """The gate's metric and threshold: the given ones, checked, else the task's defaults."""
    spec = task_of(task)
    metric = spec.gate_metric if metric is None else metric
    if metric not in spec.metrics:
        raise BadInput(f"gate metric {metric!r} is not a {task} metric; choose one of {', '.join(spec.metrics)}")
    if threshold is None:
        return metric, spec.gate_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise BadInput(f"gate threshold {threshold!r} must be a finite number")
    return metric, float(threshold)


# -- metrics ----------------------------------------------------------------------------------
def accuracy(truth: Sequence, predicted: Sequence) -> float:
    return sum(t == p for t, p in zip(truth, predicted)) / len(truth)


def roc_auc(positive: Sequence[bool], scores: Sequence[float]) -> float:
    """ROC AUC from average ranks (Mann-Whitney): the chance that a positive outscores a negative, a tie counting
    half. One sort, so a million rows take seconds."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    positives = sum(1 for p in positive if p)
    negatives = len(positive) - positives
    if not positives or not negatives:
        raise BadInput("the AUC needs rows of both classes; every label is the same")
    rank_sum, start = 0.0, 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        shared_rank = (start + end) / 2 + 1  # tied scores share the mean of their ranks
        rank_sum += shared_rank * sum(1 for i in order[start:end + 1] if positive[i])
        start = end + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def macro_auc(truth: Sequence[int], probabilities: Sequence[Sequence[float]], classes: Sequence[str]) -> float:
    """One-vs-rest AUC of each class, averaged; every class must be among the labels."""
    missing = sorted(set(range(len(classes))) - set(truth))
    if missing:
        raise BadInput(f"the one-vs-rest AUC needs rows of every class; no label is {classes[missing[0]]!r}")
    return sum(roc_auc([t == k for t in truth], [row[k] for row in probabilities])
               for k in range(len(classes))) / len(classes)


def _counts(truth: Sequence[int], predicted: Sequence[int], classes: int) -> list[list[int]]:
    """counts[true class][predicted class], in one pass."""
    counts = [[0] * classes for _ in range(classes)]
    for t, p in zip(truth, predicted):
        counts[t][p] += 1
    return counts


def precision_recall_f1(truth: Sequence[int], predicted: Sequence[int],
                        positive: int | None = None) -> tuple[float, float, float]:
    """Of the `positive` class, or (None) the macro average over the classes seen in truth or predictions (as
    scikit-learn); an undefined ratio (nothing predicted, or nothing present) counts 0."""
    counts = _counts(truth, predicted, max(max(truth), max(predicted), positive or 0) + 1)
    ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
    scores = []
    for k in ([positive] if positive is not None else sorted(set(truth) | set(predicted))):
        precision = ratio(counts[k][k], sum(row[k] for row in counts))
        recall = ratio(counts[k][k], sum(counts[k]))
        scores.append((precision, recall, ratio(2 * precision * recall, precision + recall)))
    return tuple(sum(s[i] for s in scores) / len(scores) for i in range(3))


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int], classes: Sequence[str]) -> dict:
    """{true class: {predicted class: count}} over every class, as Model Registry shows it."""
    counts = _counts(truth, predicted, len(classes))
    return {classes[t]: {classes[p]: counts[t][p] for p in range(len(classes))} for t in range(len(classes))}


def rmse(truth: Sequence[float], predicted: Sequence[float]) -> float:
    return math.sqrt(math.fsum((t - p) ** 2 for t, p in zip(truth, predicted)) / len(truth))


def mae(truth: Sequence[float], predicted: Sequence[float]) -> float:
    return math.fsum(abs(t - p) for t, p in zip(truth, predicted)) / len(truth)


def r2(truth: Sequence[float], predicted: Sequence[float]) -> float:
    """1 - residual / total sum of squares; constant truth gives 1 when matched exactly, else 0 (as scikit-learn)."""
    mean = math.fsum(truth) / len(truth)
    total = math.fsum((t - mean) ** 2 for t in truth)
    residual = math.fsum((t - p) ** 2 for t, p in zip(truth, predicted))
    return (1.0 if residual == 0 else 0.0) if total == 0 else 1 - residual / total


# -- reading answers and labels ---------------------------------------------------------------
def _number(text: str) -> float | None:
    """A finite number written as such (float() alone also takes '1_0', 'nan' and 'inf')."""
    if "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines."""
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_answers(task: str, classes: Sequence[str] | None, text: str, source: str = "the answers") -> list:
    """Binary: probabilities; multiclass: rows of K probabilities; regression: values."""
    spec = task_of(task)
    width = len(classes) if task == "multiclass" else 1
    expected = {"binary": f"one probability (of {classes[1]!r})" if classes else "one probability",
                "multiclass": f"{width} probabilities (classes {', '.join(map(repr, classes or []))})",
                "regression": "one predicted value"}[task]
    answers = []
    for number, line in _lines(text):
        # A batch transform of built-in XGBoost writes each row as Python prints a list, "[p0, p1, p2]" (its server
        # under SAGEMAKER_BATCH); an endpoint answers "p0,p1,p2". Both are the same K probabilities.
        if line.startswith("[") and line.endswith("]"):
            line = line[1:-1]
        values = [_number(v) for v in line.split(",")]
        if len(values) != width:
            raise BadInput(f"{source} line {number} has {len(values)} values ({line[:80]!r}); a {task} model answers "
                           f"{expected} per line")
        bad = next((v for v, n in zip(line.split(","), values) if n is None or spec.classification
                    and not 0 <= n <= 1), None)
        if bad is not None:
            raise BadInput(f"{source} line {number}: {bad.strip()!r} is not a "
                           f"{'probability (a number from 0 to 1)' if spec.classification else 'finite number'}; "
                           f"a {task} model answers {expected} per line")
        answers.append(values if task == "multiclass" else values[0])
    return answers


def parse_labels(task: str, classes: Sequence[str] | None, text: str, source: str = "the labels") -> list:
    """Classification: each label's index in `classes`; regression: the numbers."""
    index = {c: i for i, c in enumerate(classes or [])}
    labels = []
    for number, line in _lines(text):
        value = _number(line) if task == "regression" else index.get(line)
        if value is None:
            what = ("a finite number" if task == "regression" else
                    f"one of the {len(classes)} classes ({', '.join(map(repr, classes[:20]))})")
            raise BadInput(f"{source} line {number}: {line[:80]!r} is not {what}")
        labels.append(value)
    return labels


def check_classes(task: str, classes: Sequence[str] | None) -> list[str] | None:
    """Classification: the class texts (2 for binary, 2 or more for multiclass, distinct); regression: None."""
    if not task_of(task).classification:
        return None
    if (not isinstance(classes, list) or len(classes) < 2 or (task == "binary" and len(classes) != 2)
            or len(set(map(str, classes))) != len(classes)):
        raise BadInput(f"a {task} task needs {'2' if task == 'binary' else '2 or more'} distinct classes, "
                       f"got {classes!r}")
    return [str(c) for c in classes]


def predicted_classes(task: str, answers: list) -> list[int]:
    if task == "binary":
        return [int(p >= THRESHOLD) for p in answers]
    return [max(range(len(row)), key=row.__getitem__) for row in answers]


# -- the report -------------------------------------------------------------------------------
def measure(task: str, classes: Sequence[str] | None, labels: list, answers: list,
            names: Sequence[str] | None = None) -> dict:
    """The task's metrics (`names`, default all, with confusion_matrix for classification), {name: value}: only
    those asked are computed, so a metric these rows cannot give (an AUC without every class) fails only if asked."""
    if not labels or len(labels) != len(answers):
        raise BadInput(f"{len(answers)} answers for {len(labels)} labels; evaluation needs one answer per test row")
    spec = task_of(task)
    names = [*spec.metrics, *(["confusion_matrix"] if spec.classification else [])] if names is None else names
    if not spec.classification:
        compute = {"rmse": rmse, "mae": mae, "r2": r2}
        return {name: compute[name](labels, answers) for name in names}
    predicted = predicted_classes(task, answers)
    positive = 1 if task == "binary" else None  # binary: of classes[1]; multiclass: the macro average
    compute = {
        "accuracy": lambda: accuracy(labels, predicted),
        "auc": lambda: (roc_auc([t == 1 for t in labels], answers) if task == "binary"
                        else macro_auc(labels, answers, classes)),
        **{name: (lambda i=i: precision_recall_f1(labels, predicted, positive)[i])
           for i, name in enumerate(("precision", "recall", "f1"))},
        "confusion_matrix": lambda: confusion_matrix(labels, predicted, classes)}
    return {name: compute[name]() for name in names}


def gate(report: dict, metric: str, threshold: float) -> dict:
    """Whether the report's `metric` meets `threshold` in the metric's better direction."""
    task = report["task"]
    metric, threshold = resolve_gate(task, metric, threshold)
    value = report[BY_TASK[task].registry_key][metric]["value"]
    better = BY_TASK[task].metrics[metric]
    passed = value >= threshold if better == HIGHER else value <= threshold
    return {"metric": metric, "value": value, "threshold": threshold, "better": better, "passed": passed}


def percentile(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default); exact at repeated values."""
    position = p / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    a, b = ordered[low], ordered[high]
    return a if a == b else a + (b - a) * (position - low)


def numeric_distribution(values: Sequence[float], low: float | None = None, high: float | None = None) -> dict:
    """101 exact percentiles (rounded ones would move the distribution function: at many equal values, one a hair
    below its rounded percentile falls outside it and the monitor's KS test sees drift that is not there) and a
    histogram over [low, high] (default the values' range)."""
    ordered = sorted(values)
    low = ordered[0] if low is None else low
    high = ordered[-1] if high is None else high
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = [low + (high - low) * i / BINS for i in range(BINS)] + [high]
    counts = [0] * BINS
    for value in ordered:  # the last bin includes its right edge; values beyond the range count in the outer bins
        counts[min(max(bisect.bisect_right(edges, value) - 1, 0), BINS - 1)] += 1
    return {"type": "numeric", "count": len(ordered), "percentiles": [percentile(ordered, p) for p in range(101)],
            "histogram": {"edges": edges, "counts": counts}}


def distribution(task: str, classes: Sequence[str] | None, answers: list) -> dict:
    """The answers' distribution the monitor compares the endpoint's with (see the module docstring)."""
    if task == "multiclass":
        predicted = predicted_classes(task, answers)
        return {"type": "categorical", "count": len(predicted), "of": "predicted class",
                "frequencies": {c: predicted.count(k) / len(predicted) for k, c in enumerate(classes)}}
    if task == "binary":
        return {**numeric_distribution(answers, 0.0, 1.0), "of": "probability"}
    return {**numeric_distribution(answers), "of": "predicted value"}


def evaluate(task: str, classes: Sequence[str] | None, labels_text: str, answers_text: str) -> dict:
    """The model-quality report (without the gate) of the answers to the test rows whose labels are given."""
    classes = check_classes(task, classes)
    return report(task, classes, parse_labels(task, classes, labels_text),
                  parse_answers(task, classes, answers_text))


def report(task: str, classes: list[str] | None, labels: list, answers: list) -> dict:
    measured = measure(task, classes, labels, answers)
    value = lambda v: {"value": v, "standard_deviation": "NaN"}  # noqa: E731  (the registry's shape)
    metrics = {name: value(measured[name]) for name in BY_TASK[task].metrics}
    if "confusion_matrix" in measured:
        metrics["confusion_matrix"] = measured["confusion_matrix"]
    return {BY_TASK[task].registry_key: metrics, "task": task, "classes": classes,
            "predictions": distribution(task, classes, answers)}


# -- groups: the gate metric across the values of a column (bias) -------------------------------------------------
MIN_GROUP_ROWS = 100  # a group's metric counts from this many rows: with fewer, chance alone opens wide gaps


def group_rates(task: str, classes: Sequence[str] | None, answers: list) -> dict:
    """What the model says of a group, labels or not: binary, the share predicted classes[1]; multiclass, the share
    predicted as each class; regression, the mean predicted value."""
    if task == "regression":
        return {"mean_prediction": math.fsum(answers) / len(answers)}
    predicted = predicted_classes(task, answers)
    if task == "binary":
        return {"positive_rate": sum(predicted) / len(predicted)}
    return {"predicted": {c: predicted.count(k) / len(predicted) for k, c in enumerate(classes)}}


def groups(task: str, classes: Sequence[str] | None, labels: list | None, answers: list, values: list[str],
           metric: str) -> dict:
    """Per value of a column (in sorted order): its rows, what the model says of them and, with `labels` and at
    least MIN_GROUP_ROWS rows, `metric` on them (None when those rows cannot give it: an AUC of one class)."""
    rows: dict[str, list[int]] = {}
    for index, value in enumerate(values):
        rows.setdefault(value, []).append(index)
    found = {}
    for value in sorted(rows):
        picked = rows[value]
        entry = {"rows": len(picked), **group_rates(task, classes, [answers[i] for i in picked])}
        if labels is not None and len(picked) >= MIN_GROUP_ROWS:
            try:
                entry[metric] = measure(task, classes, [labels[i] for i in picked], [answers[i] for i in picked],
                                        [metric])[metric]
            except (BadInput, ZeroDivisionError):
                entry[metric] = None
        found[value] = entry
    return found


def on_gate_scale(amount: float, better: str, registered: float) -> float:
    """An amount of a metric on the one scale the monitor's alarms read for every gate metric: as it is where higher
    is better (all those metrics are at most 1); for an error in the label's own unit (RMSE, MAE), whose absolute
    size means nothing across data sets, as a share of the registered value (the amount itself when that is 0)."""
    return amount if better == HIGHER else amount / registered if registered > 0 else amount


def worsening(verdict: dict, live: float) -> float:
    """How much worse the live value of the gate's metric is than the registered one (`verdict`: the gate's),
    on the gate scale: the drop, or for an error the rise."""
    registered, better = verdict["value"], verdict["better"]
    return on_gate_scale(registered - live if better == HIGHER else live - registered, better, registered)


def group_gap(found: dict, metric: str, better: str, overall: float) -> float | None:
    """How far apart the groups are on `metric`: the best group's value minus the worst's, over the groups that
    have one, on the gate scale (`overall`: the registered value). None with fewer than two such groups."""
    values = [entry[metric] for entry in found.values() if entry.get(metric) is not None]
    if len(values) < 2:
        return None
    return on_gate_scale(max(values) - min(values), better, overall)


def bias_report(task: str, classes: Sequence[str] | None, labels: list, answers: list,
                columns: dict[str, list[str]], verdict: dict) -> dict:
    """Per named column, its groups on the test set and their gap (the baseline the monitor compares with)."""
    report = {}
    for column, values in columns.items():
        found = groups(task, classes, labels, answers, values, verdict["metric"])
        report[column] = {"groups": found, "gap": group_gap(found, verdict["metric"], verdict["better"],
                                                            verdict["value"])}
    return report


def summary(report: dict) -> str:
    verdict = report["gate"]
    return (f"{report['task']}: {verdict['metric']} {verdict['value']:.6g} "
            f"({'>=' if verdict['better'] == HIGHER else '<='} {verdict['threshold']:g} to pass): "
            f"{'passed' if verdict['passed'] else 'FAILED'}; " + ", ".join(
                f"{name} {report[BY_TASK[report['task']].registry_key][name]['value']:.6g}"
                for name in BY_TASK[report["task"]].metrics))


# -- the processing script --------------------------------------------------------------------
def _files(folder: Path, name: str | None = None) -> list[Path]:
    files = [folder / name] if name else sorted(p for p in folder.rglob("*") if p.is_file())
    if not files or not all(p.is_file() for p in files):
        raise BadInput(f"no {'file ' + name if name else 'files'} in {folder}")
    return files


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as error:
        raise BadInput(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def _params(folder: Path) -> tuple[str, list[str] | None]:
    """The task and classes the features job recorded."""
    (path,) = _files(folder, "features.json")
    try:
        params = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise BadInput(f"{path} is not JSON: {error}") from None
    task = params.get("task") if isinstance(params, dict) else None
    if task not in TASKS:
        raise BadInput(f"{path} has task {task!r}; it must be one of {', '.join(TASKS)}")
    return task, check_classes(task, params.get("classes"))


def _features(folder: Path) -> list[str]:
    """The raw rows' columns, in order (features.json's `features`)."""
    (path,) = _files(folder, "features.json")
    return json.loads(_text(path))["features"]


def _group_values(path: Path, features: list[str], columns: list[str], rows: int) -> dict[str, list[str]]:
    """Each named column's values in the raw test rows (spaces around a value dropped, as everywhere)."""
    unknown = [c for c in columns if c not in features]
    if unknown:
        raise BadInput(f"bias_columns names {unknown[0]!r}, which is not a feature ({', '.join(features)})")
    table = [[v.strip() for v in row] for row in csv.reader(io.StringIO(_text(path))) if row]
    if len(table) != rows or any(len(row) != len(features) for row in table):
        raise BadInput(f"{path} has {len(table)} rows for {rows} labels (each of {len(features)} values); the raw "
                       "test rows and their labels must be line-aligned")
    return {c: [row[features.index(c)] for row in table] for c in columns}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions-dir", type=Path, default=Path("/opt/ml/processing/predictions"),
                        help="the answers to the test rows (batch transform's *.out), every file read in path order")
    parser.add_argument("--labels-dir", type=Path, default=Path("/opt/ml/processing/labels"),
                        help="holds labels.csv: the test rows' labels, one per line")
    parser.add_argument("--params-dir", type=Path, default=Path("/opt/ml/processing/params"),
                        help="holds features.json (task, classes)")
    parser.add_argument("--gate-metric", help="default: the task's")
    parser.add_argument("--gate-threshold", help="default: the task's")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    parser.add_argument("--groups-dir", type=Path, default=Path("/opt/ml/processing/groups"),
                        help="holds the raw test rows (every feature, no label; its one file), line-aligned with the "
                             "labels: where --group-columns are read")
    parser.add_argument("--group-columns", default="none", help="comma list of features to compare groups of")
    args = parser.parse_args(argv)
    try:
        task, classes = _params(args.params_dir)
        threshold = None if args.gate_threshold is None else _number(args.gate_threshold)
        if args.gate_threshold is not None and threshold is None:
            raise BadInput(f"--gate-threshold {args.gate_threshold!r} must be a finite number")
        metric, threshold = resolve_gate(task, args.gate_metric, threshold)
        (labels_file,) = _files(args.labels_dir, "labels.csv")
        labels = parse_labels(task, classes, _text(labels_file), str(labels_file))
        answers = [answer for path in _files(args.predictions_dir)
                   for answer in parse_answers(task, classes, _text(path), str(path))]
        evaluation = report(task, classes, labels, answers)
        evaluation["gate"] = gate(evaluation, metric, threshold)
        columns = [] if args.group_columns.strip() in ("", "none") else args.group_columns.split(",")
        if columns:
            (rows_file,) = _files(args.groups_dir)
            values = _group_values(rows_file, _features(args.params_dir), columns, len(labels))
            evaluation["bias"] = bias_report(task, classes, labels, answers, values, evaluation["gate"])
    except BadInput as error:
        print(f"metrics: {error}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
    print(summary(evaluation))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
