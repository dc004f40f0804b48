"""The deploy-side commands the README and docs/*.md show, verbatim, in a fresh shell with no AWS credentials: each
must get as far as asking for an AWS account, and fail on nothing earlier (a missing module, a wrong make target, a
prompt)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import ROOT

# command -> the answer typed at its prompt, for the one that asks (it runs in a pseudo-terminal, as in a shell)
COMMANDS = {
    "npx cdk bootstrap": None,
    "npx cdk diff": None,
    "make deploy": None,
    "make deploy STACKS=TrainAndTransform": None,
    "make deploy STAGE=dev": None,
    "make deploy STACKS=Pipeline CDK_ARGS=\"-c pipeline_repository=example/sagemaker-kit -c pipeline_connection_arn="
    "arn:aws:codeconnections:eu-west-1:111122223333:connection/12345678-1234-1234-1234-123456789012\"": None,
    "npx cdk bootstrap aws://111111111111/eu-west-1": None,
    "npx cdk bootstrap aws://222222222222/eu-west-1 aws://333333333333/eu-west-1 --trust 111111111111 "
    "--cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess": None,
    "make deploy STACKS=Pipeline CDK_ARGS=\"-c pipeline_repository=example/sagemaker-kit -c pipeline_connection_arn="
    "arn:aws:codeconnections:eu-west-1:111111111111:connection/12345678-1234-1234-1234-123456789012 -c "
    "pipeline_environment=aws://111111111111/eu-west-1 -c dev_environment=aws://222222222222/eu-west-1 -c "
    "prod_environment=aws://333333333333/eu-west-1\"": None,
    "make destroy": "y\n",
    "make destroy CDK_ARGS=--force": None,
    "make delete-endpoint": None,
    "make delete-endpoint STAGE=dev": None,
}
NO_CREDENTIALS = "Unable to resolve AWS account to use"  # the CDK CLI's words; boto3's below
# The CDK CLI's words when the command names the account (aws://<account>/<region>, or a stack's env).
NO_CREDENTIALS_FOR_ACCOUNT = re.compile(r"Need to perform AWS calls for account \d{12}, but no credentials have been "
                                        r"configured")
BOTO3_NO_CREDENTIALS = "Unable to locate credentials"


DOCUMENTATION = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_shell_lines() -> set[str]:
    """Every line of every ```bash block of the README and the docs pages, comments dropped."""
    blocks = [block for page in DOCUMENTATION
              for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S)]
    return {line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()}


def test_the_docs_show_exactly_these_deploy_commands():
    shown = {line for line in documented_shell_lines() if re.match(r"(npx cdk|make (deploy|destroy|delete-endpoint))\b", line)}
    assert shown == set(COMMANDS)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The user's home, shared by the commands as a user's is: the first fills the caches tools keep there (jsii
    unpacks the CDK's 200 MB of JavaScript into ~/.cache on its first run), the others find them. It never holds
    AWS configuration."""
    return tmp_path_factory.mktemp("home")


@pytest.mark.slow  # each command starts make, the CDK CLI and a synthesis in a new shell
@pytest.mark.parametrize("command", COMMANDS)
def test_command_fails_only_for_want_of_credentials(command, home):
    # A new shell: system PATH only (no .venv or node_modules), no AWS configuration at all.
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "AWS_REGION": "eu-west-1",
                   "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
                   "AWS_EC2_METADATA_DISABLED": "true", "npm_config_update_notifier": "false"}
    answer = COMMANDS[command]
    argv = ["script", "-qec", command, "/dev/null"] if answer else ["bash", "-c", command]
    done = subprocess.run(argv, cwd=ROOT, env=environment, input=answer or "", capture_output=True, text=True,
                          timeout=300)
    output = done.stdout + done.stderr
    expected = (BOTO3_NO_CREDENTIALS if command.startswith("make delete-endpoint") else
                NO_CREDENTIALS_FOR_ACCOUNT.search(output).group(0) if "aws://" in command else NO_CREDENTIALS)
    assert done.returncode != 0, output
    assert expected in output, output
    assert "Traceback" not in output and "error:" not in output.replace(expected, ""), output
    assert not (home / ".aws").exists() and not (home / "none").exists()


SITE_SYNTH = re.compile(r"make synth CDK_ARGS=\"-c results_site=true .*\"")


@pytest.mark.slow  # make, the CDK CLI and a synthesis in a new shell
def test_the_results_site_synthesizes_with_the_documented_line_and_no_docker(home):
    """The README's line, verbatim, in a new shell without AWS configuration or Docker: the site's stack and its
    image asset (built only at deployment) are in cdk.out."""
    (line,) = {line for line in documented_shell_lines() if SITE_SYNTH.fullmatch(line)}
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "AWS_REGION": "eu-west-1",
                   "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
                   "AWS_EC2_METADATA_DISABLED": "true", "npm_config_update_notifier": "false", "DOCKER_HOST": "unix:///none"}
    done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assets = json.loads((ROOT / "cdk.out" / "ResultsSite.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["directory"].startswith("asset.")


def test_the_documented_price_list_commands_fail_only_for_want_of_credentials(home):
    """docs/deploy-approved.md's Price List lines, verbatim, with the AWS CLI the kit installs (.venv-awscli): the CLI
    parses every option (a shorthand filter it cannot read fails before credentials are looked for) and stops only
    at the missing credentials."""
    lines = sorted(line for line in documented_shell_lines() if line.startswith("aws pricing "))
    shown = [line.strip("`") for line in re.findall(r"`aws pricing [^`]+`", (ROOT / "docs" / "deploy-approved.md")
                                                    .read_text())]
    assert len(lines) == 1 and shown
    environment = {"PATH": f"{ROOT / '.venv-awscli' / 'bin'}:/usr/bin:/bin", "HOME": str(home),
                   "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
                   "AWS_EC2_METADATA_DISABLED": "true"}
    for line in [*lines, *shown]:
        done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=environment, capture_output=True, text=True,
                              timeout=60)
        output = done.stdout + done.stderr
        assert done.returncode != 0 and "Unable to locate credentials" in output, (line, output)
