"""SageMaker framework images: which registry serves each region, emitted as a CloudFormation mapping; the images
themselves are the rows of stacks/settings/image_table.py."""
from __future__ import annotations

import weakref
from dataclasses import dataclass

from aws_cdk import CfnMapping, Fn, Stack
from constructs import Construct

from stacks.cdk.tokens import AWS, format_arn, stack_of
from stacks.settings.image_table import BY_FRAMEWORK, IMAGE_TABLE

# Region -> AWS account of the SageMaker framework image registry (same account for XGBoost and
# scikit-learn). Source: the SageMaker Python SDK's image_uri_config; checked against it in tests.
# Isolated partitions (us-iso*, us-isob*, us-isof*) are not supported.
REGISTRY_ACCOUNTS: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

# Region -> AWS account of the Spark processing image registry (its own accounts). Source: the SageMaker Python SDK's
# image_uri_config/spark.json, processing 3.5; checked against it in tests. Isolated partitions are not supported.
SPARK_REGISTRY_ACCOUNTS: dict[str, str] = {
    "af-south-1": "309385258863",
    "ap-east-1": "732049463269",
    "ap-east-2": "533267296287",
    "ap-northeast-1": "411782140378",
    "ap-northeast-2": "860869212795",
    "ap-northeast-3": "102471314380",
    "ap-south-1": "105495057255",
    "ap-south-2": "873151114052",
    "ap-southeast-1": "759080221371",
    "ap-southeast-2": "440695851116",
    "ap-southeast-3": "800295151634",
    "ap-southeast-4": "819679513684",
    "ap-southeast-5": "841784149062",
    "ap-southeast-6": "278240940207",
    "ap-southeast-7": "471112967968",
    "ca-central-1": "446299261295",
    "ca-west-1": "000907499111",
    "cn-north-1": "671472414489",
    "cn-northwest-1": "844356804704",
    "eu-central-1": "906073651304",
    "eu-central-2": "142351485170",
    "eu-isoe-west-1": "010264522435",
    "eu-north-1": "330188676905",
    "eu-south-1": "753923664805",
    "eu-south-2": "833944533722",
    "eu-west-1": "571004829621",
    "eu-west-2": "836651553127",
    "eu-west-3": "136845547031",
    "eusc-de-east-1": "713710892325",
    "il-central-1": "408426139102",
    "me-central-1": "395420993607",
    "me-south-1": "750251592176",
    "mx-central-1": "211125459255",
    "sa-east-1": "737130764395",
    "us-east-1": "173754725891",
    "us-east-2": "314815235551",
    "us-gov-east-1": "260923028637",
    "us-gov-west-1": "271483468897",
    "us-west-1": "667973535471",
    "us-west-2": "153931337802",
}
# An image row's `registry` -> the region table of its accounts and the name of its CloudFormation mapping.
REGISTRIES: dict[str, tuple[dict[str, str], str]] = {
    "framework": (REGISTRY_ACCOUNTS, "SageMakerImageRegistry"),
    "spark": (SPARK_REGISTRY_ACCOUNTS, "SparkImageRegistry"),
}

# Stack -> mapping name -> the account lookup (a token), so each image of a stack reuses it.
_ACCOUNTS: "weakref.WeakKeyDictionary[Stack, dict[str, str]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FrameworkImage:
    """A SageMaker container image, resolved per region at deploy time from its registry table (a mapping)."""

    framework: str
    repository: str
    tag: str
    accounts: tuple[tuple[str, str], ...] = tuple(REGISTRY_ACCOUNTS.items())
    mapping: str = "SageMakerImageRegistry"

    def _account(self, scope: Construct) -> str:
        """The registry account in the stack's region: a lookup in the stack's mapping, made once per stack."""
        stack = stack_of(scope)
        found = _ACCOUNTS.setdefault(stack, {})
        if self.mapping not in found:
            mapping = stack.node.try_find_child(self.mapping) or CfnMapping(
                stack, self.mapping, mapping={region: {"Account": account} for region, account in self.accounts})
            found[self.mapping] = mapping.find_in_map(AWS.REGION, "Account")
        return found[self.mapping]

    def uri(self, scope: Construct) -> str:
        return Fn.join("", [self._account(scope), ".dkr.ecr.", AWS.REGION, ".", AWS.URL_SUFFIX,
                            f"/{self.repository}:{self.tag}"])

    def repository_arn(self, scope: Construct) -> str:
        return format_arn(scope, service="ecr", account=self._account(scope),
                          resource="repository", resource_name=self.repository)


# ASL placeholder -> image, one per row of the image table (stacks/settings/image_table.py); the SageMaker role may
# pull exactly the images a workflow's definition names.
IMAGES = {row.placeholder: FrameworkImage(row.framework, row.repository, row.tag,
                                          tuple(REGISTRIES[row.registry][0].items()), REGISTRIES[row.registry][1])
          for row in IMAGE_TABLE}
XGBOOST = IMAGES[BY_FRAMEWORK["xgboost"].placeholder]
SKLEARN = IMAGES[BY_FRAMEWORK["sklearn"].placeholder]
