"""Each Yjs client id of a scene belongs to the user who first wrote with it (review M8).

Yjs identifies every struct by (client id, clock), and replicas trust that one id has one
history. An editor who sends structs under another client's id and clocks with different
content makes the server's merges depend on their order, so syncs serve different content
and replicas diverge for good. So the first update a client id appears in binds it to the
sender, and later client groups of that id from anyone else are dropped.

Dropping is lossless for honest clients: structs of another user's client id reach a
client only through the server, after they were stored, so the server has them already
(a reconnecting client's SyncStep2 may carry them again). A client id is bound to a user,
not to a connection, because a reconnecting or offline client keeps its id and may send
its offline edits on a new connection.

Bindings are items of the documents table, `sk = "client#<id>"` in the scene's partition
(durable_log.py's prefixes never match it), written with a conditional put that only
succeeds for the first writer. They never change once written, so this process caches
them; a warm environment pays nothing for a client it has seen. They are kept forever: an
expired binding would let its id be forged again while its structs are still stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from collab.errors import TooLarge
from collab.yjs_format import drop_groups, read_update

logger = logging.getLogger(__name__)

CLIENT_PREFIX = "client#"

# Bindings remembered per execution environment (an entry is ~200 bytes).
CACHE_LIMIT = 100_000

_BATCH_GET_LIMIT = 100

MAX_NEW_IDS = 64
# Distinct client ids one update may name (invariant 9: reading their bindings costs a
# BatchGetItem per 100, before anything else). A scene edited over a thousand page loads,
# imported whole, still fits; 11 bytes a group would otherwise let 4 MB name 400,000.
MAX_IDS_PER_UPDATE = 1_000
# Bindings written at once when an update brings many (an import over the HTTP API).
_BIND_THREADS = 16


def _no_pause(point: str) -> None:
    return None


class ClientIds:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        cache_limit: int = CACHE_LIMIT,
        clock: Callable[[], float] = time.time,
        pause: Callable[[str], None] = _no_pause,
    ) -> None:
        self._db = dynamodb
        self._table = table
        self._cache_limit = cache_limit
        self._clock = clock
        self._pause = pause  # tests stop a call at named points to drive races
        self._owners: dict[tuple[str, int], str] = {}
        self._owners_lock = threading.Lock()  # bindings may be written from threads
        # A page keeps one id per load; offline edits of a few earlier loads may come
        # together. Far more than that in one message is a flood.
        self.max_new_ids = MAX_NEW_IDS

    def filter_foreign(self, scene_id: str, user_id: str, update: bytes, max_new: int | None = None) -> bytes:
        """`update` without the client groups of ids bound to other users, binding its unbound
        ids to `user_id` first (so they are bound before the update is stored). The same
        bytes object when nothing is dropped. `update` must be valid (validate_update).
        `max_new`: how many ids this call may bind (default `max_new_ids`; an update that
        no resync will follow, such as an HTTP import, binds all it names, and is refused,
        TooLarge, past MAX_IDS_PER_UPDATE ids)."""
        layout = read_update(update)
        clients = [group.client for group in layout.groups]
        if not clients:
            return update
        # Group ids are distinct (yjs_format checks). Past MAX_IDS_PER_UPDATE none is even
        # read: over a WebSocket those groups wait for the author's next resync, as ids past
        # the binding cap do (a client holding that many unsent ids gets in over a few
        # resyncs, never stuck); an update no resync follows is refused, to be split.
        overflow: set[int] = set()
        if len(clients) > MAX_IDS_PER_UPDATE:
            if max_new is not None:
                raise TooLarge(
                    f"the update names {len(clients)} Yjs client ids, more than {MAX_IDS_PER_UPDATE}; split it"
                )
            overflow = set(clients[MAX_IDS_PER_UPDATE:])
            clients = clients[:MAX_IDS_PER_UPDATE]
        foreign = self.foreign(scene_id, user_id, clients, max_new) | overflow
        if not foreign:
            return update
        logger.warning(
            "dropped client groups bound to other users",
            extra={"sceneId": scene_id, "userId": user_id, "clients": sorted(foreign)},
        )
        return drop_groups(update, layout, foreign)

    def foreign(
        self, scene_id: str, user_id: str, clients: Iterable[int], max_new: int | None = None
    ) -> set[int]:
        """Of `clients`, the ids bound to other users; the unbound ones are bound to
        `user_id` first. Awareness claims ids too: a client announces its presence before
        it types, so its id is bound before a peer can learn it and forge it. Binding costs
        a write per new id, so one call binds at most `max_new_ids` (invariant 9); the
        rest count as foreign for this call and are bound by a later one."""
        clients = list(dict.fromkeys(clients))
        owners = self.owners(scene_id, clients)
        unbound = [client for client in clients if client not in owners]
        # Past the cap, ids stay unbound and their groups are left out of this message:
        # the author's next resync sends them again, so many offline sessions get in over
        # a few resyncs instead of never.
        limit = self.max_new_ids if max_new is None else max_new
        deferred = set(unbound[limit:])
        self._pause("bind:read")
        binding = unbound[:limit]
        if len(binding) > _BIND_THREADS:
            # Conditional puts do not batch; hundreds one after another would take seconds.
            with ThreadPoolExecutor(_BIND_THREADS) as pool:
                bound = pool.map(lambda client: self.bind(scene_id, client, user_id), binding)
                owners.update(zip(binding, bound, strict=True))
        else:
            for client in binding:
                owners[client] = self.bind(scene_id, client, user_id)
        return deferred | {
            client for client in clients if client not in deferred and owners[client] != user_id
        }

    def owners(self, scene_id: str, clients: Iterable[int]) -> dict[int, str]:
        """The users the given client ids are bound to; unbound ids are left out."""
        found: dict[int, str] = {}
        missing: list[int] = []
        for client in dict.fromkeys(clients):
            owner = self._owners.get((scene_id, client))
            if owner is None:
                missing.append(client)
            else:
                found[client] = owner
        for start in range(0, len(missing), _BATCH_GET_LIMIT):
            for item in self._batch_get(scene_id, missing[start : start + _BATCH_GET_LIMIT]):
                client = int(item["sk"]["S"][len(CLIENT_PREFIX) :])
                found[client] = self._remember(scene_id, client, item["userId"]["S"])
        return found

    def bind(self, scene_id: str, client: int, user_id: str) -> str:
        """Bind `client` to `user_id` unless it is bound already; the user it is bound to.

        A put whose response was lost is retried by botocore and then fails its condition
        on its own item: the item that failed it says whose it is, so that is still ours."""
        item = {
            "sceneId": {"S": scene_id},
            "sk": {"S": f"{CLIENT_PREFIX}{client}"},
            "userId": {"S": user_id},
            "boundAt": {"N": str(int(self._clock()))},
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return self._remember(scene_id, client, user_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            existing: dict[str, Any] | None = error.response.get("Item")
        if existing is None:  # no ALL_OLD in the error: read the binding that won
            existing = self._db.get_item(
                TableName=self._table,
                Key={"sceneId": item["sceneId"], "sk": item["sk"]},
                ConsistentRead=True,
            ).get("Item")
            if existing is None:
                raise RuntimeError(
                    f"client id {client} of {scene_id}: the put failed its condition, yet no item"
                )
        return self._remember(scene_id, client, existing["userId"]["S"])

    def _batch_get(self, scene_id: str, clients: list[int]) -> list[dict[str, Any]]:
        keys = [{"sceneId": {"S": scene_id}, "sk": {"S": f"{CLIENT_PREFIX}{c}"}} for c in clients]
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "sk, userId",
            }
        }
        items: list[dict[str, Any]] = []
        for attempt in range(8):
            response = self._db.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError(f"client ids of {scene_id}: DynamoDB kept keys unprocessed")

    def _remember(self, scene_id: str, client: int, user_id: str) -> str:
        with self._owners_lock:
            if len(self._owners) >= self._cache_limit:
                # Oldest first (dicts keep insertion order): a binding is re-read when needed.
                del self._owners[next(iter(self._owners))]
            self._owners[(scene_id, client)] = user_id
        return user_id
