"""Lambda entry point of $connect: the authorizer has admitted the connection; this records
it (collab.admission) and answers the handshake. Nothing can be posted to a connection
before $connect returns."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from collab import aws_clients, management_client, settings
from collab.access import SceneAccess
from collab.admission import admit, refused
from collab.auth.handshake import connect_response
from collab.caller import Caller
from collab.rooms import Rooms
from collab.settings import MissingSetting, Settings
from entry.ahead_of_traffic import initialised_ahead_of_traffic

logger = Logger(service="collab-connect")


@cache
def _dependencies() -> tuple[Rooms, SceneAccess]:
    # This function runs outside the VPC and gets only its two tables (infra/needs.py).
    table = os.environ.get(settings.CONNECTIONS_TABLE, "")
    if not table:
        raise MissingSetting(settings.CONNECTIONS_TABLE)
    ttl = int(os.environ.get(settings.CONNECTION_TTL_SECONDS) or Settings.connection_ttl_seconds)
    dynamodb = aws_clients.json_client("dynamodb")
    return Rooms(dynamodb, table, ttl), SceneAccess.from_env(dynamodb=dynamodb)


if initialised_ahead_of_traffic():
    _dependencies()
    management_client.load_awscrt()  # what the first call to DynamoDB would load


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    caller = Caller.from_event(event)
    rooms, access = _dependencies()
    if not admit(rooms, access, caller):
        logger.info("connection refused: the role changed since the authorizer read it")
        return refused()
    return connect_response(event)
