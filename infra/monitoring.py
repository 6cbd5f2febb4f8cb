"""A CloudWatch dashboard (connections, messages, errors, fan-out latency, HTTP API
requests, Lambda duration and throttles) and alarms, optionally e-mailed: on API, function
and throttle errors, and on the failures the handlers survive and only log (an `internal`
error, a cache that fails, a scene Yjs cannot read).

The handled failures are counted from each stage's own log groups by metric filters, not
from the EMF metrics: those carry one dimension, `service`, which is the same for every
stage (config.service_name), so an alarm on them would page prod for a dev stage's errors
in the same account and region. The filters match the JSON lines Powertools writes (the
`collab.*` standard-library loggers are children of the Powertools `collab` logger, so
collab.cache's warning is JSON too); tests/infra/test_infra_alarms.py provokes each failure
for real and checks that the filter matches what the code logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.api import WebSocket
from infra.config import StageConfig
from infra.functions import METRICS_NAMESPACE
from infra.http_api import HttpApi
from infra.specs import load_routes

PERIOD = Duration.minutes(5)
# Metrics collab/session.py emits (Powertools EMF, dimension `service`).
FANOUT_DURATION = "FanoutDuration"
FANOUT_RECIPIENTS = "FanoutRecipients"
HANDLED_ERRORS = "Errors"
UPDATES = "UpdatesApplied"


@dataclass(frozen=True)
class LogSignal:
    """A failure a handler survives and logs, counted per stage by a metric filter."""

    metric: str
    # Top-level fields of the JSON log line, all required; a value ending in `*` matches
    # any string starting with the rest (CloudWatch's JSON filter pattern semantics).
    fields: Mapping[str, str]
    # The routes.json functions whose log groups carry it (None: those that use the cache).
    functions: tuple[str, ...] | None
    threshold: int
    # Consecutive 5-minute periods at or over the threshold before the alarm fires.
    periods: int
    what: str

    def pattern(self) -> logs.IFilterPattern:
        return logs.FilterPattern.all(
            *(logs.FilterPattern.string_value(f"$.{key}", "=", value) for key, value in self.fields.items())
        )


LOG_SIGNALS = (
    # collab.session: any exception that is not a protocol error becomes `internal` for the
    # client and a 200 for Lambda, so the function's Errors metric never sees it. A bug, or
    # DynamoDB failing after botocore's retries.
    LogSignal(
        metric="InternalErrors",
        fields={"level": "ERROR", "message": "handler failed"},
        functions=("messages",),
        threshold=5,
        periods=1,
        what="messages answered `internal` (handled exceptions)",
    ),
    # collab.cache: the breaker opens, once per environment per 5 s cooldown while the
    # cache fails. Editing goes on from DynamoDB (invariant 7), so one blip (a failover)
    # is not worth a page: two periods in a row are.
    LogSignal(
        metric="CacheUnavailable",
        fields={"level": "WARNING", "message": "cache unavailable*"},
        functions=None,
        threshold=1,
        periods=2,
        what="cache failures (the breaker opened)",
    ),
    # collab.compaction: a stored state Yjs cannot read is never compacted; an operator runs
    # `collabctl scene check` (docs/storage.md). Every one needs a person.
    LogSignal(
        metric="UnreadableScenes",
        fields={"level": "ERROR", "message": "the scene's stored state is unreadable by Yjs*"},
        functions=("messages",),
        threshold=1,
        periods=1,
        what="scenes whose stored state Yjs cannot read (compaction refused)",
    ),
)


def log_signals(config: StageConfig) -> tuple[LogSignal, ...]:
    """The signals of this stage: a stage without a cache has no cache to fail."""
    return tuple(signal for signal in LOG_SIGNALS if signal.functions is not None or config.has_cache)


def log_metrics_namespace(config: StageConfig) -> str:
    """Where the metric filters publish: one namespace per stage, so stages never mix."""
    return f"{METRICS_NAMESPACE}/{config.stage}"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        websocket: WebSocket,
        http_api: HttpApi,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.http_api = http_api
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
        # Every 5xx of the HTTP API: the function answers its own failures with a 500
        # (collab/http_routes.py), which Lambda counts as a success, and API Gateway turns
        # the function's errors, throttles and timeouts into 502, 503 and 504.
        self._alarm(
            "HttpApiErrors",
            http_api.api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=5,
            what="HTTP API 5xx answers",
        )
        handled = self._log_signals(functions)
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

        self.dashboard: cloudwatch.Dashboard | None = None
        if config.dashboard:
            self.dashboard = self._dashboard(functions, api_metric, collab_metric, handled)

    def _dashboard(
        self,
        functions: dict[str, lambda_.Function],
        api_metric: Callable[..., cloudwatch.Metric],
        collab_metric: Callable[[str, str], cloudwatch.Metric],
        handled: dict[str, cloudwatch.Metric],
    ) -> cloudwatch.Dashboard:
        config = self.config
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=config.dashboard_name)
        dashboard.add_widgets(
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
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"Handled failures ({config.stage}, from the logs)",
                left=list(handled.values()),
                width=24,
            ),
        )
        dashboard.add_widgets(
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
        http = self.http_api.api
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="HTTP API requests and errors",
                left=[http.metric_count(period=PERIOD, label="requests")],
                right=[
                    http.metric_client_error(period=PERIOD, label="4xx"),
                    http.metric_server_error(period=PERIOD, label="5xx"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="HTTP API latency (ms)",
                left=[
                    http.metric_latency(period=PERIOD, statistic=stat, label=stat) for stat in ("p50", "p99")
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
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
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24),
        )
        return dashboard

    def _log_signals(self, functions: dict[str, lambda_.Function]) -> dict[str, cloudwatch.Metric]:
        """A metric filter per signal and log group, and an alarm per signal."""
        namespace = log_metrics_namespace(self.config)
        uses_cache = tuple(name for name, spec in load_routes().functions.items() if spec.needs_cache)
        metrics: dict[str, cloudwatch.Metric] = {}
        for signal in log_signals(self.config):
            for name in signal.functions or uses_cache:
                logs.MetricFilter(
                    self,
                    f"{signal.metric}In{name.capitalize()}",
                    log_group=functions[name].log_group,
                    filter_pattern=signal.pattern(),
                    metric_namespace=namespace,
                    metric_name=signal.metric,
                    # No default value: nothing is published (or billed) while all is well.
                    metric_value="1",
                )
            metric = cloudwatch.Metric(
                namespace=namespace,
                metric_name=signal.metric,
                statistic="Sum",
                period=PERIOD,
            )
            metrics[signal.metric] = metric
            self._alarm(
                signal.metric, metric, threshold=signal.threshold, what=signal.what, periods=signal.periods
            )
        return metrics

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, *, threshold: float, what: str, periods: int = 1
    ) -> None:
        if not self.config.alarms:
            return  # the metric filters stay: they cost nothing, and the logs keep the signal
        window = "5 minutes" if periods == 1 else f"each of {periods} consecutive 5-minute periods"
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.config.prefix}-{construct_id}",
            alarm_description=f"{self.config.prefix}: {what} >= {threshold:g} in {window}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
