# Every target installs what it needs into this folder (.venv, node_modules); nothing global.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
STAMPS := .stamps
# The pinned Node (from package.json) comes first, so the CDK CLI and jsii both run on it.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
# Set-up steps that do not depend on each other (npm, and each virtual environment) run side by side. (No
# --output-sync: it would hold back a recipe's prompt, such as cdk destroy's, until the recipe ends.)
MAKEFLAGS += --jobs=4

.PHONY: help run site synth preflight test deploy destroy delete-endpoint bench diagrams clean

help:
	@echo "make run      synthesize the app and run every workflow offline, end to end (RUN_ARGS=--help)"
	@echo "make site     serve the results site over the last make run's results (http://localhost:8501)"
	@echo "make synth    synthesize every stack into cdk.out (cdk-nag applied; no AWS account needed)"
	@echo "make preflight synthesize, then list the AWS behaviours the app relies on and their sources; fail on a field Step Functions refuses"
	@echo "make test     run the test suite"
	@echo "make deploy   deploy every stack (or STACKS=\"A B\") to the account of your AWS credentials"
	@echo "make destroy  delete the stacks, asking first (CDK_ARGS=--force: without asking; STACKS=... as deploy)"
	@echo "make delete-endpoint  delete DeployApproved's endpoint, its configs and models (STAGE=...)"
	@echo "make bench    synthesis vs a hand-written peer (time, jsii calls), per added workflow, test suite, make run"
	@echo "make diagrams rewrite the workflow diagrams in docs/*.md from statemachines/*.asl.json"

$(STAMPS)/node: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/python: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/python-dev: $(STAMPS)/python requirements-dev.txt results_site/requirements.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# checkov pins an older boto3 than the kit uses, so it lives in a virtual environment of its own.
$(STAMPS)/checkov: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@mkdir -p $(STAMPS) && touch $@

# The AWS CLI pins its own botocore: a virtual environment of its own, for the pipeline check test.
$(STAMPS)/awscli: requirements-awscli.txt
	test -x .venv-awscli/bin/python || $(PYTHON) -m venv .venv-awscli
	.venv-awscli/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-awscli.txt
	@mkdir -p $(STAMPS) && touch $@

# Offline Spark jobs run in local Spark with this environment's Python and its Java (offline/runtimes/spark_jobs.py).
$(STAMPS)/spark: requirements-spark.txt
	test -x .venv-spark/bin/python || $(PYTHON) -m venv .venv-spark
	.venv-spark/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-spark.txt
	@mkdir -p $(STAMPS) && touch $@

# STAGE=dev builds the copy of the kit for that stage (-c stage=dev); its stacks are selected as dev/*.
STAGE_ARGS = $(if $(STAGE),-c stage=$(STAGE))

synth: $(STAMPS)/node $(STAMPS)/python
	rm -rf cdk.out  # so no stage or stack of an earlier synthesis lingers beside this one
	cdk synth --quiet $(STAGE_ARGS) $(CDK_ARGS)
	@echo "Synthesized $$(find cdk.out -name '*.template.json' | wc -l) stacks into cdk.out/ (cdk-nag report: cdk.out/validation-report.json)"

preflight: synth
	$(VENV)/bin/python -m operations.preflight $(if $(STAGE),--stage $(STAGE))

run: $(STAMPS)/node $(STAMPS)/python-dev $(STAMPS)/spark
	$(VENV)/bin/python -m offline.run --approve $(if $(STAGE),--stage $(STAGE)) --cdk-args="$(CDK_ARGS)" $(RUN_ARGS)

# SITE_ARGS: --snapshot <site.json> --port <port> (default: the last make run's, on 8501).
site: $(STAMPS)/python-dev
	$(VENV)/bin/python -m offline.cli.site $(SITE_ARGS)

test: $(STAMPS)/node $(STAMPS)/python-dev $(STAMPS)/checkov $(STAMPS)/awscli $(STAMPS)/spark
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# STACKS names the stacks to deploy or destroy; every stack (of the STAGE) when it is empty.
SELECTION = $(or $(STACKS),$(if $(STAGE),'$(STAGE)/*',--all))

deploy: $(STAMPS)/node $(STAMPS)/python
	cdk deploy $(STAGE_ARGS) $(SELECTION) $(CDK_ARGS)

destroy: $(STAMPS)/node $(STAMPS)/python
	cdk destroy $(STAGE_ARGS) $(SELECTION) $(CDK_ARGS)

# What DeployApproved's runs create at run time, outside CloudFormation: a real-time endpoint bills every hour.
delete-endpoint: $(STAMPS)/node $(STAMPS)/python
	$(VENV)/bin/python -m operations.delete_endpoint $(if $(STAGE),--stage $(STAGE))

bench: $(STAMPS)/node $(STAMPS)/python-dev $(STAMPS)/checkov $(STAMPS)/awscli $(STAMPS)/spark
	$(VENV)/bin/python benchmarks/measure.py
	$(VENV)/bin/python benchmarks/large_data.py

diagrams: $(STAMPS)/node $(STAMPS)/python
	$(VENV)/bin/python -m stacks.app.diagram --write

clean:
	rm -rf cdk.out $(STAMPS) .pytest_cache
