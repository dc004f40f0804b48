"""The emulator, a folder per layer, each importing only its own and lower ones (tests/test_layers.py): sources < runtimes < iam < services < cloud < cli, all above stacks/.

It runs the synthesized state machines on this machine: moto's Step Functions interpreter and S3, the real Lambda
handlers, and local SageMaker jobs that really process, train and predict."""
