"""Feature attribution drift (processing/attribution.py): a built-in XGBoost model's own SHAP values, on rows served
through the version's own preprocessing archive, compared by nDCG as SageMaker Clarify compares them."""
from __future__ import annotations

import io
import json
import pickle
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost
from sklearn.metrics import ndcg_score

from tests.conftest import load_lambda_module, load_processing_module
from tests.test_features import run, write_raw

attribution = load_processing_module("attribution")
baseline = load_processing_module("baseline")
monitor = load_processing_module("monitor")
COLUMNS = ["id", "driver", "label", "size", "colour"]


def draw(rng: random.Random, rows: int, unit: float = 1.0) -> list[list[str]]:
    """Rows of COLUMNS: the label follows `driver` closely and `colour` a little; `driver` sent in `unit`s."""
    found = []
    for number in range(rows):
        x = rng.gauss(0, 1)
        colour = rng.choice(["red", "green", "blue"])
        label = int(x + (0.4 if colour == "red" else 0) + rng.gauss(0, 0.3) > 0)
        found.append([str(number), f"{x / unit:.6f}", str(label), f"{rng.uniform(0, 10):.4f}", colour])
    return found


def archive(folder: Path, body: bytes, name: str = "xgboost-model") -> Path:
    folder.mkdir(parents=True)
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return folder


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    """A registered version's two archives, made as BuildAndRegister makes them: the features job's preprocessor,
    and XGBoost trained on its processed training split."""
    root = tmp_path_factory.mktemp("version")
    rng = random.Random(5)
    raw = write_raw(root / "raw", COLUMNS, {"train": draw(rng, 1500), "validation": draw(rng, 200),
                                            "test": draw(rng, 200)},
                    label="label", task="binary", categorical=("colour",), dropped=("id",), classes=["0", "1"])
    assert run(raw, root / "processed") == 0
    train = np.loadtxt(root / "processed" / "train" / "train.csv", delimiter=",", ndmin=2)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3},
                            xgboost.DMatrix(train[:, 1:], label=train[:, 0]), num_boost_round=30)
    model = archive(root / "model", bytes(booster.save_raw("json")))
    features = [row[:2] + row[3:] for row in draw(rng, 1)]  # the raw row's shape: every column but the label
    assert len(features[0]) == 4
    return {"root": root, "model": model, "preprocessor": root / "processed" / "preprocessor", "booster": booster,
            "rng": rng}


def served(rows: list[list[str]]) -> list[list[str]]:
    return [row[:2] + row[3:] for row in rows]  # without the label, as clients send them


def test_ndcg_is_scikit_learns_for_rankings_without_ties():
    rng = np.random.default_rng(3)
    for _ in range(50):
        relevance, current = rng.random(6), rng.random(6)
        names = [f"f{i}" for i in range(6)]
        ours = attribution.ndcg(dict(zip(names, relevance)), dict(zip(names, current)))
        assert ours == pytest.approx(ndcg_score([relevance], [current]), rel=1e-12)
    assert attribution.ndcg({"a": 2.0, "b": 1.0}, {"a": 9.0, "b": 1.0}) == 1.0
    assert attribution.ndcg({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 2.0}) == 1.0  # nothing relevant: nothing drifts


def test_attributions_are_per_raw_feature_and_rank_the_driver_first(version):
    served_steps = attribution.Preprocessor(version["preprocessor"])
    assert served_steps.owners() == ["driver", "size", "colour", "colour", "colour"]  # id dropped, colour one-hot
    rows = served(draw(version["rng"], 400))
    found = attribution.global_attributions(version["booster"], served_steps.matrix(rows), served_steps.owners())
    assert list(found) == ["driver", "size", "colour"]
    assert found["driver"] > 3 * found["colour"] > 0 and found["driver"] > 3 * found["size"]
    # A raw feature's attribution is its columns' contributions summed per row: a one-hot column alone is less.
    contributions = version["booster"].predict(xgboost.DMatrix(served_steps.matrix(rows)), pred_contribs=True)
    alone = np.abs(contributions[:, 2:5]).mean(axis=0)
    assert found["colour"] == pytest.approx(float(np.abs(contributions[:, 2:5].sum(axis=1)).mean()))
    assert found["colour"] != pytest.approx(float(alone.sum()))


