"""Built-in XGBoost offline, as the 1.7-1 image runs it: training on several instances (each host a process that
reads only the files its host receives, joined by xgboost's collective) and what its server answers per objective.
Jobs go through the local SageMaker's request path (CreateTrainingJob/CreateTransformJob, validation included)."""
from __future__ import annotations

import io
import json
import tarfile
import time

import numpy as np
import pytest
import xgboost

from offline.iam.iam import LocalIam
from offline.iam.iam_policy import Statement
from offline.runtimes.sagemaker_jobs import _host_share
from offline.services.sagemaker_service import LocalSageMaker
from offline.sources.request_validation import RequestRefused as SageMakerError
from offline.runtimes.serving import ModelError
from tests.conftest import BUCKET

ROLE = "arn:aws:iam::123456789012:role/trainer"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
BINARY = {"objective": "binary:logistic", "num_round": "25", "max_depth": "4"}


@pytest.fixture
def sagemaker(s3):
    """The jobs' role may use the bucket: once a LocalCloud has run, offline IAM checks every call made as it."""
    bucket = Statement.parse({"Effect": "Allow", "Action": "s3:*",
                              "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}, "test")
    return LocalSageMaker(LocalIam(roles={ROLE: [bucket]}))


def rows(count: int, seed: int, grid: bool = True) -> np.ndarray:
    """label, then 4 features. On a 0.1 grid a feature has fewer distinct values than xgboost's 256 bins, so
    its quantile cuts are exact however the rows are split across hosts."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, 4))
    features = np.round(features, 1) if grid else features
    label = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(0, 0.5, count) > 0).astype(float)
    return np.column_stack([label, features])


def put_parts(s3, prefix: str, data: np.ndarray, parts: int) -> None:
    for number, part in enumerate(np.array_split(data, parts)):
        body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in part)
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}part-{number}.csv", Body=body.encode())


def channel(name: str, prefix: str, distribution: str = "ShardedByS3Key") -> dict:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}", "S3DataDistributionType": distribution}}}


def train(sagemaker, name: str, instances: int, channels: list[dict], hyperparameters: dict = BINARY) -> dict:
    sagemaker.handle("CreateTrainingJob", {
        "TrainingJobName": name, "RoleArn": ROLE, "HyperParameters": hyperparameters,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "InputDataConfig": channels, "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceCount": instances, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}})
    deadline = time.monotonic() + 300
    while (job := sagemaker.handle("DescribeTrainingJob", {"TrainingJobName": name}))[
            "TrainingJobStatus"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.05)
    return job


def booster(s3, job: dict) -> xgboost.Booster:
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    key = job["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as tar:
        assert tar.getnames() == ["xgboost-model"]  # what the saving host left in /opt/ml/model
        loaded = xgboost.Booster()
        loaded.load_model(bytearray(tar.extractfile("xgboost-model").read()))
    return loaded


def predict(model: xgboost.Booster, data: np.ndarray) -> np.ndarray:
    return model.predict(xgboost.DMatrix(data[:, 1:]))


# -- training on several instances -------------------------------------------------------------------------------
def test_shardedbys3key_deals_whole_objects_so_that_counts_differ_by_at_most_one():
    objects = [(f"part-{n}.csv", b"x") for n in range(7)]
    shares = [_host_share(objects, index, 3, "ShardedByS3Key") for index in range(3)]
    assert sorted(o for share in shares for o in share) == sorted(objects)  # each object to exactly one host
    assert [len(share) for share in shares] == [3, 2, 2]
    assert _host_share(objects[:1], 2, 3, "ShardedByS3Key") == []  # fewer objects than instances: no data
    assert _host_share(objects, 2, 3, "FullyReplicated") == objects


@pytest.mark.parametrize("instances", [2, 3])
def test_sharded_training_predicts_as_one_instance_trained_on_the_union(sagemaker, s3, instances):
    put_parts(s3, "train/", rows(1800, seed=1), parts=6)
    held_out = rows(300, seed=2)
    single = predict(booster(s3, train(sagemaker, "one", 1, [channel("train", "train/")])), held_out)
    distributed = predict(booster(s3, train(sagemaker, f"many-{instances}", instances,
                                            [channel("train", "train/")])), held_out)
    # Exact cuts on both sides (the grid), so the trees are the same; the hosts' gradient sums are added up in
    # another order (allreduce), which may move a float32 prediction by a few units in its last place: 1e-6.
    np.testing.assert_allclose(distributed, single, rtol=0, atol=1e-6)


def test_continuous_features_give_a_close_but_not_identical_model(sagemaker, s3):
    """Past 256 distinct values a host's cuts come from merged quantile sketches, not from all rows: splits
    move a little, single rows' probabilities by up to ~0.2, the model's quality hardly at all."""
    put_parts(s3, "train/", rows(2700, seed=3, grid=False), parts=6)
    held_out = rows(600, seed=4, grid=False)
    single = predict(booster(s3, train(sagemaker, "one", 1, [channel("train", "train/")])), held_out)
    distributed = predict(booster(s3, train(sagemaker, "many", 2, [channel("train", "train/")])), held_out)
    assert not np.allclose(distributed, single, atol=1e-3)  # a real difference: the hosts did not see every row
    accuracy = [np.mean((p > 0.5) == held_out[:, 0]) for p in (single, distributed)]
    assert abs(accuracy[0] - accuracy[1]) < 0.02 and min(accuracy) > 0.8, accuracy


def test_fullyreplicated_gives_every_host_every_row(sagemaker, s3):
    data = rows(1200, seed=5)
    put_parts(s3, "train/", data, parts=3)
    put_parts(s3, "twice/", np.vstack([data, data]), parts=3)
    held_out = rows(300, seed=6)
    replicated = train(sagemaker, "replicated", 2, [channel("train", "train/", "FullyReplicated")])
    assert replicated["TrainingJobStatus"] == "Completed", replicated.get("FailureReason")
    # Two hosts with all rows each: one model over every row twice (the gradients of both copies add up).
    twice = predict(booster(s3, train(sagemaker, "twice", 1, [channel("train", "twice/")])), held_out)
    np.testing.assert_allclose(predict(booster(s3, replicated), held_out), twice, rtol=0, atol=1e-6)
    once = predict(booster(s3, train(sagemaker, "once", 1, [channel("train", "train/")])), held_out)
    assert not np.allclose(twice, once, atol=1e-4)  # so the comparison above can tell the two apart


def test_a_host_without_a_shard_is_left_out_and_the_others_train(sagemaker, s3, capsys):
    put_parts(s3, "train/", rows(1200, seed=7), parts=2)
    held_out = rows(300, seed=8)
    three = train(sagemaker, "three", 3, [channel("train", "train/")])
    assert "Host algo-3 does not have train data" in capsys.readouterr().out
    two = train(sagemaker, "two", 2, [channel("train", "train/")])  # algo-1 and algo-2 get the same shares
    np.testing.assert_allclose(predict(booster(s3, three), held_out), predict(booster(s3, two), held_out),
                               rtol=0, atol=1e-6)


def test_one_host_with_both_channels_trains_alone(sagemaker, s3):
    """algo-2 gets a validation shard but no training shard, so algo-1 trains by itself on its own shards."""
    put_parts(s3, "train/", rows(600, seed=9), parts=1)
    put_parts(s3, "validation/", rows(400, seed=10), parts=2)
    s3.copy_object(Bucket=BUCKET, Key="mine/validation/part-0.csv", CopySource=f"{BUCKET}/validation/part-0.csv")
    held_out = rows(300, seed=11)
    pair = train(sagemaker, "pair", 2, [channel("train", "train/"), channel("validation", "validation/")])
    alone = train(sagemaker, "alone", 1, [channel("train", "train/"), channel("validation", "mine/validation/")])
    np.testing.assert_allclose(predict(booster(s3, pair), held_out), predict(booster(s3, alone), held_out),
                               rtol=0, atol=1e-6)
    assert [m["MetricName"] for m in pair["FinalMetricDataList"]] == ["train:logloss", "validation:logloss"]
    assert pair["FinalMetricDataList"][1]["Value"] == pytest.approx(alone["FinalMetricDataList"][1]["Value"])


def test_no_host_with_training_and_validation_data_fails_as_the_container_does(sagemaker, s3):
    """algo-1 gets the training object and an empty validation object; algo-2 validation data only."""
    put_parts(s3, "train/", rows(200, seed=12), parts=1)
    s3.put_object(Bucket=BUCKET, Key="validation/a.csv", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="validation/b.csv", Body=b"1,0.1,0.2,0.3,0.4\n")
    job = train(sagemaker, "nobody", 2, [channel("train", "train/"), channel("validation", "validation/")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: framework error: RuntimeError: No hosts received training data."


def test_a_hosts_bad_shard_fails_the_job_with_that_hosts_error(sagemaker, s3):
    put_parts(s3, "train/", rows(400, seed=13), parts=1)
    s3.put_object(Bucket=BUCKET, Key="train/part-1.csv", Body=b"1,a,b,c,d\n")
    job = train(sagemaker, "bad", 2, [channel("train", "train/")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"ClientError: cannot read CSV s3://{BUCKET}/train/: could not convert")


def test_the_request_is_validated_before_any_host_starts(sagemaker):
    with pytest.raises(SageMakerError, match=r"s3DataDistributionType' failed to satisfy constraint: Member must "
                                             r"satisfy enum value set"):
        train(sagemaker, "typo", 2, [channel("train", "train/", "ShardedByKey")])


# -- what the server answers ------------------------------------------------------------------------------------
OBJECTIVES = {
    "binary:logistic": {},
    "reg:squarederror": {},
    "multi:softmax": {"num_class": "3"},
    "multi:softprob": {"num_class": "3"},
}


@pytest.fixture
def served(sagemaker, s3):
    """One model per objective, trained on three classes (a binary/regression label is the class index)."""
    rng = np.random.default_rng(14)
    features = np.round(rng.normal(size=(300, 4)), 2)
    label = np.digitize(features[:, 0], [-0.5, 0.5]).astype(float)
    models = {}
    for objective, extra in OBJECTIVES.items():
        labels = np.minimum(label, 1) if objective.startswith("binary") else label
        put_parts(s3, f"{objective}/", np.column_stack([labels, features]), parts=1)
        job = train(sagemaker, objective.replace(":", "-"), 1, [channel("train", f"{objective}/")],
                    {"objective": objective, "num_round": "5", **extra})
        models[objective] = (job["ModelArtifacts"]["S3ModelArtifacts"], booster(s3, job))
    return models, "\n".join(",".join(str(v) for v in row) for row in features[:4]).encode()


def serve(sagemaker, artifacts: str, environment: dict | None = None):
    container = {"Image": IMAGE, "ModelDataUrl": artifacts, "Environment": environment or {}}
    return sagemaker.runners.load_model("test", {"PrimaryContainer": container})


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_an_endpoint_answers_csv_as_the_images_encoder_writes_it(sagemaker, served, objective):
    models, body = served
    artifacts, model = models[objective]
    expected = model.predict(xgboost.DMatrix(np.loadtxt(body.decode().splitlines(), delimiter=",")))
    answer, kind = serve(sagemaker, artifacts)(body, "text/csv", "text/csv")
    lines = answer.decode().splitlines()
    assert kind == "text/csv" and answer.endswith(b"\n") and len(lines) == 4
    if objective == "multi:softprob":  # one line per row: its 3 class probabilities, comma-separated
        assert [[float(v) for v in line.split(",")] for line in lines] == expected.tolist()
        assert all(line.count(",") == 2 and "[" not in line for line in lines)
    else:  # one value per row, as Python writes the float (binary: as before, the probability of class 1)
        assert lines == [repr(float(v)) for v in expected]
    if objective == "multi:softmax":
        assert set(lines) <= {"0.0", "1.0", "2.0"}


@pytest.mark.parametrize("objective", ["multi:softprob", "binary:logistic"])
def test_a_batch_transform_writes_each_rows_python_text(sagemaker, served, s3, objective):
    """SageMaker sets SAGEMAKER_BATCH in a transform's containers; the server then writes str() of each row's
    prediction: a list `[p0, p1, p2]` for softprob, the float for one value."""
    models, body = served
    artifacts, model = models[objective]
    s3.put_object(Bucket=BUCKET, Key="batch/in/rows.csv", Body=body)
    sagemaker.handle("CreateModel", {"ModelName": "batch", "ExecutionRoleArn": ROLE,
                                     "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": artifacts}})
    sagemaker.handle("CreateTransformJob", {
        "TransformJobName": "batch", "ModelName": "batch",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{BUCKET}/batch/in/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/batch/out/", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    while (job := sagemaker.handle("DescribeTransformJob", {"TransformJobName": "batch"}))[
            "TransformJobStatus"] == "InProgress":
        time.sleep(0.05)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    lines = s3.get_object(Bucket=BUCKET, Key="batch/out/rows.csv.out")["Body"].read().decode().splitlines()
    expected = model.predict(xgboost.DMatrix(np.loadtxt(body.decode().splitlines(), delimiter=",")))
    assert lines == [str(row) for row in expected.tolist()]
    if objective == "multi:softprob":
        assert all(line.startswith("[") and line.count(", ") == 2 for line in lines)


def test_json_and_refused_accepts(sagemaker, served):
    models, body = served
    artifacts, model = models["reg:squarederror"]
    answer, kind = serve(sagemaker, artifacts)(body, "text/csv", "application/json")
    expected = model.predict(xgboost.DMatrix(np.loadtxt(body.decode().splitlines(), delimiter=",")))
    assert kind == "application/json"
    assert json.loads(answer) == {"predictions": [{"score": float(v)} for v in expected]}
    with pytest.raises(ModelError, match=r"Accept type image/png is not supported"):
        serve(sagemaker, artifacts)(body, "text/csv", "image/png")
    with pytest.raises(ModelError, match="application/jsonlines is not served offline"):
        serve(sagemaker, artifacts)(body, "text/csv", "application/jsonlines")
    with pytest.raises(ValueError, match="selectable inference output .* is not served offline"):
        serve(sagemaker, artifacts, {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label"})
