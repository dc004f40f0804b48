"""SageMaker Processing script (runs in the scikit-learn container): check an endpoint's captured traffic against
the deployed version's baseline, with scipy's statistics.

Reads, under --root (default /opt/ml/processing):
- traffic/window.json: the window checked (start, end) and what was collected;
- traffic/capture/**.jsonl: SageMaker data-capture records of the window (endpointInput: raw CSV rows without
  the label; endpointOutput: one answer line per row, as the model contract says: binary, the probability of
  classes[1]; multiclass, K probabilities in classes order; regression, the value; eventMetadata: eventId,
  inferenceId, inferenceTime);
- traffic/labelled/**.jsonl and traffic/ground-truth/**.jsonl: captures of the hours that have ground truth, and
  the ground truth (groundTruthData.data: one label per row of the request; eventMetadata.eventId: the request's
  inference id), joined by inference id;
- baseline/statistics.json, constraints/constraints.json (processing/baseline.py) and evaluation/evaluation.json
  (processing/metrics.py: task, classes, test metrics and `predictions`, the distribution of the answers on the
  test set).
- model/ and preprocessor/ (the deployed version's two archives) and baseline-sample/sample.csv (processing/baseline.py):
  for a built-in XGBoost model (window.json's `model`), feature attribution drift by processing/attribution.py
  (the job gets it as a third code input, --attribution-script; it runs in the XGBoost image for xgboost).
Writes report/report.json and report/report.html (a page with a chart per feature). Per numeric feature: PSI over
the baseline's histogram bins and the Kolmogorov-Smirnov test against the baseline's percentiles; per categorical
feature: PSI and the chi-square test against the training frequencies. The endpoint's answers are tested the same
way against `predictions`: numeric for binary (probabilities, bins over [0, 1]) and regression (values, bins over
the test set's range), categorical for multiclass (the predicted classes' frequencies). Model quality on ground
truth is measured for every task by processing/metrics.py (the job gets it as a second code input, --metrics-script):
the task's metrics on the rows whose ground truth arrived, and how much worse the gate metric is than the value
registered with the deployed version (metrics.py `worsening`). Runs on a laptop the same way.
"""
from __future__ import annotations

import argparse
import html
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from contract.capture import csv_rows, ground_truth, payload, request_id
from contract.data import MISSING, BadInput, finite_number
from contract.scripts import load_script

# A feature drifts when its PSI reaches 0.2 (the usual "significant shift") or its test's p-value is below 0.01.
PSI_DRIFT, P_VALUE_DRIFT = 0.2, 0.01
# Data quality: a feature is in violation when, in the window, its missing rate exceeds training's by more than
# this, or this share of its values is out of the trained range, an unseen category, or not a number.
QUALITY_TOLERANCE = 0.05
EPSILON = 1e-4  # keeps PSI finite for bins empty on one side
BASELINE_COLOR, CURRENT_COLOR = "#4c72b0", "#dd8452"


# -- reading captures (contract/capture.py) ----------------------------------------------------
def answer_reader(evaluation: dict, metrics):
    """Reads the answers of one request (the capture's endpointOutput) as processing/metrics.py reads a model's
    answers: binary, the probability of classes[1]; multiclass, the K probabilities; regression, the value."""
    task, classes = evaluation["task"], evaluation.get("classes")
    return lambda text: metrics.parse_answers(task, classes, text, "the answer")


