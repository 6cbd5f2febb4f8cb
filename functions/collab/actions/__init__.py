"""What happens for each client action, one module per action. Each handler gets the
environment's Runtime, the verified Caller and the parsed frame; replies and broadcasts go
out through the Management API outbox (collab.membership)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collab.actions import awareness, ping, sync, update
from collab.caller import Caller
from collab.runtime import Runtime

Handler = Callable[[Runtime, Caller, dict[str, Any]], None]

HANDLERS: dict[str, Handler] = {
    "sync": sync.on_sync,
    "update": update.on_update,
    "awareness": awareness.on_awareness,
    "ping": ping.on_ping,
}
