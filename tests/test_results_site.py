"""The results site's stack (stacks/app/results_site.py): nothing reaches the app without a Cognito sign-in, the
task's role only reads what results_site/results.py reads, and a wrong setting fails synthesis in one line. (It
synthesizes cdk-nag clean, or its configuration would not synthesize; cfn-lint and checkov read it in
tests/test_security.py; the page itself is tested in tests/test_monitoring.py.)"""
from __future__ import annotations

import importlib.util
import json

import pytest

from stacks.settings.config import ConfigError, KitConfig
from syrupy.extensions.json import JSONSnapshotExtension

from tests.cfn import of_type
from contract import run_layout
from contract.results import RESULTS
from tests.conftest import RESULTS_SITE, ROOT
from tests.test_iam import iam_of, masked, statements

SITE = "ResultsSite"


@pytest.fixture(scope="module")
def template(synthesized) -> dict:
    return synthesized["results-site"].templates[SITE]


def test_only_with_its_setting(synthesized):
    assert SITE not in synthesized["default"].templates


@pytest.mark.parametrize(("settings", "message"), [
    ({"results_site": "true"}, "invalid setting results_site_domain=None: expected a value with results_site=true"),
    ({**RESULTS_SITE, "results_site_domain": "Results.Example.com"}, "invalid setting results_site_domain="),
    ({**RESULTS_SITE, "results_site_certificate_arn": "arn:aws:iam::111122223333:server-certificate/x"},
     "expected an ACM certificate ARN"),
    ({"results_site_domain": "results.example.com"}, "expected no value without results_site=true"),
    ({**RESULTS_SITE, "pipeline_repository": "example/kit", "pipeline_connection_arn":
      "arn:aws:codeconnections:eu-west-1:111122223333:connection/12345678-1234-1234-1234-123456789012"},
     "invalid setting results_site=True: expected false with pipeline settings"),
])
def test_a_wrong_setting_fails_in_one_line(settings, message):
    with pytest.raises(ConfigError, match=message) as raised:
        KitConfig.from_context(settings)
    assert "\n" not in str(raised.value)