def read_captures(folder: Path, width: int, read_answer) -> list[dict]:
    """One item per captured row: its request's inference id, its feature values (text with the spaces around it
    removed, as the served preprocessing reads it), its answer (read by `read_answer`)."""
    rows = []
    for path in sorted(folder.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                data = record["captureData"]
                inputs = csv_rows(payload(data["endpointInput"]))
                answers = read_answer(payload(data["endpointOutput"])) if "endpointOutput" in data else []
            except (ValueError, KeyError, IndexError) as error:
                raise BadInput(f"{path.name} line {number} is not a data-capture record: {error}") from None
            request = request_id(record)
            for index, values in enumerate(inputs):
                if len(values) != width:
                    raise BadInput(f"{path.name} line {number} has a row of {len(values)} values; the baseline has "
                                   f"{width} features (raw rows without the label)")
                rows.append({"request": request, "index": index, "values": [v.strip() for v in values],
                             "answer": answers[index] if len(answers) == len(inputs) else None})
    return rows


def read_ground_truth(folder: Path) -> dict[tuple[str, int], str]:
    """(inference id, row index in its request) -> true label (its text)."""
    labels = {}
    for path in sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                request, values = ground_truth(json.loads(line))
            except (ValueError, KeyError, IndexError) as error:
                raise BadInput(f"ground truth {path.name} line {number} is not a ground-truth record "
                               f"(groundTruthData, eventMetadata.eventId): {error}") from None
            labels.update({(request, index): value for index, value in enumerate(values)})
    return labels


# -- statistics -------------------------------------------------------------------------------
def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    expected, actual = np.clip(expected, EPSILON, None), np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def bin_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Shares of the values in the baseline's bins; the outer bins take what lies beyond them."""
    inner = np.asarray(edges[1:-1])
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1)
    return counts / max(len(values), 1)


def baseline_cdf(percentiles: list[float], side: str = "right"):
    """The baseline's distribution function, interpolated between its 101 percentiles. At a value several
    percentiles share (an atom: many equal scores), it jumps from the first of them (its left limit) to the
    last (its value there)."""
    given = np.asarray(percentiles)
    points = np.unique(given)
    levels = np.linspace(0.0, 1.0, 101)
    pick = (lambda p: np.flatnonzero(given == p)[-1]) if side == "right" else (lambda p: np.flatnonzero(given == p)[0])
    heights = levels[[int(pick(p)) for p in points]]
    return lambda x: np.interp(x, points, heights, left=0.0, right=1.0)


def ks_test(values: np.ndarray, percentiles: list[float]) -> tuple[float, float]:
    """One-sample Kolmogorov-Smirnov statistic and p-value against the baseline's distribution, which may have
    atoms (scipy's kstest assumes a continuous one and reports drift at an atom the sample shares). Both
    functions are compared at every point either jumps, from both sides."""
    ordered = np.sort(values)
    grid = np.union1d(ordered, percentiles)
    empirical = np.searchsorted(ordered, grid, side="right") / len(ordered)
    before = np.concatenate([[0.0], empirical[:-1]])  # the sample's function just left of each grid point
    statistic = float(max(np.max(np.abs(empirical - baseline_cdf(percentiles)(grid))),
                          np.max(np.abs(before - baseline_cdf(percentiles, "left")(grid)))))
    return statistic, float(stats.kstwo.sf(statistic, len(ordered)))


def psi_threshold(bins: int, rows: int, baseline_rows: int) -> float:
    """PSI_DRIFT plus what sampling alone gives: two samples of one distribution over `bins` bins have a PSI of
    about (bins - 1) * (1/rows + 1/baseline_rows) (PSI is near the chi-square statistic divided by the rows), so a
    small window (92 rows over 10 bins: about 0.1) is not read as drift."""
    return PSI_DRIFT + (bins - 1) * (1 / max(rows, 1) + 1 / max(baseline_rows, 1))


def numeric_drift(values: np.ndarray, baseline: dict) -> dict:
    histogram = baseline["histogram"]
    expected = np.asarray(histogram["counts"], dtype=float) / max(sum(histogram["counts"]), 1)
    current = bin_shares(values, histogram["edges"])
    statistic, p_value = ks_test(values, baseline["percentiles"])
    index, limit = psi(expected, current), psi_threshold(len(expected), len(values), sum(histogram["counts"]))
    return {"psi": round(index, 6), "psi_threshold": round(limit, 6), "ks_statistic": round(statistic, 6),
            "ks_p_value": p_value, "drifted": bool(index >= limit or p_value < P_VALUE_DRIFT),
            "chart": {"bins": [f"{a:.3g}..{b:.3g}" for a, b in zip(histogram["edges"], histogram["edges"][1:])],
                      "baseline": expected.tolist(), "current": current.tolist()},
            "current": {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
                        "percentiles": {str(p): float(np.percentile(values, p)) for p in (5, 50, 95)}}}


