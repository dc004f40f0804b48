"""Script-mode training for SageMaker's scikit-learn image: a standardized linear model for the task it is given
(logistic regression for binary and multiclass, ridge regression for regression).

The training toolkit runs `python train.py --inverse_regularization <value> --max_iter <value> [--task <task>]`
with the channels as folders of CSV files (no header, label first: a class index for classification) named by
SM_CHANNEL_<NAME>, and archives what the script leaves in SM_MODEL_DIR as model.tar.gz. The script leaves the
fitted pipeline there and, under code/, the module that serves it (inference.py), because under network
isolation the serving container finds its code only in the model archive.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from contract.data import TASKS  # the kit's tasks: contract/ is linked into this folder and packed with it


def read_channel(folder: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"train.py: no files in channel folder {folder}")
    rows = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])
    return rows[:, 1:], rows[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="binary")
    parser.add_argument("--inverse_regularization", type=float, default=1.0,
                        help="C of LogisticRegression; 1/alpha of Ridge")
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args = parser.parse_args()

    features, labels = read_channel(args.train)
    estimator = (Ridge(alpha=1 / args.inverse_regularization, max_iter=args.max_iter) if args.task == "regression"
                 else LogisticRegression(C=args.inverse_regularization, max_iter=args.max_iter))
    model = make_pipeline(StandardScaler(), estimator)
    model.fit(features, labels if args.task == "regression" else labels.astype(int))
    if args.validation:
        held_out, truth = read_channel(args.validation)
        name = "r2" if args.task == "regression" else "accuracy"
        print(f"validation:{name}={model.score(held_out, truth):.6f}")  # a metric line, as the console shows it
    model_dir = Path(args.model_dir)
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "task.json").write_text(json.dumps({"task": args.task}))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("inference.py"), code / "inference.py")


if __name__ == "__main__":
    main()
