"""Synthesize the CDK app once per test session per configuration (synth takes seconds):
`dev` is cdk.json's default stage (with the dashboard and alarms it leaves out, so that
every shape's monitoring is tested; test_infra_config checks the stage as cdk.json has it), `variant` the options dev does not use (node-based
cache, JWKS auth, provisioned concurrency, alarm e-mail, retained data), `ipv6` dev with
`egress: ipv6` and `nocache` dev with `cacheKind: none` (the stage shapes of
docs/deploy.md).

Each synthesis runs cdk-nag as the app does; a failed validation is recorded, not raised,
so the template tests still run and the compliance test reports the findings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before jsii starts: the CI's Node 20 is past its end of life for jsii, which says so loudly.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from infratest import IPV6, NO_CACHE, OBSERVED, VARIANT, VARIANT_ENV, Synthesized, synthesize

from layers import build as layer_build


@pytest.fixture(scope="session")
def layer() -> layer_build.Layer:
    """The dependency layer, built once (and cached in layers/build/ across sessions)."""
    return layer_build.build()


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory, layer: layer_build.Layer) -> Iterator[Synthesized]:
    yield synthesize(OBSERVED, tmp_path_factory.mktemp("cdk-dev"), layer)


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory, layer: layer_build.Layer) -> Iterator[Synthesized]:
    yield synthesize(VARIANT, tmp_path_factory.mktemp("cdk-variant"), layer, VARIANT_ENV)


@pytest.fixture(scope="session")
def ipv6(tmp_path_factory: pytest.TempPathFactory, layer: layer_build.Layer) -> Iterator[Synthesized]:
    yield synthesize(IPV6, tmp_path_factory.mktemp("cdk-ipv6"), layer)


@pytest.fixture(scope="session")
def nocache(tmp_path_factory: pytest.TempPathFactory, layer: layer_build.Layer) -> Iterator[Synthesized]:
    yield synthesize(NO_CACHE, tmp_path_factory.mktemp("cdk-nocache"), layer)


@pytest.fixture(params=["dev", "variant", "ipv6", "nocache"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    """Each synthesized configuration in turn."""
    return request.getfixturevalue(request.param)