def categorical_drift(values: list[str], baseline: dict, baseline_rows: int) -> dict:
    categories = sorted(baseline["frequencies"])
    # A class the model never predicted on the test set has share 0: a tiny share keeps the test defined (the
    # feature baselines hold only categories seen).
    expected = np.asarray([baseline["frequencies"][c] or EPSILON for c in categories])
    known = [v for v in values if v in baseline["frequencies"]]
    observed = np.asarray([known.count(c) for c in categories], dtype=float)
    shares = observed / max(len(known), 1)
    if known:
        test = stats.chisquare(observed, expected / expected.sum() * len(known))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:  # nothing but unseen categories: all of the distribution moved
        statistic, p_value = math.inf, 0.0
    index = psi(expected, shares)
    limit = psi_threshold(len(categories), len(known), baseline_rows)
    return {"psi": round(index, 6), "psi_threshold": round(limit, 6), "chi2_statistic": round(statistic, 6),
            "chi2_p_value": p_value, "drifted": bool(index >= limit or p_value < P_VALUE_DRIFT),
            "chart": {"bins": categories, "baseline": expected.tolist(), "current": shares.tolist()}}


def quality(raw: list[str], constraint: dict) -> dict:
    """Missing values, values out of the trained range or unseen, and text where a number belongs."""
    present = [v for v in raw if v not in MISSING]  # what training imputes: an empty cell, NA, null, ...
    count = max(len(raw), 1)
    result = {"missing_rate": round(1 - len(present) / count, 6),
              "baseline_missing_rate": constraint["max_missing_rate"]}
    if constraint["type"] == "numeric":
        numbers = [finite_number(v) for v in present]
        result["not_numeric_share"] = round(sum(n is None for n in numbers) / count, 6)
        result["out_of_range_share"] = round(sum(n is not None and not constraint["min"] <= n <= constraint["max"]
                                                 for n in numbers) / count, 6)
    else:
        unseen = sorted({v for v in present if v not in constraint["categories"]})
        result["unseen_share"] = round(sum(v in unseen for v in present) / count, 6)
        result["unseen"] = unseen[:20]
    violations = [name for name, share in (("missing", result["missing_rate"] - constraint["max_missing_rate"]),
                                           ("not_numeric", result.get("not_numeric_share", 0)),
                                           ("out_of_range", result.get("out_of_range_share", 0)),
                                           ("unseen_category", result.get("unseen_share", 0)))
                  if share > (0 if name == "not_numeric" else QUALITY_TOLERANCE)]
    return {**result, "violations": violations}


def class_index(label: str, classes: list[str]) -> int:
    """Which class a ground-truth label is: by its text, or a number by its value ("1.0" is "1")."""
    for index, name in enumerate(classes):
        if label == name or (finite_number(label) is not None and finite_number(label) == finite_number(name)):
            return index
    raise BadInput(f"ground truth label {label!r} is not one of the classes {classes}")


def truth_of(label: str, evaluation: dict):
    """A ground-truth label as processing/metrics.py measures it: a class index, or the number."""
    if evaluation["task"] != "regression":
        return class_index(label, evaluation["classes"])
    value = finite_number(label)
    if value is None:
        raise BadInput(f"ground truth label {label!r} is not a finite number, and the model predicts one")
    return value


def joined(captured: list[dict], labels: dict, evaluation: dict) -> list[tuple[dict, object]]:
    """(captured row, its ground truth as metrics reads it) of the rows whose ground truth arrived."""
    return [(r, truth_of(labels[(r["request"], r["index"])], evaluation)) for r in captured
            if (r["request"], r["index"]) in labels and r["answer"] is not None]


def model_quality(rows: list[tuple[dict, object]], evaluation: dict, metrics) -> dict | None:
    """The task's metrics (processing/metrics.py) on the captured rows whose ground truth arrived, and the gate
    metric against the value registered with the deployed version. A metric these rows cannot give (an AUC when
    every label is the same) is None."""
    if not rows:
        return None
    task, classes = evaluation["task"], evaluation.get("classes")
    truth, answers = [t for _, t in rows], [r["answer"] for r, _ in rows]
    live = {}
    for name in metrics.task_of(task).metrics:
        try:
            live[name] = round(metrics.measure(task, classes, truth, answers, [name])[name], 6)
        except (ValueError, ZeroDivisionError):  # processing/metrics.py's BadInput is a ValueError
            live[name] = None
    gate = evaluation["gate"]
    value = live[gate["metric"]]
    return {"rows": len(rows), "task": task, "metrics": live,
            "gate": {"metric": gate["metric"], "better": gate["better"], "registered": gate["value"], "live": value,
                     "worsening": None if value is None else round(metrics.worsening(gate, value), 6)}}