@pytest.mark.parametrize("objective", ["multi:softprob", "reg:squarederror"])
def test_a_multiclass_models_attributions_sum_over_its_classes_and_a_regressions_are_its_own(version, objective):
    served_steps = attribution.Preprocessor(version["preprocessor"])
    rng = version["rng"]
    rows = draw(rng, 600)
    matrix = served_steps.matrix(served(rows))
    target = np.array([float(r[1]) for r in rows])  # the driver's own value: regression, or three classes of it
    label = np.digitize(target, [-0.5, 0.5]) if objective.startswith("multi") else target
    extra = {"num_class": 3} if objective.startswith("multi") else {}
    booster = xgboost.train({"objective": objective, "max_depth": 3, **extra}, xgboost.DMatrix(matrix, label=label),
                            num_boost_round=20)
    found = attribution.global_attributions(booster, matrix, served_steps.owners())
    assert list(found) == ["driver", "size", "colour"] and found["driver"] > 5 * max(found["size"], found["colour"])
    contributions = booster.predict(xgboost.DMatrix(matrix), pred_contribs=True)
    assert contributions.ndim == (3 if extra else 2)
    per_class = np.abs(contributions[..., 0]).mean(axis=0)
    assert found["driver"] == pytest.approx(float(np.sum(per_class)))


def test_the_booster_is_read_as_the_container_reads_it_pickle_first(version, tmp_path):
    pickled = archive(tmp_path / "pickled", pickle.dumps(version["booster"]))
    rows = served(draw(version["rng"], 50))
    matrix = attribution.Preprocessor(version["preprocessor"]).matrix(rows)
    for folder in (version["model"], pickled):
        booster = attribution.load_booster(folder)
        assert np.array_equal(booster.predict(xgboost.DMatrix(matrix)),
                              version["booster"].predict(xgboost.DMatrix(matrix)))


def test_a_planted_change_of_the_driving_feature_is_drift_and_undrifted_windows_are_not(version):
    rng = version["rng"]
    sample = served(draw(rng, 2000))
    windows = [attribution.attribution_drift(version["model"], version["preprocessor"], sample,
                                             served(draw(rng, 300))) for _ in range(40)]
    assert all(w["outcome"] == "NoDrift" for w in windows), min(w["ndcg"] for w in windows)  # 0 of 40 false alarms
    assert min(w["ndcg"] for w in windows) == 1.0  # docs/monitor-endpoint.md: the ranking never changed
    # The driving feature starts arriving in another unit (tenfold smaller): it barely moves the predictions any
    # more, and colour drives them.
    changed = attribution.attribution_drift(version["model"], version["preprocessor"], sample,
                                            served(draw(rng, 300, unit=10)))
    assert changed["outcome"] == "Drift" and changed["ndcg"] < attribution.NDCG_DRIFT
    assert changed["baseline"]["driver"] > changed["baseline"]["colour"]
    assert changed["traffic"]["colour"] > changed["traffic"]["driver"]
    assert attribution.attribution_drift(version["model"], version["preprocessor"], sample,
                                         served(draw(rng, 99)))["outcome"] == "TooFewRows"


def test_a_busy_window_is_explained_on_a_seeded_sample_and_a_failure_is_reported_not_raised(version, tmp_path,
                                                                                          monkeypatch):
    rng = version["rng"]
    sample = served(draw(rng, 500))
    monkeypatch.setattr(attribution, "MAX_ROWS", 200)
    busy = served(draw(rng, 700))
    first, again = (attribution.attribution_drift(version["model"], version["preprocessor"], sample, busy)
                    for _ in range(2))
    assert first == again and (first["rows"], first["explained_rows"]) == (700, 200)
    broken = archive(tmp_path / "broken", b"not a model")

    class Explain:  # monitor.attribution_drift's guard, around a real failure of the module
        attribution_drift = staticmethod(attribution.attribution_drift)

    (tmp_path / "root" / "baseline-sample").mkdir(parents=True)
    (tmp_path / "root" / "baseline-sample" / "sample.csv").write_text("".join(",".join(r) + "\n" for r in sample))
    (tmp_path / "root" / "model").symlink_to(broken, target_is_directory=True)
    (tmp_path / "root" / "preprocessor").symlink_to(version["preprocessor"], target_is_directory=True)
    found = monitor.attribution_drift(tmp_path / "root", {"model": {"built_in_xgboost": True}},
                                      [{"values": row} for row in busy], Explain)
    assert found["outcome"] == "Failed" and found["detail"].startswith("XGBoostError"), found


