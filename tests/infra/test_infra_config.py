"""Stage configuration from CDK context: cdk.json blocks, -c overrides as strings, and
errors that name the setting."""

from __future__ import annotations

from typing import Any

import pytest

from infra.app import project_context
from infra.config import ConfigError, StageConfig, from_context


def config(**context: Any) -> StageConfig:
    merged = project_context(context)
    return from_context(merged.get)


def test_cdk_json_stages_synthesize_with_no_extra_settings() -> None:
    dev, prod = config(), config(stage="prod")
    assert (dev.stage, dev.removalPolicy, prod.removalPolicy) == ("dev", "destroy", "retain")
    assert prod.natGateways >= 2


def test_a_developers_stage_pays_for_no_dashboard_or_alarms_and_prod_has_both() -> None:
    """cdk.json's dev stage is a developer's: no dashboard ($3 a month) and no alarms (their
    metrics, $0.10 each; nobody is paged for dev), so at rest a stage without a cache costs
    only its secret (docs/cost.md). One flag each brings them back."""
    dev, prod = config(), config(stage="prod")
    assert (dev.dashboard, dev.alarms) == (False, False)
    assert (prod.dashboard, prod.alarms) == (True, True)
    shared = config(dashboard="true", alarms="true")
    assert (shared.dashboard, shared.alarms) == (True, True)


def test_command_line_strings_take_the_fields_types() -> None:
    parsed = config(natGateways="2", tracing="false", functions='{"messages": {"memoryMb": "2048"}}')
    assert parsed.natGateways == 2
    assert parsed.tracing is False
    assert parsed.function_options("messages").memoryMb == 2048


def test_cors_origins_come_as_a_list_or_a_comma_separated_string() -> None:
    assert config().httpCorsOrigins == ()
    expected = ("https://app.example", "http://localhost:5173")
    assert config(httpCorsOrigins="https://app.example, http://localhost:5173").httpCorsOrigins == expected
    assert (
        config(httpCorsOrigins='["https://app.example", "http://localhost:5173"]').httpCorsOrigins == expected
    )
    assert config(httpCorsOrigins=list(expected)).httpCorsOrigins == expected
    assert config(httpCorsOrigins="*").httpCorsOrigins == ("*",)
    # SSM is fine where NAT (or no VPC) carries the http function's call.
    assert config(jwtSecretParameter="/collab/jwt").jwtSecretParameter == "/collab/jwt"


def test_names_derive_from_the_stage() -> None:
    parsed = config(stage="qa")
    assert parsed.stack_name == "Collab-qa"
    assert parsed.table_name("connections") == "collab-qa-connections"
    assert parsed.function_name("messages") == "collab-qa-messages"
    assert (parsed.http_api_name, parsed.event_bus_name) == ("collab-qa-http", "collab-qa-events")


@pytest.mark.parametrize(
    ("context", "setting"),
    [
        ({"natGateways": 0}, "natGateways"),
        ({"cacheKind": "memcached"}, "cacheKind"),
        ({"authMode": "jwks"}, "jwksUrl"),
        ({"authMode": "jwks", "jwksUrl": "https://idp/jwks"}, "jwtIssuer"),
        ({"memoryMb": "lots"}, "memoryMb"),
        ({"settings": {"NOT_A_SETTING": "1"}}, "settings"),
        ({"functions": {"messages": {"memory": 1}}}, "functions.messages"),
        ({"stage": "Prod!"}, "stage"),
        ({"httpCorsOrigins": "https://app.example/"}, "httpCorsOrigins"),
        ({"httpCorsOrigins": "app.example"}, "httpCorsOrigins"),
        ({"httpCorsOrigins": '{"origin": "https://app.example"}'}, "httpCorsOrigins"),
        ({"versionRetentionDays": "-1"}, "versionRetentionDays"),
        # The http function verifies tokens in the VPC: no way to SSM without NAT.
        ({"egress": "ipv6", "jwtSecretParameter": "/collab/jwt"}, "jwtSecretParameter"),
    ],
)
def test_a_bad_setting_fails_with_its_name(context: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(**context)
    assert error.value.name == setting


def test_an_unknown_key_in_a_stage_block_fails() -> None:
    context = project_context({"collab:stages": {"dev": {"natGateway": 1}}})
    with pytest.raises(ConfigError, match="natGateway"):
        from_context(context.get)


def test_firebase_alone_configures_jwks() -> None:
    parsed = config(authMode="jwks", firebaseProjectId="demo")
    assert parsed.authMode == "jwks"