def bias(rows: list[tuple[dict, object]], positions: dict[str, int], evaluation: dict, metrics,
         captured: list[dict] = ()) -> dict | None:
    """Per bias column (evaluation.json's `bias`, from the bias_columns setting): the gate metric per group of
    the labelled rows, as the evaluation computed it on the test set (processing/metrics.py `groups`, groups of at
    least MIN_GROUP_ROWS rows), their gap (the best group's value minus the worst's: how unequally the model
    serves the groups) and how much wider it is than on the test set (`widening`). The widening, not the gap, is
    what alarms: a gap the test set already had was there when the version was approved; one that opens in
    traffic is new. `traffic`: what the model said of each group in the window's captured rows, labels or not."""
    if not evaluation.get("bias"):
        return None
    task, classes, gate = evaluation["task"], evaluation.get("classes"), evaluation["gate"]
    truth, answers = [t for _, t in rows], [r["answer"] for r, _ in rows]
    answered = [r for r in captured if r["answer"] is not None]
    found = {}
    for column, baseline in evaluation["bias"].items():
        values = [r["values"][positions[column]] for r, _ in rows]
        groups = metrics.groups(task, classes, truth, answers, values, gate["metric"])
        gap = metrics.group_gap(groups, gate["metric"], gate["better"], gate["value"])
        widening = None if gap is None or baseline["gap"] is None else round(gap - baseline["gap"], 6)
        traffic = metrics.groups(task, classes, None, [r["answer"] for r in answered],
                                 [r["values"][positions[column]] for r in answered], gate["metric"])
        found[column] = {"groups": groups, "gap": gap, "baseline_gap": baseline["gap"], "widening": widening,
                         "traffic": traffic}
    return found


# -- the report -------------------------------------------------------------------------------
def attribution_drift(root: Path, window: dict, captured: list[dict], attribution) -> dict:
    """Feature attribution drift of the window's traffic (processing/attribution.py), where it is covered."""
    model = window.get("model") or {}
    if not model.get("built_in_xgboost"):
        return {"outcome": "NotCovered", "detail": "the model is a team's script: only the built-in XGBoost "
                                                   "algorithm's attributions (its SHAP values) are monitored"}
    sample = root / "baseline-sample" / "sample.csv"
    if not sample.is_file():
        return {"outcome": "NoBaselineSample", "detail": "the version was registered without baseline/sample.csv; "
                                                         "a version BuildAndRegister registers now has one"}
    rows = [[v.strip() for v in values] for values in csv_rows(sample.read_text(encoding="utf-8"))]
    try:
        return attribution.attribution_drift(root / "model", root / "preprocessor", rows,
                                             [r["values"] for r in captured])
    except Exception as error:  # noqa: BLE001 - explaining is one section: its failure must not cost the report
        return {"outcome": "Failed", "detail": f"{type(error).__name__}: {error}"}


