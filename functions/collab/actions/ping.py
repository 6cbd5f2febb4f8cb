"""`ping`: the server answers `pong` (a client's keep-alive and liveness check)."""

from __future__ import annotations

from typing import Any

from collab import protocol
from collab.caller import Caller
from collab.runtime import Runtime


def on_ping(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    rt.outbox(caller.endpoint).send(caller.connection_id, protocol.server_message("pong"))