def test_every_request_signs_in_with_cognito_before_it_reaches_the_app(template):
    listeners = of_type(template, "AWS::ElasticLoadBalancingV2::Listener")
    by_port = {listener["Properties"]["Port"]: listener["Properties"] for listener in listeners.values()}
    assert set(by_port) == {80, 443}
    assert of_type(template, "AWS::ElasticLoadBalancingV2::ListenerRule") == {}  # no path around the default action
    https = by_port[443]
    assert https["Protocol"] == "HTTPS" and https["Certificates"] == [
        {"CertificateArn": RESULTS_SITE["results_site_certificate_arn"]}]
    sign_in, forward = sorted(https["DefaultActions"], key=lambda action: action["Order"])
    assert sign_in["Type"] == "authenticate-cognito" and forward["Type"] == "forward"
    (users,) = of_type(template, "AWS::Cognito::UserPool")
    assert sign_in["AuthenticateCognitoConfig"]["UserPoolArn"] == {"Fn::GetAtt": [users, "Arn"]}
    assert by_port[80]["DefaultActions"] == [{"Type": "redirect", "RedirectConfig": {
        "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}]
    (target,) = of_type(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert forward["TargetGroupArn"] == {"Ref": target}
    # The task admits the load balancer's group only.
    (service,) = of_type(template, "AWS::ECS::Service").values()
    (task_group,) = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    ingress = [rule["Properties"] for rule in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
               if rule["Properties"]["GroupId"] == task_group]
    assert [(i["FromPort"], i["ToPort"], "SourceSecurityGroupId" in i) for i in ingress] == [(8501, 8501, True)]


def test_users_are_created_by_administrators_and_sign_in_with_mfa(template):
    (pool,) = of_type(template, "AWS::Cognito::UserPool").values()
    properties = pool["Properties"]
    assert properties["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert properties["MfaConfiguration"] == "ON" and properties["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    (client,) = of_type(template, "AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["CallbackURLs"] == ["https://results.example.com/oauth2/idpresponse"]
    assert client["Properties"]["GenerateSecret"] is True


def test_the_task_only_reads_what_the_page_shows(template):
    (task,) = of_type(template, "AWS::ECS::TaskDefinition").values()
    role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    found = statements(template, "Task/TaskRole")
    actions = sorted(a for s in found for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["cloudwatch:DescribeAlarms", "s3:GetObject", "s3:ListBucket", "s3:ListBucket",
                       "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"]
    assert role.startswith("TaskTaskRole")
    (container,) = task["Properties"]["ContainerDefinitions"]
    assert sorted(e["Name"] for e in container["Environment"]) == sorted(
        ["BUILD_BUCKET", "DEPLOY_BUCKET", "MONITOR_BUCKET", "MODEL_PACKAGE_GROUP", "ALARM_PREFIX"])
    names = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert (names["MODEL_PACKAGE_GROUP"], names["ALARM_PREFIX"]) == ("mlkit-br-models", "mlkit-mon-")


def test_every_role_and_policy_matches_its_reviewed_snapshot(template, snapshot):
    """The exact statements of the site's roles (task, image pull and logs, flow logs), as a reviewer reads them
    (tests/__snapshots__/test_results_site/)."""
    assert masked(iam_of(template)) == snapshot.use_extension(JSONSnapshotExtension)(name=SITE)


def site_results():
    """results_site/results.py as the container runs it: a module of its own, without the kit's packages."""
    spec = importlib.util.spec_from_file_location("site_results", ROOT / "results_site" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sites_copies_of_the_layout_are_the_kits():
    """The container holds results_site/ alone, so it names the kit's folders itself: they must stay the same."""
    results = site_results()
    assert results.DEPLOYMENT_RECORD == run_layout.DEPLOYMENT_RECORD and results.MONITOR_ROWS == RESULTS


def test_the_page_says_what_serves_from_the_monitors_newest_window_else_the_last_deployment(tmp_path):
    """results_site/results.py over a kept run: two versions, version 2 deployed last, but the monitor's newest
    window found version 1 behind the endpoint (a rollback): version 1 serves, and the page says how it knows."""
    results = site_results()
    arn = "arn:aws:sagemaker:us-east-1:111122223333:model-package/g/{}".format
    objects = {"build/runs/r1/evaluation/evaluation.json": {"task": "binary", "gate": {"metric": "auc", "value": 0.9},
                                                           "binary_classification_metrics": {"auc": {"value": 0.9}}},
               "deploy/runs/d1/deployment/version.json": {"model_package_arn": arn(1)},
               "deploy/runs/d2/deployment/version.json": {"model_package_arn": arn(2)},
               "monitor/results/monitor/w1.json": {"window_start": "a", "window_end": "b", "model_package_arn": arn(1)}}
    for key, body in objects.items():
        (tmp_path / "s3" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "s3" / key).write_text(json.dumps(body))
    listings = {"deploy": [["runs/d1/deployment/version.json", "2026-01-01T00:00:00"],
                           ["runs/d2/deployment/version.json", "2026-01-02T00:00:00"]],
                "monitor": [["results/monitor/w1.json", "2026-01-03T00:00:00"]], "build": []}
    packages = [{"ModelPackageGroupName": "g", "ModelPackageArn": arn(n), "ModelPackageVersion": n,
                 "ModelApprovalStatus": "Approved", "ModelMetrics": {"ModelQuality": {"Statistics": {
                     "S3Uri": "s3://build/runs/r1/evaluation/evaluation.json"}}}} for n in (1, 2)]
    names = {"BUILD_BUCKET": "build", "DEPLOY_BUCKET": "deploy", "MONITOR_BUCKET": "monitor",
             "MODEL_PACKAGE_GROUP": "g", "ALARM_PREFIX": "m-"}
    snapshot = tmp_path / "site.json"
    snapshot.write_text(json.dumps({"s3": str(tmp_path / "s3"), "names": names, "model_packages": packages,
                                    "alarms": [], "objects": listings}))
    source = results.SnapshotSource(snapshot)
    found = results.gather(source, names)
    assert "deployed" not in found  # the monitor's window says it: the deployment bucket is not listed
    assert found["serving_version"]["version"] == 1 and found["serving_known_from"] == "the monitor's window ending b"
    assert [v["version"] for v in found["versions"]] == [2, 1] and found["versions"][0]["metrics"] == {"auc": 0.9}
    (tmp_path / "s3" / "monitor" / "results" / "monitor" / "w1.json").unlink()
    source.snapshot["objects"]["monitor"] = []
    found = results.gather(source, names)
    assert found["deployed"]["model_package_arn"] == arn(2)
    assert found["serving_version"]["version"] == 2 and "last deployment" in found["serving_known_from"]