def analyze(root: Path, metrics=None, attribution=None) -> dict:
    """The window's report; `metrics` and `attribution` are processing/metrics.py and processing/attribution.py
    (by default the ones beside this script)."""
    here = Path(__file__).resolve().parent
    metrics = metrics or load_script(here / "metrics.py", "metrics")
    attribution = attribution or load_script(here / "attribution.py", "attribution")
    statistics = json.loads((root / "baseline" / "statistics.json").read_text())
    constraints = {c["name"]: c for c in json.loads((root / "constraints" / "constraints.json").read_text())["features"]}
    evaluation = json.loads((root / "evaluation" / "evaluation.json").read_text())
    window = json.loads((root / "traffic" / "window.json").read_text())
    features = statistics["features"]
    read_answer = answer_reader(evaluation, metrics)
    captured = read_captures(root / "traffic" / "capture", len(features), read_answer)
    labels = read_ground_truth(root / "traffic" / "ground-truth")
    labelled = read_captures(root / "traffic" / "labelled", len(features), read_answer) if labels else []
    rows = joined(labelled, labels, evaluation)
    report = {"window": window, "rows": len(captured), "requests": len({r["request"] for r in captured}),
              "thresholds": {"psi": PSI_DRIFT, "p_value": P_VALUE_DRIFT, "quality_tolerance": QUALITY_TOLERANCE},
              "ground_truth_labels": len(labels),
              "model_quality": model_quality(rows, evaluation, metrics),
              "bias": bias(rows, {f["name"]: i for i, f in enumerate(features)}, evaluation, metrics, captured)}
    if not captured:  # a quiet window; ground truth that arrived for earlier hours is still scored
        return {**report, "outcome": "NoTraffic"}
    checked, issues = [], []
    for position, feature in enumerate(features):
        if feature["type"] == "ignored":  # a column the model drops (an id): what clients send there is theirs
            continue
        raw = [r["values"][position] for r in captured]
        present = [v for v in raw if v not in MISSING]
        entry = {"name": feature["name"], "type": feature["type"], "rows": len(present)}
        if feature["type"] == "numeric":
            numbers = np.asarray([n for n in map(finite_number, present) if n is not None])
            entry.update(numeric_drift(numbers, feature) if len(numbers) else {"drifted": False, "psi": None})
        else:
            rows = round(statistics["rows"] * (1 - feature["missing_rate"]))  # the baseline's values of the feature
            entry.update(categorical_drift(present, feature, rows) if present else {"drifted": False, "psi": None})
        entry["quality"] = quality(raw, constraints[feature["name"]])
        checked.append(entry)
        issues += [f"{feature['name']}: {v}" for v in entry["quality"]["violations"]]
    drifted = [f["name"] for f in checked if f["drifted"]]
    answers = [r["answer"] for r in captured if r["answer"] is not None]
    if evaluation["task"] == "multiclass":  # the predicted classes' frequencies are what drifts
        answers = [evaluation["classes"][k] for k in metrics.predicted_classes("multiclass", answers)]
    expected = evaluation.get("predictions")
    predictions = (None if not answers or not expected else categorical_drift(answers, expected, expected["count"])
                   if expected["type"] == "categorical" else numeric_drift(np.asarray(answers), expected))
    return {**report, "outcome": "Drift" if drifted else "NoDrift",
            "drift": {"share": round(len(drifted) / len(checked), 6), "drifted": drifted, "features": checked},
            "attribution": attribution_drift(root, window, captured, attribution),
            "predictions": predictions, "data_quality": {"violations": len(issues), "issues": issues}}


def bar_chart(title: str, chart: dict, width: int = 460, height: int = 180) -> str:
    """Baseline and current shares side by side per bin, as inline SVG (no script, renders anywhere)."""
    bins, top = chart["bins"], max(max(chart["baseline"]), max(chart["current"]), EPSILON)
    slot = (width - 40) / len(bins)
    bars = []
    for i, _ in enumerate(bins):
        for offset, series, color in ((0.1, "baseline", BASELINE_COLOR), (0.5, "current", CURRENT_COLOR)):
            tall = (height - 40) * chart[series][i] / top
            bars.append(f'<rect class="{series}" x="{30 + slot * (i + offset):.1f}" y="{height - 20 - tall:.1f}" '
                        f'width="{slot * 0.4:.1f}" height="{tall:.1f}" fill="{color}">'
                        f'<title>{html.escape(str(bins[i]))}: {series} {chart[series][i]:.3f}</title></rect>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg class="chart" width="{width}" '
            f'height="{height}" role="img"><line x1="30" y1="{height - 20}" x2="{width - 10}" y2="{height - 20}" '
            f'stroke="#333"/>{"".join(bars)}<text x="30" y="{height - 5}" font-size="10">{html.escape(str(bins[0]))}'
            f'</text><text x="{width - 10}" y="{height - 5}" font-size="10" text-anchor="end">'
            f'{html.escape(str(bins[-1]))}</text></svg></figure>')


