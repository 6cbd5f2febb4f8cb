"""Lambda entry point of $connect: the authorizer has admitted the connection; this only
answers the handshake (nothing can be posted to a connection before $connect returns)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from collab.auth.handshake import connect_response

logger = Logger(service="collab-connect")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return connect_response(event)
