"""Feature attribution drift of a built-in XGBoost model, from its own SHAP values; processing/monitor.py runs it in
the XGBoost image (the job gets it as a code input, --attribution-script), which has xgboost, numpy and scipy.

Rows reach the model as they are served: the version's preprocessing archive (processing/features.py as
code/features.py, with its features.json) turns raw rows into the CSV the model container reads, and the model
archive's booster scores that. Per row, XGBoost's TreeSHAP contributions (`Booster.predict(pred_contribs=True)`)
of each processed column are summed back to the raw column it came from: a categorical column's one-hot columns
add up to that column's own contribution, as SHAP values are additive. A feature's global attribution is the mean
absolute contribution over the rows (a multiclass model's summed over its classes).

The traffic's global attributions are compared with those of the baseline sample (processing/baseline.py
sample.csv: training rows) by nDCG, as SageMaker Clarify's explainability monitor compares them (developer guide,
"Model Feature Attribution Drift Violations": nDCG of the global SHAP values, a violation below 0.9): the
baseline's attributions are the relevance, the traffic's order of the features is the ranking. A team's script
model is not covered: its archive holds whatever its own code loads, which only that code can explain.
"""
from __future__ import annotations

import io
import math
import pickle
import random
import tarfile
import tempfile
from pathlib import Path
from typing import Sequence

from contract.scripts import load_script

# numpy and xgboost are imported where used: the CDK app imports this module for the threshold alone.
NDCG_DRIFT = 0.9  # Clarify's threshold (the page above); MonitorEndpoint's alarm reads it from here
MAX_ROWS = 5000  # a window's rows explained at most: a seeded sample of a busier hour, so the job stays bounded
MIN_ROWS = 100  # fewer rows of traffic than this give no attribution: a few rows rank features by chance
MODEL_ARCHIVE = "model.tar.gz"
CSV = "text/csv"


def _archive(folder: Path) -> Path:
    """The one model.tar.gz under a job input's folder (SageMaker names a downloaded object by its key's last part)."""
    found = sorted(folder.rglob(MODEL_ARCHIVE))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {MODEL_ARCHIVE} under {folder}, found {len(found)}")
    return found[0]


def load_booster(folder: Path):
    """The model archive's booster, read as the XGBoost container's server reads it
    (aws/sagemaker-xgboost-container, serving's serve_utils.get_loaded_booster): its first file, as a pickle,
    else as an XGBoost model file."""
    import xgboost

    with tarfile.open(_archive(folder)) as archive:
        member = next(m for m in archive.getmembers() if m.isfile())
        raw = archive.extractfile(member).read()
    try:
        return pickle.loads(raw)  # noqa: S301 - the account's own registered model, as the container loads it
    except Exception:  # the container falls back to XGBoost's own format on any failure of the pickle
        booster = xgboost.Booster()
        booster.load_model(bytearray(raw))
        return booster


class Preprocessor:
    """The version's served preprocessing: its own code and fitted parameters, from its archive."""

    def __init__(self, folder: Path) -> None:
        self._unpacked = tempfile.TemporaryDirectory(prefix="preprocessor-")
        root = Path(self._unpacked.name)
        with tarfile.open(_archive(folder)) as archive:
            if hasattr(tarfile, "data_filter"):  # Python 3.12 and 3.9.17 on have extraction filters; older 3.9 not
                archive.extractall(root, filter="data")
            else:
                archive.extractall(root)  # noqa: S202 - the version's own archive, which BuildAndRegister wrote
        self.module = load_script(root / "code" / "features.py", "served_features")
        self.parameters = self.module.model_fn(str(root))

    def matrix(self, rows: Sequence[Sequence[str]]):
        """Raw rows (values as text) -> the numbers the model container reads from the served CSV."""
        import numpy as np

        text, _ = self.module.output_fn(self.module.predict_fn([list(r) for r in rows], self.parameters), CSV)
        return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)

    def owners(self) -> list[str]:
        """The raw feature each processed column comes from, in the processed order."""
        found = []
        for name in self.module.kept(self.parameters):
            width = 1 if name in self.parameters["numeric"] else len(self.parameters["categorical"][name])
            found += [name] * width
        return found


def global_attributions(booster, matrix, owners: list[str]) -> dict[str, float]:
    """Each raw feature's mean absolute SHAP contribution over the rows (summed over a multiclass model's classes)."""
    import numpy as np
    import xgboost

    contributions = np.asarray(booster.predict(xgboost.DMatrix(matrix), pred_contribs=True))
    if contributions.ndim == 2:  # binary and regression: (rows, columns + bias); multiclass: (rows, classes, ...)
        contributions = contributions[:, None, :]
    if contributions.shape[2] != len(owners) + 1:
        raise ValueError(f"the model explains {contributions.shape[2] - 1} columns but the preprocessing writes "
                         f"{len(owners)}: they are not one version's")
    names = list(dict.fromkeys(owners))
    found = {}
    for name in names:
        columns = [i for i, owner in enumerate(owners) if owner == name]
        per_row = contributions[:, :, columns].sum(axis=2)  # a raw feature's contribution, per row and class
        found[name] = float(np.abs(per_row).mean(axis=0).sum())
    return found


def ndcg(relevance: dict[str, float], current: dict[str, float]) -> float:
    """nDCG of the features ranked by `current`, with `relevance` (the baseline's attributions) as their gains;
    ties in `current` keep the baseline's order. 1 when nothing is relevant."""
    order = sorted(relevance, key=lambda name: -relevance[name])
    ranked = sorted(order, key=lambda name: -current.get(name, 0.0))
    gain = lambda names: sum(relevance[n] / math.log2(i + 2) for i, n in enumerate(names))  # noqa: E731
    ideal = gain(order)
    return 1.0 if ideal == 0 else gain(ranked) / ideal


def attribution_drift(model: Path, preprocessor: Path, sample: list[list[str]], traffic: list[list[str]]) -> dict:
    """The window's attribution report: each feature's global attribution on the baseline sample and on the
    traffic, the nDCG between them and whether it is below NDCG_DRIFT."""
    if len(traffic) < MIN_ROWS:
        return {"outcome": "TooFewRows", "rows": len(traffic), "min_rows": MIN_ROWS,
                "detail": f"{len(traffic)} rows; attributions are compared from {MIN_ROWS} rows on"}
    explained = traffic if len(traffic) <= MAX_ROWS else random.Random(0).sample(list(traffic), MAX_ROWS)
    booster, served = load_booster(model), Preprocessor(preprocessor)
    owners = served.owners()
    baseline = global_attributions(booster, served.matrix(sample), owners)
    current = global_attributions(booster, served.matrix(explained), owners)
    score = round(ndcg(baseline, current), 6)
    return {"outcome": "Drift" if score < NDCG_DRIFT else "NoDrift", "rows": len(traffic),
            "explained_rows": len(explained), "baseline_rows": len(sample), "ndcg": score, "threshold": NDCG_DRIFT,
            "baseline": {k: round(v, 6) for k, v in baseline.items()},
            "traffic": {k: round(v, 6) for k, v in current.items()}}
