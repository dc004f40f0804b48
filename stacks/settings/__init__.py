"""Configuration from CDK context, the model contract and the SageMaker image table; imports only stacks.settings and the layers below (stacks.cdk, stacks.aws_behaviours)."""
