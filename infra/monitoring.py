"""A CloudWatch dashboard (connections, messages, errors, fan-out latency, Lambda duration
and throttles) and alarms on errors and throttles, optionally e-mailed."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.api import WebSocket
from infra.config import StageConfig
from infra.functions import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
# Metrics collab/session.py emits (Powertools EMF, dimension `service`).
FANOUT_DURATION = "FanoutDuration"
FANOUT_RECIPIENTS = "FanoutRecipients"
HANDLED_ERRORS = "Errors"
UPDATES = "UpdatesApplied"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        websocket: WebSocket,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        dimensions = {"ApiId": websocket.api.api_id, "Stage": websocket.stage.stage_name}

        def api_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=PERIOD,
            )

        def collab_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": config.service_name},
                statistic=statistic,
                period=PERIOD,
                label=f"{name} {statistic}",
            )

        self.topic: sns.Topic | None = None
        if config.alarmEmail:
            self.topic = sns.Topic(self, "Alarms", display_name=f"{config.prefix} alarms", enforce_ssl=True)
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarmEmail))

        self.alarms: list[cloudwatch.Alarm] = []
        api_errors = cloudwatch.MathExpression(
            expression="integration + execution",
            using_metrics={
                "integration": api_metric("IntegrationError"),
                "execution": api_metric("ExecutionError"),
            },
            label="API integration + execution errors",
            period=PERIOD,
        )
        self._alarm("ApiErrors", api_errors, threshold=10, what="API Gateway integration/execution errors")
        for name, function in functions.items():
            self._alarm(
                f"{name.capitalize()}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=5,
                what=f"{name} function errors (uncaught exceptions, timeouts)",
            )
            self._alarm(
                f"{name.capitalize()}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                what=f"{name} function throttles",
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=config.dashboard_name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Connections and messages",
                left=[api_metric("ConnectCount"), api_metric("MessageCount")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    api_metric("ClientError"),
                    api_metric("IntegrationError"),
                    api_metric("ExecutionError"),
                    collab_metric(HANDLED_ERRORS, "Sum"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Fan-out latency (ms) and recipients",
                left=[collab_metric(FANOUT_DURATION, stat) for stat in ("p50", "p99", "Maximum")],
                right=[collab_metric(FANOUT_RECIPIENTS, "Average"), collab_metric(UPDATES, "Sum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API integration latency (ms)",
                left=[api_metric("IntegrationLatency", stat) for stat in ("p50", "p99")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                left=[
                    f.metric_duration(period=PERIOD, statistic="p99", label=n) for n, f in functions.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles",
                left=[f.metric_errors(period=PERIOD, label=f"{n} errors") for n, f in functions.items()],
                right=[
                    f.metric_throttles(period=PERIOD, label=f"{n} throttles") for n, f in functions.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda concurrency",
                left=[
                    f.metric("ConcurrentExecutions", period=PERIOD, statistic="Maximum", label=n)
                    for n, f in functions.items()
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24),
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, *, threshold: float, what: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.config.prefix}-{construct_id}",
            alarm_description=f"{self.config.prefix}: {what} >= {threshold:g} in 5 minutes",
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
