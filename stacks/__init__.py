"""The CDK side of the kit, a folder per layer; a layer imports only its own and lower ones (tests/test_layers.py): aws_behaviours < cdk < settings < asl < constructs < workflows < app."""
