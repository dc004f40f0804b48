"""What the kit's functions and state machines need in each partition, and what the pages say is there: the table
the supported-regions claim (docs/deploy.md) rests on and the templates follow.

A feature is "stated" available or unavailable when an AWS page says so, "unverified" when none was found; the
template adapts to what is stated (Lambda's X-Ray tracing is PassThrough in China), and the docs name each
unverified one as such instead of claiming it. Read on 2026-12-07.
"""
from __future__ import annotations

from dataclasses import dataclass

CHINA_LAMBDA = "https://docs.amazonaws.cn/en_us/aws/latest/userguide/lambda.html"


@dataclass(frozen=True)
class Availability:
    available: bool | None  # None: unverified
    source: str


# Partition -> feature -> availability. The commercial partition is where the kit is tested (offline) and its
# CDK release's runtime list comes from; China and GovCloud have the SageMaker images (stacks/settings/images.py).
PARTITIONS: dict[str, dict[str, Availability]] = {
    "aws": {
        "lambda python3.14 arm64": Availability(True, "Lambda developer guide, runtimes and instruction sets"),
        "lambda X-Ray tracing": Availability(True, "Lambda developer guide, tracing with X-Ray"),
    },
    "aws-cn": {
        "lambda python3.14 arm64": Availability(None, f"{CHINA_LAMBDA} says runtime release dates do not apply in "
                                                      "China; no page lists python3.14 or arm64 there"),
        "lambda X-Ray tracing": Availability(False, f"{CHINA_LAMBDA}: X-Ray integration with Lambda functions is not "
                                                    "available in the China Regions"),
    },
    "aws-us-gov": {
        "lambda python3.14 arm64": Availability(None, "no GovCloud page found that lists python3.14 or arm64"),
        "lambda X-Ray tracing": Availability(None, "no GovCloud page found that states it either way"),
    },
}


def partitions_without(feature: str) -> list[str]:
    """The partitions where a page states the feature is not available (the template leaves it out there)."""
    return sorted(p for p, features in PARTITIONS.items() if features[feature].available is False)
