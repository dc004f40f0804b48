"""Synthetic data sets: integer points labelled 1 when they lie on or above the line y = 3x + 5."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

COORDINATE_RANGE = (0, 100)
HOLDOUT_FRACTION = 5  # validation and test sets each hold rows // 5 points


@dataclass(frozen=True)
class Profile:
    """How a data set is written: `y_scale` stretches y; `header` marks raw data meant for preprocessing (its
    training and validation files have one; the test file never does: it holds the rows a client sends)."""

    y_scale: int
    header: bool
    folders: dict[str, str]  # split -> folder under the input prefix; "all": one file of every row, unsplit


PROFILES: dict[str, Profile] = {
    # Ready for SageMaker XGBoost: CSV without header, label in the first column.
    "linear": Profile(y_scale=1, header=False,
                      folders={"train": "train", "validation": "validation", "test": "test"}),
    # Raw data for the processing step: y is 1000x larger than x, so standardization matters.
    "scaled": Profile(y_scale=1000, header=True,
                      folders={"train": "raw", "validation": "raw", "test": "raw"}),
    # A data set as a user uploads one (header, label first, every row in one file), for a workflow that imports
    # and splits it itself (BuildAndRegister).
    "table": Profile(y_scale=1000, header=True, folders={"all": "seed"}),
}


def label(x: int, y: int) -> int:
    return int(y >= 3 * x + 5)


def generate_points(count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """(label, x, y) rows with x and y drawn uniformly from the integer coordinate range."""
    rows = []
    for _ in range(count):
        x, y = rng.randint(*COORDINATE_RANGE), rng.randint(*COORDINATE_RANGE)
        rows.append((label(x, y), x, y))
    return rows


def split_sizes(rows: int) -> dict[str, int]:
    holdout = max(1, rows // HOLDOUT_FRACTION)
    return {"train": rows, "validation": holdout, "test": holdout}


def build_files(profile: Profile, rows: int, seed: int) -> dict[str, str]:
    """Relative key -> CSV text for every file of the data set; the same seed gives the same bytes."""
    rng = random.Random(seed)
    if "all" in profile.folders:
        rows_text = "".join(f"{lab},{x},{y * profile.y_scale}\n" for lab, x, y in generate_points(rows, rng))
        return {f"{profile.folders['all']}/data.csv": "label,x,y\n" + rows_text}
    points = {split: generate_points(size, rng) for split, size in split_sizes(rows).items()}
    files = {}
    for split in ("train", "validation"):
        lines = ["label,x,y"] if profile.header else []
        lines += [f"{lab},{x},{y * profile.y_scale}" for lab, x, y in points[split]]
        files[f"{profile.folders[split]}/{split}.csv"] = "\n".join(lines) + "\n"
    files[f"{profile.folders['test']}/test.csv"] = "".join(f"{x},{y * profile.y_scale}\n" for _, x, y in points["test"])
    if profile.header:  # raw data for the preprocessing job, described as an import describes a data set
        files[f"{profile.folders['train']}/dataset.json"] = json.dumps({
            "source": f"seeded (seed {seed})", "label_column": "label", "task": "binary",
            "columns": ["label", "x", "y"], "features": ["x", "y"], "categorical": [], "numeric": ["x", "y"],
            "dropped": [], "classes": ["0", "1"], "rows": split_sizes(rows)}, indent=2) + "\n"
    # True test labels, line-aligned with test.csv, kept apart so the model never sees them.
    files["test-labels/labels.csv"] = "".join(f"{lab}\n" for lab, _, _ in points["test"])
    return files