def test_the_baseline_sample_is_a_seeded_uniform_draw_of_training_rows_without_the_label(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("a,label,b\n" + "".join(f"{i},{i % 2},\"x,{i}\"\n" for i in range(5000)))
    first, again = baseline.sample(path, "label", rows=300), baseline.sample(path, "label", rows=300)
    assert first == again and len(first) == 300 and all(len(row) == 2 for row in first)
    numbers = [int(row[0]) for row in first]
    assert numbers == sorted(numbers) and numbers[-1] > 4000 and numbers[0] < 1000  # the whole file, in its order
    assert first[0][1] == f"x,{numbers[0]}"  # each value as written
    assert baseline.sample(path, "label", rows=300, seed=1) != first
    assert len(baseline.sample(path, "label", rows=6000)) == 5000


def test_the_monitor_reports_attributions_only_where_covered(version, tmp_path):
    """monitor.analyze's section, from the job's folders: a script model is not covered; a version registered
    before baseline samples existed says so; a built-in XGBoost model gets its nDCG."""
    from tests.test_monitoring import folders  # the monitor job's other inputs, as the workflow stages them

    import pandas as pd
    rng = version["rng"]
    train = pd.DataFrame(draw(rng, 600), columns=COLUMNS)
    traffic = pd.DataFrame(draw(rng, 300), columns=COLUMNS)
    folders(tmp_path, train.astype({"driver": float, "size": float}), traffic.astype({"driver": float, "size": float}))
    assert monitor.analyze(tmp_path)["attribution"]["outcome"] == "NotCovered"
    window = json.loads((tmp_path / "traffic" / "window.json").read_text())
    (tmp_path / "traffic" / "window.json").write_text(json.dumps({**window, "model": {"built_in_xgboost": True}}))
    assert monitor.analyze(tmp_path)["attribution"]["outcome"] == "NoBaselineSample"
    for name in ("model", "preprocessor"):
        (tmp_path / name).symlink_to(version[name], target_is_directory=True)
    (tmp_path / "baseline-sample").mkdir()
    (tmp_path / "baseline-sample" / "sample.csv").write_text("".join(",".join(r) + "\n" for r in served(draw(rng, 500))))
    report = monitor.analyze(tmp_path)
    assert report["attribution"]["outcome"] == "NoDrift" and report["attribution"]["ndcg"] >= 0.9
    assert "nDCG" in monitor.render_html(report)


def test_the_monitor_is_told_which_archives_serve_and_refuses_a_version_outside_the_build_bucket(monkeypatch):
    collect = load_lambda_module("collect_traffic", "handler")
    monkeypatch.setenv("BUILD_DATA_BUCKET", "build")
    monkeypatch.setenv("XGBOOST_IMAGE", "xgb:1.7-1")

    class Registry:
        def __init__(self, containers):
            self.containers = containers

        def describe_model_package(self, ModelPackageName):  # noqa: N803 - boto3's parameter name
            return {"InferenceSpecification": {"Containers": self.containers}}

    chain = [{"Image": "sklearn", "ModelDataUrl": "s3://build/runs/r1/processed/preprocessor/model.tar.gz"},
             {"Image": "xgb:1.7-1", "ModelDataUrl": "s3://build/runs/r1/model/job/output/model.tar.gz"}]
    statistics = "s3://build/runs/r1/baseline/statistics.json"
    assert collect.served_model(Registry(chain), "arn", statistics) == {
        "preprocessor": chain[0]["ModelDataUrl"], "model": chain[1]["ModelDataUrl"],
        "sample": "s3://build/runs/r1/baseline/", "built_in_xgboost": True}
    script = [chain[0], {**chain[1], "Environment": {"SAGEMAKER_PROGRAM": "train.py"}}]
    assert collect.served_model(Registry(script), "arn", statistics)["built_in_xgboost"] is False
    elsewhere = [chain[0], {**chain[1], "ModelDataUrl": "s3://other/runs/r1/model/job/output/model.tar.gz"}]
    for containers in (elsewhere, chain[:1]):
        with pytest.raises(ValueError, match="not the kit's chain"):
            collect.served_model(Registry(containers), "arn", statistics)
