"""Alarms on the failures the handlers survive and only log (infra/monitoring.py LOG_SIGNALS):
an `internal` answer, a failing cache, a scene Yjs cannot read.

The template tests check the filters, where they listen and what pages. The last test
provokes each failure for real, in a process with the messages function's Powertools
environment from the template (moto with a table missing, a Redis port nobody listens on,
a stored update Yjs cannot read), and checks that each filter matches a line the code
actually wrote: renaming a log message, or a logger that stops writing JSON, fails here
rather than silently blinding an alarm in production."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from infratest import Synthesized, refs

from infra.monitoring import LOG_SIGNALS, LogSignal, log_metrics_namespace, log_signals
from infra.specs import load_routes

ROOT = Path(__file__).resolve().parents[2]
ROUTES = load_routes()
USES_CACHE = {name for name, spec in ROUTES.functions.items() if spec.needs_cache}
# One struct under type ref 9, which yrs reads and Yjs does not (review F1; the same bytes
# as tests/core/test_yjs_format.py's F1_UPDATE): what a scene stored before validation holds.
UNREADABLE = bytes([0x01, 0x01, 0x2A, 0x00, 0x07, 0x01, 0x05]) + b"scene" + bytes([0x09, 0x00])


def log_group_of(synthesized: Synthesized, function: str) -> str:
    properties = synthesized.resources[synthesized.function_id(function)]["Properties"]
    (group,) = refs(properties["LoggingConfig"])
    return group


def filters_of(synthesized: Synthesized, signal: LogSignal) -> list[dict[str, Any]]:
    return [
        f["Properties"]
        for f in synthesized.of_type("AWS::Logs::MetricFilter").values()
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == signal.metric
    ]


def test_each_handled_failure_is_counted_in_the_log_groups_that_carry_it(synthesized: Synthesized) -> None:
    namespace = log_metrics_namespace(synthesized.config)
    for signal in LOG_SIGNALS:
        # A stage without a cache has no cache failures to count.
        uses_cache = USES_CACHE if synthesized.config.has_cache else set()
        expected = set(signal.functions or uses_cache)
        filters = filters_of(synthesized, signal)
        assert {refs(f["LogGroupName"]).pop() for f in filters} == {
            log_group_of(synthesized, name) for name in expected
        }, signal.metric
        for f in filters:
            assert f["FilterPattern"] == signal.pattern().log_pattern_string
            (transformation,) = f["MetricTransformations"]
            assert transformation["MetricNamespace"] == namespace
            assert transformation["MetricValue"] == "1"
            assert "DefaultValue" not in transformation  # nothing published while all is well


def test_the_log_metrics_of_two_stages_never_mix(dev: Synthesized, variant: Synthesized) -> None:
    assert dev.config.stage != variant.config.stage
    assert log_metrics_namespace(dev.config) != log_metrics_namespace(variant.config)
    for synthesized in (dev, variant):
        assert synthesized.config.stage in log_metrics_namespace(synthesized.config)


def test_each_handled_failure_has_an_alarm(synthesized: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }
    signals = log_signals(synthesized.config)
    assert ("CacheUnavailable" in {s.metric for s in signals}) is synthesized.config.has_cache
    for signal in LOG_SIGNALS:
        name = f"{synthesized.config.prefix}-{signal.metric}"
        if signal not in signals:
            assert name not in alarms
            continue
        alarm = alarms[name]
        assert alarm["Namespace"] == log_metrics_namespace(synthesized.config)
        assert alarm["MetricName"] == signal.metric and alarm["Statistic"] == "Sum"
        assert "Dimensions" not in alarm
        assert alarm["Period"] == 300
        assert alarm["Threshold"] == signal.threshold
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == signal.periods
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert bool(alarm.get("AlarmActions")) is bool(synthesized.config.alarmEmail)


def test_the_dashboard_shows_the_handled_failures(synthesized: Synthesized) -> None:
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for signal in log_signals(synthesized.config):
        assert signal.metric in body


def matches(signal: LogSignal, event: dict[str, Any]) -> bool:
    """What CloudWatch does with signal.pattern(): every field equal, `x*` a prefix."""
    for key, wanted in signal.fields.items():
        value = event.get(key)
        if not isinstance(value, str):
            return False
        if wanted.endswith("*") and not value.startswith(wanted[:-1]):
            return False
        if not wanted.endswith("*") and value != wanted:
            return False
    return True


PROVOKE = textwrap.dedent(
    """
    import json, sys

    import boto3

    from collab import compaction, protocol, runtime, session
    from collab.blobs import BlobStore
    from collab.caller import Caller
    from collab.durable_log import DurableLog
    from collab.settings import Settings

    settings = Settings.from_env()
    rt = runtime.build(settings)
    scene = "alarm-scene"
    # A scene stored before validation kept such updates out: write past the handlers.
    log = DurableLog(
        boto3.client("dynamodb"), settings.documents_table,
        BlobStore(boto3.client("s3"), settings.snapshot_bucket),
    )
    log.append(scene, bytes.fromhex(sys.argv[1]))
    # The cache is unreachable (its breaker opens) and the state is unreadable.
    compaction.compact(rt, scene, log=True)
    # The connections table is missing: the sync's member read fails, not a protocol error.
    caller = Caller("conn-1", scene, "ada", "Ada", "editor", 2**31, sys.argv[2])
    sync = protocol.sync_step1(b"\\x00")
    session.handle_message(rt, caller, json.dumps({"action": "sync", "data": protocol.encode_base64(sync)}))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_filters_match_what_the_handlers_log(dev: Synthesized, aws_tables: dict[str, str]) -> None:
    """`aws_tables` (tests/conftest.py) starts moto and points this process's boto3 at it."""
    variables = dev.resources[dev.function_id("messages")]["Properties"]["Environment"]["Variables"]
    powertools = {k: v for k, v in variables.items() if k.startswith("POWERTOOLS_") and isinstance(v, str)}
    assert powertools["POWERTOOLS_SERVICE_NAME"] == dev.config.service_name
    nobody = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        **aws_tables,
        **powertools,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "CONNECTIONS_TABLE": "collab-alarm-test-missing",
        "REDIS_URL": f"redis://{nobody}/0",
        "REDIS_CLUSTER": "false",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROVOKE, UNREADABLE.hex(), f"http://{nobody}/local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = []
    for line in done.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    for signal in LOG_SIGNALS:
        matched = [e for e in events if matches(signal, e)]
        assert len(matched) == 1, (signal.metric, done.stdout[-4000:])
    # And nothing routine (the INFO lines of the same failures) is counted.
    counted = [e for e in events if any(matches(s, e) for s in LOG_SIGNALS)]
    assert len(counted) == len(LOG_SIGNALS)
