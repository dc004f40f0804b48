"""The results site on AWS (`-c results_site=true`): results_site/'s container on ECS Fargate behind an internet-facing
Application Load Balancer whose HTTPS listener signs every request in with Amazon Cognito before forwarding it, as
the article's web-app architecture has it. Users live in the stack's user pool (no self sign-up: an administrator
creates them). The task's role only reads: the three stacks' results, the model registry's versions, the
monitor's alarms.

No NAT gateway (a fixed monthly charge): the task runs in public subnets with a public address, reachable only
from the load balancer's security group, and reaches S3 through a gateway endpoint. The image is built at
deployment (Docker then; synthesis needs none) from results_site/Dockerfile.
"""
from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, CfnOutput, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_actions as elb_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contract.results import RESULTS
from contract.run_layout import DEPLOYMENT, EVALUATION, RUNS, glob
from stacks.cdk.compliance import (INLINE_POLICY_REASON, LOGS_KMS_REASON, accept, accept_each,
                                   acknowledge_generated_policies, default_policy)
from stacks.cdk.permissions import allow
from stacks.cdk.tokens import bucket_arn, format_arn, objects_arn
from stacks.constructs.model_registry import model_package_group_name, model_package_versions
from stacks.settings.config import LOG_RETENTION, KitConfig
from stacks.workflows.build_and_register import BuildAndRegisterStack, read_shared
from stacks.workflows.deploy_approved import DeployApprovedStack
from stacks.workflows.monitor_endpoint import MonitorEndpointStack

SITE = Path(__file__).resolve().parents[2] / "results_site"
PORT = 8501  # Streamlit's, as the Dockerfile starts it
HEALTH = "/_stcore/health"  # Streamlit's health check path
SLUG = "site"
SESSION_HOURS = 8  # a signed-in session lasts a working day (the load balancer's default is 7 days): a user an
# administrator disables loses the site within that


def site_environment(config: KitConfig) -> Environment:
    """The certificate's region: a load balancer uses a certificate of its own region only, and its access logs
    need the region at synthesis (the log bucket's policy names that region's log delivery). No account: the
    availability zones stay CloudFormation's (Fn::GetAZs), as no lookup runs."""
    return Environment(region=config.results_site_certificate_arn.split(":")[3])


