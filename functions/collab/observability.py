"""Powertools Logger, Metrics (EMF) and Tracer shared by the core and the entry points.

Logs carry connection, scene and request ids as correlation keys; never tokens and never
document contents. The metrics namespace is fixed: the CDK dashboard reads it."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = "Collab"

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)
tracer = Tracer()

# A ping or a refused message publishes no metric; that is normal, not worth a warning line
# per invocation in the logs.
warnings.filterwarnings("ignore", message="No application metrics to publish")
