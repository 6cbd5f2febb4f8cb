"""Posting to connections through the API Gateway Management API.

Fan-out is where a handler's CPU, latency and bill go (DESIGN §3), so: one boto3 client
per endpoint for the life of the execution environment, a bounded thread pool shared by
all invocations, short timeouts so one slow or dead peer never holds up the others, 410
(gone) and 403 (an unknown id) reported to the caller for eviction, LimitExceeded retried with jittered backoff.
Messages over the frame limit go out as `chunk` frames, in order, to each recipient.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from collab.chunks import split_message
from collab.protocol import SERVER_FRAME_LIMIT

logger = logging.getLogger(__name__)

_RETRIES = 4


class Outbox:
    def __init__(self, endpoint: str, workers: int = 16, client: Any = None) -> None:
        self.endpoint = endpoint
        self._client = client or boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            config=Config(
                connect_timeout=1,
                read_timeout=3,
                retries={"max_attempts": 1, "mode": "standard"},
                max_pool_connections=workers,
                tcp_keepalive=True,
            ),
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout")

    def send(self, connection_id: str, text: str) -> bool:
        """Deliver one message (chunked if needed); False when the connection is gone."""
        for frame in split_message(text, SERVER_FRAME_LIMIT):
            if not self._post(connection_id, frame.encode("ascii")):
                return False
        return True

    def send_all(self, connection_ids: Iterable[str], text: str) -> list[str]:
        """Deliver to every connection in parallel; returns the ones that are gone."""
        targets = list(connection_ids)
        if not targets:
            return []
        frames = [f.encode("ascii") for f in split_message(text, SERVER_FRAME_LIMIT)]
        results = self._pool.map(lambda cid: self._post_frames(cid, frames), targets)
        return [cid for cid, delivered in zip(targets, results, strict=True) if not delivered]

    def close(self, connection_id: str) -> None:
        """Best effort: a refusal's reply must not crash on a transport error."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if _code(error) != "GoneException":
                logger.warning("closing %s failed: %s", connection_id, _code(error))
        except BotoCoreError as error:
            logger.warning("closing %s failed: %s", connection_id, error)

    def _post_frames(self, connection_id: str, frames: list[bytes]) -> bool:
        return all(self._post(connection_id, frame) for frame in frames)

    def _post(self, connection_id: str, data: bytes) -> bool:
        for attempt in range(_RETRIES):
            try:
                self._client.post_to_connection(ConnectionId=connection_id, Data=data)
                return True
            except ClientError as error:
                code = _code(error)
                if code == "GoneException" or _unknown_connection(error):
                    return False
                if code not in ("LimitExceededException", "ThrottlingException") or attempt == _RETRIES - 1:
                    # A failure other than gone is logged, not fatal: the periodic resync
                    # repairs a lost broadcast, and the other peers must still be served.
                    logger.warning("post to %s failed: %s", connection_id, code)
                    return True
            except BotoCoreError as error:
                logger.warning("post to %s failed: %s", connection_id, error)
                return True
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # full jitter
        return True


def _unknown_connection(error: ClientError) -> bool:
    """API Gateway answers 403 Forbidden for a connection id it does not know (one that
    ended long ago): gone. A 403 that says the caller lacks permission is a deployment
    problem, not a departure, and must not evict every member."""
    if _code(error) not in ("ForbiddenException", "Forbidden", "403"):
        return False
    message = str(error.response.get("Error", {}).get("Message", ""))
    return "not authorized" not in message.lower()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
