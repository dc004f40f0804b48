"""The container images the kit uses, one row each: where each comes from, what it holds and what runs it offline.

Every other place reads its images here: the region mapping and ASL placeholders (stacks/settings/images.py), the
frameworks a team's script may name (stacks/settings/model_contract.py), DeployApproved's function environment, and
offline the runners per image (offline/cloud/integrations.py, offline/runtimes/serving.py, sagemaker_jobs.py) and the
library versions a run compares with this machine's (offline/runtimes/image_versions.py). Standard library only:
the emulator's per-host training processes import it without loading the CDK.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

JOBS = "offline/runtimes/sagemaker_jobs.py"
SCRIPT_MODE = "offline/runtimes/script_mode.py"
SERVING = "offline/runtimes/serving.py"
SPARK = "offline/runtimes/spark_jobs.py"


@dataclass(frozen=True)
class Image:
    """One SageMaker framework image: `<registry>/<repository>:<tag>`, the registry per region in images.py."""

    framework: str  # the SageMaker SDK's name (image_uri_config/<framework>.json) and model.json's "framework"
    repository: str
    tag: str
    placeholder: str  # the ASL placeholder its URI fills: ${<placeholder>}
    libraries: Mapping[str, str]  # library -> the version the tag installs (sources beside each row)
    built_in_algorithm: bool  # a training job without a script runs SageMaker's built-in algorithm
    script_mode: bool  # its toolkit runs a team's script (training, and serving its inference module)
    offline: str  # what runs it offline
    serves: bool = True  # a registered model's container may be this image (served offline, checked on deploy)
    registry: str = "framework"  # whose registry accounts serve it per region (stacks/settings/images.py REGISTRIES)

    @property
    def environment(self) -> str:
        """The Lambda environment variable that carries its URI (DeployApproved's CheckModelPackage)."""
        return f"{self.framework.upper()}_IMAGE"


IMAGE_TABLE: tuple[Image, ...] = (
    # XGBoost 1.7-1 is the current framework image; the built-in xgboost:latest (0.72) is deprecated.
    Image(framework="xgboost", repository="sagemaker-xgboost", tag="1.7-1", placeholder="XGBoostImage",
          # aws/sagemaker-xgboost-container, branch 1.7-1 (f7a93a2), docker/1.7-1/base/Dockerfile.cpu
          # (XGBOOST_VERSION 1.7.4, Python 3.9) and requirements.txt.
          libraries=MappingProxyType({"python": "3.9", "xgboost": "1.7.4", "numpy": "1.24.1", "pandas": "1.2.4",
                                      "scipy": "1.8.0", "scikit-learn": "0.24.1"}),
          built_in_algorithm=True, script_mode=True,
          offline=f"the built-in XGBoost algorithm, or a script in framework mode ({JOBS}, {SCRIPT_MODE})"),
    Image(framework="sklearn", repository="sagemaker-scikit-learn", tag="1.2-1-cpu-py3", placeholder="SklearnImage",
          # aws/sagemaker-scikit-learn-container, branch 1.2-1 (b440c40), docker/1.2-1/base/Dockerfile.cpu
          # (Python 3.9, scikit-learn 1.2.1) and requirements.txt.
          libraries=MappingProxyType({"python": "3.9", "scikit-learn": "1.2.1", "numpy": "1.24.1", "pandas": "1.1.3",
                                      "scipy": "1.8.0"}),
          built_in_algorithm=False, script_mode=True,
          offline=f"processing scripts and script-mode training ({JOBS}, {SCRIPT_MODE}); serving its inference "
                  f"module ({SERVING})"),
    # A processing job's PySpark application, through the image's smspark-submit (no model serves from it).
    # aws/sagemaker-spark-container (7d90eeb): new_images.yml releases 3.5 py312 as v1.3; its Dockerfile.cpu
    # (spark/processing/3.5/py3/docker/py312) installs Python 3.12, Java 17 (Corretto) and EMR 7.12.0's Spark
    # (yum/emr-apps.repo; Spark 3.5.6-amzn-1 per the EMR 7.12.0 release notes), smsparkbuild/py312/Pipfile.runtime
    # numpy 1.26.4. Offline: local Spark of the same release, on Java from PyPI (requirements-spark.txt).
    Image(framework="spark", repository="sagemaker-spark-processing", tag="3.5-cpu-py312-v1.3",
          placeholder="SparkImage",
          libraries=MappingProxyType({"python": "3.12", "pyspark": "3.5.6", "numpy": "1.26.4"}),
          built_in_algorithm=False, script_mode=False, serves=False, registry="spark",
          offline=f"a processing job's PySpark application in local Spark, as smspark-submit runs it ({SPARK})"),
)
SERVING_IMAGES: tuple[Image, ...] = tuple(image for image in IMAGE_TABLE if image.serves)
BY_FRAMEWORK: Mapping[str, Image] = MappingProxyType({image.framework: image for image in IMAGE_TABLE})
BY_REPOSITORY: Mapping[str, Image] = MappingProxyType({image.repository: image for image in IMAGE_TABLE})
# The image whose training job, without a script, runs SageMaker's built-in algorithm.
BUILT_IN_ALGORITHM: Image = next(image for image in IMAGE_TABLE if image.built_in_algorithm)