def render_html(report: dict) -> str:
    window = report["window"]
    head = (f"<h1>Endpoint monitor: {html.escape(report['outcome'])}</h1><p>{html.escape(str(window.get('endpoint')))}"
            f" serving {html.escape(str(window.get('model_package_arn')))}; window {html.escape(window['start'])} to "
            f"{html.escape(window['end'])}; {report['rows']} rows in {report['requests']} requests.</p>"
            f'<p><span style="color:{BASELINE_COLOR}">&#9632; baseline (training)</span> '
            f'<span style="color:{CURRENT_COLOR}">&#9632; captured traffic</span></p>')
    quality = report.get("model_quality")
    quality_text = ("no ground truth yet" if not quality else
                    f"{quality['rows']} labelled rows: " + ", ".join(f"{k} {v}" for k, v in quality["metrics"].items())
                    + f"; {quality['gate']['metric']} {quality['gate']['live']} against {quality['gate']['registered']} "
                      f"registered (worse by {quality['gate']['worsening']})")
    if report["outcome"] == "NoTraffic":
        return _page(head + f"<p>No traffic was captured in this window. Model quality: {html.escape(quality_text)}.</p>")
    rows, charts = [], []
    for f in report["drift"]["features"]:
        test = (f"KS {f['ks_statistic']:.3f} (p {f['ks_p_value']:.3g})" if "ks_statistic" in f else
                f"chi-square {f['chi2_statistic']:.3g} (p {f['chi2_p_value']:.3g})" if "chi2_statistic" in f else "-")
        rows.append(f"<tr><td>{html.escape(f['name'])}</td><td>{f['type']}</td><td>{f['psi']}</td><td>{test}</td>"
                    f"<td>{'DRIFT' if f['drifted'] else 'ok'}</td><td>{f['quality']['missing_rate']:.3f}</td>"
                    f"<td>{html.escape(', '.join(f['quality']['violations']) or 'ok')}</td></tr>")
        if "chart" in f:
            charts.append(bar_chart(f"{f['name']}: PSI {f['psi']}", f["chart"]))
    if report.get("predictions"):
        p = report["predictions"]
        test = (f"KS {p['ks_statistic']:.3f}" if "ks_statistic" in p else f"chi-square {p['chi2_statistic']:.3g}")
        charts.append(bar_chart(f"model answers: PSI {p['psi']}, {test}", p["chart"]))
    table = ("<table border=1 cellpadding=4><tr><th>feature</th><th>type</th><th>PSI</th><th>test</th><th>drift</th>"
             "<th>missing</th><th>data quality</th></tr>" + "".join(rows) + "</table>")
    summary = (f"<p>Drift share {report['drift']['share']:.2f} ({', '.join(report['drift']['drifted']) or 'none'});"
               f" data-quality issues {report['data_quality']['violations']}; model quality: "
               f"{html.escape(quality_text)}.</p>")
    found = report.get("attribution") or {}
    if "ndcg" in found:
        charts.append(bar_chart(f"feature attributions (mean |SHAP|): nDCG {found['ndcg']}", {
            "bins": list(found["baseline"]), "baseline": list(found["baseline"].values()),
            "current": [found["traffic"][name] for name in found["baseline"]]}))
        summary += (f"<p>Feature attributions: {found['outcome']} (nDCG {found['ndcg']} against the baseline, "
                    f"drift below {found['threshold']}).</p>")
    elif found:
        summary += f"<p>Feature attributions: {html.escape(found['outcome'])} ({html.escape(found.get('detail', ''))}).</p>"
    return _page(head + summary + table + '<div class="charts">' + "".join(charts) + "</div>")


def _page(body: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Endpoint monitor report</title><style>"
            "body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:.5em}"
            "table{border-collapse:collapse}</style></head><body>" + body + "</body></html>\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/opt/ml/processing"))
    parser.add_argument("--metrics-script", type=Path, default=Path(__file__).resolve().parent / "metrics.py",
                        help="processing/metrics.py (in the job, a code input of its own)")
    parser.add_argument("--attribution-script", type=Path,
                        default=Path(__file__).resolve().parent / "attribution.py",
                        help="processing/attribution.py (in the job, a code input of its own)")
    args = parser.parse_args(argv)
    root = args.root
    try:
        report = analyze(root, load_script(args.metrics_script, "metrics"),
                         load_script(args.attribution_script, "attribution"))
    except (BadInput, FileNotFoundError, KeyError) as error:
        print(f"monitor: {error}", file=sys.stderr)
        return 1
    (root / "report").mkdir(parents=True, exist_ok=True)
    (root / "report" / "report.json").write_text(json.dumps(report, indent=1))
    (root / "report" / "report.html").write_text(render_html(report))
    print(json.dumps({k: report.get(k) for k in ("outcome", "rows")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
