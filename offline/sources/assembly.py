"""Reads a synthesized cloud assembly and resolves what the workflows need to local values."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
# The property that names a resource of each type, where the template may set it.
NAME_PROPERTIES = {"AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::Events::Rule": "Name",
                   "AWS::Lambda::Function": "FunctionName", "AWS::S3::Bucket": "BucketName",
                   "AWS::SNS::Topic": "TopicName", "AWS::SQS::Queue": "QueueName", "AWS::IAM::Role": "RoleName",
                   "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName", "AWS::SSM::Parameter": "Name",
                   "AWS::CloudWatch::Alarm": "AlarmName", "AWS::Scheduler::Schedule": "Name"}
REF_IS_ARN = {"AWS::StepFunctions::StateMachine", "AWS::SNS::Topic", "AWS::SageMaker::ModelPackageGroup"}
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com"}


@dataclass(frozen=True)
class LocalFunction:
    name: str
    code_dir: Path  # the function's code as CDK staged it in the assembly
    handler: str
    environment: dict[str, str]
    role_arn: str  # what its handler's AWS calls are authorized as
    # Asynchronous invocations (an EventBridge rule's): Lambda's retries after a failure (its default is 2) and
    # where the record of one that still failed goes (its event invoke config's on-failure destination), if any.
    retries: int = 2
    on_failure: str | None = None


@dataclass(frozen=True)
class LocalTarget:
    """Where a rule sends a matching event, and what it sends: a fixed Input, an InputTransformer's template
    filled from the event, or the event itself."""
    arn: str
    input_paths: dict[str, str] | None = None
    input_template: str | None = None
    input: str | None = None
    role_arn: str | None = None  # the role the rule uses to reach it (a state machine); None: its resource policy


@dataclass(frozen=True)
class LocalRule:
    """An EventBridge rule of the stack: its pattern and its targets, resolved."""
    name: str
    pattern: dict
    targets: list[LocalTarget]


@dataclass(frozen=True)
class LocalWorkflow:
    stack: str
    state_machine_name: str
    definition: str  # ASL with every CloudFormation value resolved
    role_arn: str
    data_bucket: str
    functions: dict[str, LocalFunction]  # by function ARN
    file_assets: dict[tuple[str, str], Path]  # (bucket, key) -> file to upload
    rules: list[LocalRule]
    topics: list[str]  # SNS topic names
    model_package_groups: list[str]
    outputs: dict[str, str]  # the stack's outputs, resolved as CloudFormation would
    schedules: list[dict] = field(default_factory=list)  # EventBridge Scheduler schedules' properties, resolved
    queues: list[str] = field(default_factory=list)  # SQS queue names
    alarms: list[dict] = field(default_factory=list)  # CloudWatch alarms' properties, resolved

    @property
    def starts_on_model_approval(self) -> bool:
        """Whether a rule starts it when a model version is approved (it needs a version to deploy)."""
        return any(rule.pattern.get("detail-type") == ["SageMaker Model Package State Change"] for rule in self.rules)

    @property
    def takes_dataset(self) -> bool:
        """Whether its input check accepts a data set (a `dataset_uri` rule): --dataset runs it."""
        states = json.loads(self.definition)["States"].values()
        return any("dataset_uri" in s.get("Parameters", {}).get("Payload", {}).get("rules", {}) for s in states)

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.state_machine_name}"


class StackResolver:
    """Resolves the intrinsic functions the kit's templates use, with local physical names."""

    def __init__(self, stack: str, template: dict, ssm: dict[str, str] | None = None) -> None:
        self.stack, self.template = stack, template
        self.ssm = ssm if ssm is not None else {}  # SSM parameter name -> value, from every stack of the copy

    def parameter(self, name: str) -> str:
        """A template parameter's value: an SSM parameter another stack publishes, read at deploy time."""
        declared = self.template.get("Parameters", {})[name]
        if not declared["Type"].startswith("AWS::SSM::Parameter::Value"):
            raise ValueError(f"{self.stack}: cannot resolve template parameter {name}")
        if declared["Default"] not in self.ssm:
            raise ValueError(f"{self.stack} reads SSM parameter {declared['Default']}, which no stack of this "
                             "assembly creates (deploy the stack that shares it first)")
        return self.ssm[declared["Default"]]

    def physical_name(self, logical_id: str) -> str:
        """The name the template gives the resource, or one CloudFormation-like name made from its logical ID."""
        resource = self.template["Resources"].get(logical_id, {})
        given = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource.get("Type"), ""))
        return given if isinstance(given, str) else f"{self.stack}-{logical_id}".lower()[:63]

    def ref(self, logical_id: str) -> str:
        """What Ref returns for the resource's type: an ARN for state machines and topics, else its name."""
        kind = self.template["Resources"][logical_id]["Type"]
        return self.arn(logical_id) if kind in REF_IS_ARN else self.physical_name(logical_id)

    def arn(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        return {
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::SageMaker::ModelPackageGroup": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        }[kind]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "Ref" in node:
            if node["Ref"] in self.template.get("Parameters", {}):
                return self.parameter(node["Ref"])
            return PSEUDO.get(node["Ref"]) or self.ref(node["Ref"])
        if "Fn::GetAtt" in node:
            logical_id, attribute = node["Fn::GetAtt"]
            if attribute == "QueueName" and self.template["Resources"][logical_id]["Type"] == "AWS::SQS::Queue":
                return self.physical_name(logical_id)
            if attribute != "Arn":
                raise ValueError(f"cannot resolve {node}")
            return self.arn(logical_id)
        if "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return separator.join(str(self.resolve(part)) for part in parts)
        if "Fn::FindInMap" in node:
            mapping, key, attribute = (self.resolve(part) for part in node["Fn::FindInMap"])
            return self.template["Mappings"][mapping][key][attribute]
        if "Fn::Sub" in node:
            text = node["Fn::Sub"]
            for name, value in PSEUDO.items():
                text = text.replace("${" + name + "}", value)
            return text
        return {key: self.resolve(value) for key, value in node.items()}


def queue_url(name: str) -> str:
    """An SQS queue's URL in the local account, as SQS (and moto) forms it."""
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def stack_artifacts(outdir: Path, stage: str | None = None) -> list[tuple[Path, str, dict]]:
    """(assembly folder, artifact id, artifact) of each stack: the top level's, or one stage's."""
    manifest = json.loads((outdir / "manifest.json").read_text())["artifacts"]
    stages = {a["properties"]["displayName"].rsplit("/", 1)[-1]: outdir / a["properties"]["directoryName"]
              for a in manifest.values() if a["type"] == "cdk:cloud-assembly"}
    if stage is not None:
        if stage not in stages:
            raise ValueError(f"no stage {stage!r} in {outdir}; it has {', '.join(sorted(stages)) or 'no stages'}")
        return stack_artifacts(stages[stage])
    stacks = [(outdir, key, a) for key, a in manifest.items() if a["type"] == "aws:cloudformation:stack"]
    if not stacks and stages:
        raise ValueError(f"{outdir} holds stages ({', '.join(sorted(stages))}); choose one (--stage)")
    return stacks


@dataclass(frozen=True)
class SynthesizedStack:
    folder: Path  # the assembly folder holding it
    artifact_id: str
    name: str  # the stack's id in the app, e.g. TrainAndTransform
    template: dict
    resolver: StackResolver


def synthesized_stacks(outdir: Path, stage: str | None = None) -> list[SynthesizedStack]:
    """Every stack of the assembly (or of one of its stages), its template resolved with local names; what
    the stacks share through SSM parameters resolves as CloudFormation would have created them."""
    artifacts = stack_artifacts(outdir, stage)
    templates = {artifact_id: json.loads((folder / artifact["properties"]["templateFile"]).read_text())
                 for folder, artifact_id, artifact in artifacts}
    ssm = {}
    for _, artifact_id, artifact in artifacts:
        sharing = StackResolver(artifact["properties"].get("stackName", artifact_id), templates[artifact_id])
        ssm.update({sharing.resolve(r["Properties"]["Name"]): sharing.resolve(r["Properties"]["Value"])
                    for r in templates[artifact_id]["Resources"].values() if r["Type"] == "AWS::SSM::Parameter"})
    return [SynthesizedStack(folder, artifact_id, artifact.get("displayName", artifact_id).rsplit("/", 1)[-1],
                             templates[artifact_id],
                             StackResolver(artifact["properties"].get("stackName", artifact_id),
                                           templates[artifact_id], ssm))
            for folder, artifact_id, artifact in artifacts]


def load_workflows(outdir: Path, stage: str | None = None) -> dict[str, LocalWorkflow]:
    """Every state machine of the assembly (or of one of its stages), by stack id, ready to run locally."""
    workflows = {}
    for synthesized in synthesized_stacks(outdir, stage):
        folder, artifact_id, stack = synthesized.folder, synthesized.artifact_id, synthesized.name
        template, resolver = synthesized.template, synthesized.resolver
        assets = json.loads((folder / f"{artifact_id}.assets.json").read_text())["files"]
        resources = template["Resources"]
        machines = [k for k, r in resources.items() if r["Type"] == "AWS::StepFunctions::StateMachine"]
        for logical_id in machines:
            props = resources[logical_id]["Properties"]
            functions = {}
            invoke_configs = {resolver.resolve(r["Properties"]["FunctionName"]): r["Properties"]
                              for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"}
            for function_id, function in resources.items():
                if function["Type"] != "AWS::Lambda::Function":
                    continue
                fprops = function["Properties"]
                asset_hash = fprops["Code"]["S3Key"].removesuffix(".zip")
                asynchronous = invoke_configs.get(resolver.physical_name(function_id), {})
                functions[resolver.arn(function_id)] = LocalFunction(
                    name=resolver.physical_name(function_id),
                    code_dir=folder / assets[asset_hash]["source"]["path"],
                    handler=fprops["Handler"],
                    environment=resolver.resolve(fprops.get("Environment", {}).get("Variables", {})),
                    role_arn=resolver.resolve(fprops["Role"]),
                    retries=asynchronous.get("MaximumRetryAttempts", 2),
                    on_failure=resolver.resolve(asynchronous.get("DestinationConfig", {}).get("OnFailure", {})
                                                .get("Destination")))
            file_assets = {}
            for asset in assets.values():
                if asset["source"].get("packaging") == "file":
                    for destination in asset["destinations"].values():
                        bucket = resolver.resolve({"Fn::Sub": destination["bucketName"]})
                        file_assets[(bucket, destination["objectKey"])] = folder / asset["source"]["path"]
            rules = [LocalRule(name=resolver.physical_name(rule_id),
                               pattern=resolver.resolve(rule["Properties"]["EventPattern"]),
                               targets=[LocalTarget(resolver.resolve(t["Arn"]),
                                                    t.get("InputTransformer", {}).get("InputPathsMap"),
                                                    resolver.resolve(t.get("InputTransformer", {}).get("InputTemplate")),
                                                    resolver.resolve(t.get("Input")), resolver.resolve(t.get("RoleArn")))
                                        for t in rule["Properties"].get("Targets", [])])
                     for rule_id, rule in resources.items() if rule["Type"] == "AWS::Events::Rule"]
            named = lambda kind: [resolver.physical_name(k) for k, r in resources.items() if r["Type"] == kind]  # noqa
            properties = lambda kind: [{**resolver.resolve(r["Properties"]),  # noqa: E731
                                        "Name": resolver.physical_name(k)}
                                       for k, r in resources.items() if r["Type"] == kind]
            workflows[stack] = LocalWorkflow(
                stack=stack,
                state_machine_name=resolver.physical_name(logical_id),
                definition=resolver.resolve(props["DefinitionString"]),
                role_arn=resolver.resolve(props["RoleArn"]),
                data_bucket=resolver.resolve(template["Outputs"]["DataBucketName"]["Value"]),
                functions=functions,
                file_assets=file_assets,
                rules=rules,
                topics=named("AWS::SNS::Topic"),
                model_package_groups=named("AWS::SageMaker::ModelPackageGroup"),
                outputs={name: resolver.resolve(output["Value"]) for name, output in template["Outputs"].items()},
                schedules=properties("AWS::Scheduler::Schedule"),
                queues=named("AWS::SQS::Queue"),
                alarms=properties("AWS::CloudWatch::Alarm"),
            )
    return workflows
