"""Script-mode training for SageMaker's scikit-learn image: a standardized logistic regression.

The training toolkit runs `python train.py --inverse_regularization <value> --max_iter <value>` with the
channels as folders of CSV files (no header, label first) named by SM_CHANNEL_<NAME>, and archives what the
script leaves in SM_MODEL_DIR as model.tar.gz. The script leaves the fitted pipeline there and, under code/, the module that serves it
(inference.py), because under network isolation the serving container finds its code only in the model archive.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def read_channel(folder: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"train.py: no files in channel folder {folder}")
    rows = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])
    return rows[:, 1:], rows[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inverse_regularization", type=float, default=1.0, help="C of LogisticRegression")
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args = parser.parse_args()

    features, labels = read_channel(args.train)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.inverse_regularization, max_iter=args.max_iter))
    model.fit(features, labels)
    if args.validation:
        held_out, truth = read_channel(args.validation)
        print(f"validation:accuracy={model.score(held_out, truth):.6f}")  # a metric line, as the console shows it
    joblib.dump(model, Path(args.model_dir) / "model.joblib")
    code = Path(args.model_dir) / "code"
    code.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("inference.py"), code / "inference.py")


if __name__ == "__main__":
    main()
