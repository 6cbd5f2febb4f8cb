"""Powertools Logger, Metrics (EMF) and Tracer shared by the core and the entry points.

Logs carry connection, scene and request ids as correlation keys; never tokens and never
document contents. The metrics namespace is fixed: the CDK dashboard reads it. The Tracer
sends its subsegments through collab.tracing, not the X-Ray SDK, whose import alone would
cost a cold environment about 330 ms."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

from collab.tracing import XRayProvider

METRICS_NAMESPACE = "Collab"

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)
tracer = Tracer(provider=XRayProvider())

# A ping or a refused message publishes no metric; that is normal, not worth a warning line
# per invocation in the logs.
warnings.filterwarnings("ignore", message="No application metrics to publish")