class ResultsSiteStack(Stack):
    def __init__(self, scope: Construct, stack_id: str, *, config: KitConfig, **kwargs) -> None:
        super().__init__(scope, stack_id, description="The results site of the kit's models and monitoring, "
                                                      "behind a Cognito sign-in", **kwargs)
        self.prefix = config.job_name_prefix(SLUG)
        prefixes = {cls: config.job_name_prefix(cls.spec.slug)
                    for cls in (BuildAndRegisterStack, DeployApprovedStack, MonitorEndpointStack)}
        buckets = {cls: read_shared(self, prefix, "data-bucket-name") for cls, prefix in prefixes.items()}
        names = {"BUILD_BUCKET": buckets[BuildAndRegisterStack], "DEPLOY_BUCKET": buckets[DeployApprovedStack],
                 "MONITOR_BUCKET": buckets[MonitorEndpointStack],
                 "MODEL_PACKAGE_GROUP": model_package_group_name(prefixes[BuildAndRegisterStack]),
                 "ALARM_PREFIX": f"{prefixes[MonitorEndpointStack]}-"}
        retention = LOG_RETENTION[config.log_retention_days]
        removal = RemovalPolicy.DESTROY if config.destroy_data_on_delete else RemovalPolicy.RETAIN

        vpc = ec2.Vpc(self, "Network", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24,
                                    map_public_ip_on_launch=False)],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)})
        # CDK closes the network's default security group with a custom resource of its own (a feature flag of
        # cdk.json); its handler references its role by GetAtt already (cfn-lint W3005 on the extra DependsOn).
        closer = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if closer is not None:
            closer.node.find_child("Handler").add_deletion_override("DependsOn")
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=retention, removal_policy=removal)
        flow = vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        for subnet in vpc.public_subnets:
            accept(subnet.node.find_child("DefaultRoute"), "route-to-internet",
                   "The internet-facing load balancer lives in these subnets; the task's group admits only the "
                   "load balancer, and the task needs the route to reach ECR, SageMaker and CloudWatch without a "
                   "NAT gateway's monthly charge.")

        task = ecs.FargateTaskDefinition(self, "Task", cpu=256, memory_limit_mib=512)
        task.add_container("Site", image=ecs.ContainerImage.from_asset(str(SITE)), environment=names,
                           port_mappings=[ecs.PortMapping(container_port=PORT)],
                           logging=ecs.LogDrivers.aws_logs(stream_prefix="site", log_group=logs.LogGroup(
                               self, "SiteLogs", retention=retention, removal_policy=removal)))
        self._read_only(task.task_role, config, prefixes, buckets)
        accept(task.node.default_child, "container-environment",
               "The variables name the buckets, the model package group and the alarms' prefix the site reads: "
               "no secrets.")
        for group in (flow_logs, self.node.find_child("SiteLogs")):
            accept(group.node.default_child, "logs-kms", LOGS_KMS_REASON)

        balancer_group = ec2.SecurityGroup(self, "BalancerGroup", vpc=vpc, allow_all_outbound=False,
                                           description="Results site load balancer: HTTPS and HTTP from anywhere")
        balancer_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: the sign-in, then the site")
        balancer_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP: redirected to HTTPS")
        task_group = ec2.SecurityGroup(self, "TaskGroup", vpc=vpc, allow_all_outbound=True,
                                       description="Results site task: reachable from its load balancer only")
        task_group.add_ingress_rule(balancer_group, ec2.Port.tcp(PORT), "the load balancer's forwarded requests")
        balancer_group.add_egress_rule(task_group, ec2.Port.tcp(PORT), "to the site's task")

        cluster = ecs.Cluster(self, "Cluster", vpc=vpc)
        accept(cluster.node.default_child, "container-insights",
               "One small task: the load balancer's and the service's standard metrics show its health; Container "
               "Insights would add custom-metric charges for no decision anyone takes on them.")
        service = ecs.FargateService(self, "Service", cluster=cluster, task_definition=task, desired_count=1,
                                     assign_public_ip=True, security_groups=[task_group],
                                     vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
                                     circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True))

        users = cognito.UserPool(
            self, "Users", user_pool_name=f"{self.prefix}-users", self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True), mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(min_length=12, require_digits=True, require_lowercase=True,
                                                   require_uppercase=True, require_symbols=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY, removal_policy=removal)
        accept(users.node.default_child, "cognito-threat-protection",
               "Threat protection needs the Plus feature plan, billed per monthly active user; the pool has no self "
               "sign-up, requires MFA and a 12-character password, and administrators create every user.")
        domain = users.add_domain("SignIn", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=f"{self.prefix}-{self.account}"))
        client = users.add_client("Site", generate_secret=True, supported_identity_providers=[
            cognito.UserPoolClientIdentityProvider.COGNITO], o_auth=cognito.OAuthSettings(
            flows=cognito.OAuthFlows(authorization_code_grant=True),
            scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
            callback_urls=[f"https://{config.results_site_domain}/oauth2/idpresponse"]))

        logs_bucket = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
                                removal_policy=removal, auto_delete_objects=config.destroy_data_on_delete,
                                lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(
                                    config.access_log_expiration_days))])
        balancer = elbv2.ApplicationLoadBalancer(self, "Balancer", vpc=vpc, internet_facing=True,
                                                 security_group=balancer_group, drop_invalid_header_fields=True)
        balancer.log_access_logs(logs_bucket)
        accept_each(logs_bucket.node.default_child, {
            "s3-server-access-logs": "This bucket holds the load balancer's access logs; logging access to the "
                                     "logs would need a bucket of its own for each, without end.",
            "s3-kms": "Load balancer access logs can be written only to a bucket encrypted with S3-managed keys "
                      "(SSE-S3).",
            "s3-replication": "Access logs of one site; they expire after access_log_expiration_days."})
        accept(balancer.node.default_child, "alb-waf",
               "Every request signs in with Cognito before it reaches the site; a WAF web ACL (a monthly charge "
               "per ACL and rule) can be associated by teams that need rate limits.")
        accept(balancer.node.default_child, "alb-deletion-protection",
               "The load balancer holds no data; cdk destroy removes it with the stack.")
        accept(balancer_group.node.default_child, "open-to-internet",
               "The site is for people without AWS access, wherever they are: HTTPS, behind Cognito sign-in, and "
               "HTTP only to be redirected to HTTPS.")
        target = elbv2.ApplicationTargetGroup(self, "Target", vpc=vpc, port=PORT,
                                              protocol=elbv2.ApplicationProtocol.HTTP, targets=[service],
                                              health_check=elbv2.HealthCheck(path=HEALTH))
        # The only way in: the sign-in, then the site. No listener rule reaches the target without it.
        balancer.add_listener(
            "Https", port=443, open=False, ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            certificates=[elbv2.ListenerCertificate.from_arn(config.results_site_certificate_arn)],
            default_action=elb_actions.AuthenticateCognitoAction(
                user_pool=users, user_pool_client=client, user_pool_domain=domain,
                session_timeout=Duration.hours(SESSION_HOURS),
                next=elbv2.ListenerAction.forward([target])))
        http = balancer.add_listener("Http", port=80, open=False, default_action=elbv2.ListenerAction.redirect(
            protocol="HTTPS", port="443", permanent=True))
        accept(http.node.default_child, "http-listener",
               "This listener only redirects to the HTTPS listener; it forwards nothing.")
        for role in (task.task_role, task.execution_role, flow.node.find_child("IAMRole")):
            accept(default_policy(role), "inline-policy", INLINE_POLICY_REASON)
        acknowledge_generated_policies(task.execution_role, [(
            r"Resource::\*", "CDK's grant to pull the site's image: ecr:GetAuthorizationToken has no resource-level "
                             "permissions.")])
        CfnOutput(self, "SiteUrl", value=f"https://{config.results_site_domain}",
                  description="The site, once the domain names the load balancer (LoadBalancerDnsName)")
        CfnOutput(self, "LoadBalancerDnsName", value=balancer.load_balancer_dns_name,
                  description="Point the site's domain here (an alias or CNAME record)")
        CfnOutput(self, "UserPoolId", value=users.user_pool_id,
                  description="Create the site's users here (aws cognito-idp admin-create-user)")

    def _read_only(self, role: iam.IRole, config: KitConfig, prefixes: dict, buckets: dict) -> None:
        """What results_site/results.py reads, and nothing else."""
        build_bucket, deploy_bucket, monitor_bucket = (
            s3.Bucket.from_bucket_name(self, f"{cls.__name__.removesuffix('Stack')}Bucket", buckets[cls])
            for cls in (BuildAndRegisterStack, DeployApprovedStack, MonitorEndpointStack))
        allow(role, ["s3:GetObject"], [objects_arn(build_bucket, glob(EVALUATION)),
                                       objects_arn(deploy_bucket, glob(DEPLOYMENT)),
                                       objects_arn(monitor_bucket, f"{RESULTS}*")],
              wildcard_reason="The site reads each run's evaluation (BuildAndRegister), each deployment's record "
                              "(DeployApproved) and the monitor's results table, by run and window.")
        allow(role, ["s3:ListBucket"], [bucket_arn(deploy_bucket)], conditions={"StringLike": {"s3:prefix": [RUNS]}})
        allow(role, ["s3:ListBucket"], [bucket_arn(monitor_bucket)],
              conditions={"StringLike": {"s3:prefix": [RESULTS]}})
        allow(role, ["sagemaker:ListModelPackages"], ["*"],
              wildcard_reason="ListModelPackages has no resource-level permissions; the site lists one group.")
        allow(role, ["sagemaker:DescribeModelPackage"], [model_package_versions(self, prefixes[BuildAndRegisterStack])],
              wildcard_reason="SageMaker numbers the versions of BuildAndRegister's group; the site describes those.")
        allow(role, ["cloudwatch:DescribeAlarms"], [format_arn(
            self, service="cloudwatch", resource="alarm", resource_name=f"{prefixes[MonitorEndpointStack]}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)], wildcard_reason="The site shows the monitor's alarms, named by its prefix.")
        if config.encryption == "kms":
            keys = [read_shared(self, prefix, "key-arn") for prefix in prefixes.values()]
            allow(role, ["kms:Decrypt"], keys,
                  conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})
