"""How the kit calls CDK: values computed in Python instead of tokens, IAM statement helpers, accepted checker findings; imports only stacks.cdk and stacks.aws_behaviours."""
