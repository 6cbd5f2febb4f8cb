"""The HTTP API's routes (routes.json, httpRoutes) on Powertools' HTTP resolver."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

app = APIGatewayHttpResolver()


@app.not_found
def _not_found(_: Exception) -> Response[str]:
    return Response(404, "application/json", '{"code": "not_found", "message": "no such route"}')


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
