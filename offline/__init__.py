"""Runs the synthesized state machines on this machine: moto's Step Functions interpreter and S3,
the real Lambda handlers, and local SageMaker jobs that really process, train and predict."""
