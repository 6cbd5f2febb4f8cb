"""Chunk reassembly in DynamoDB, for when the cache is unavailable (invariant 7: with the
cache down, an edit too big for one frame must still be stored and broadcast).

Items of the documents table, under the connection's scene, each with a TTL:

    chunk#<conn>#<hex id>#p<seq>   one slice (`data`), written once: a repeat changes nothing
    chunk#<conn>#<hex id>#n    the seqs and bytes reserved so far, and the `total`
    chunk#<conn>#<hex id>#end      who completed or refused the id (written once)

    chunk#<conn>#open          the connection's incomplete ids (at most max_pending)

A slice costs a few small writes: its id counted among the connection's open ones, its
seq and bytes reserved on the counter (refused there when they would cross the size
limit, so an oversized message stores nothing past the limit), the slice itself, and a
read of the counter. The call that finds every slice stored reads them back (one paginated
Query), claims the id with a conditional put of the end marker, and alone gets the text:
exactly once, as ChunkAssembler does in Redis. Limits are the assembler's: the size, the
slice count, the pending messages per connection and a conflicting total.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from collab.aws_json import prefix_pages
from collab.chunks import check_chunk, utf8
from collab.errors import BadRequest, TooLarge

PREFIX = "chunk#"


class DurableChunks:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        max_chunks: int = 4096,
        max_pending: int = 8,
        ttl_seconds: int = 300,
    ) -> None:
        self._db = dynamodb
        self._table = table
        self.max_bytes = max_bytes
        self.max_chunks = max_chunks
        self.max_pending = max_pending
        self.ttl_seconds = ttl_seconds

    def add(
        self, scene_id: str, connection_id: str, chunk_id: str, seq: int, total: int, data: str
    ) -> str | None:
        """As ChunkAssembler.add: the whole text to the one call that completes the id;
        TooLarge once per id over the size, slice or pending limits."""
        check_chunk(chunk_id, seq, total, data)
        size = len(utf8(data))
        # Hex: a chunk id may hold '#', which would let one id's keys prefix another's.
        base = f"{PREFIX}{connection_id}#{chunk_id.encode('utf-8').hex()}#"
        if self._get(scene_id, base + "end") is not None:
            return None  # finished or refused: a late duplicate
        if total > self.max_chunks:
            self._refuse(scene_id, connection_id, chunk_id, base)
            raise TooLarge(f"chunked message {chunk_id!r} has more than {self.max_chunks} chunks")
        self._open(scene_id, connection_id, chunk_id, base)
        # The bytes are reserved before the slice is stored, so the slice that would cross
        # the limit is refused without being written.
        if not self._reserve(scene_id, connection_id, chunk_id, base, seq, total, size):
            raise TooLarge(f"chunked message {chunk_id!r} is over the limit of {self.max_bytes} bytes")
        self._put_slice(scene_id, base, seq, data)
        # Read after our own put: whichever put lands last sees every reserved slice stored.
        counter = self._get(scene_id, base + "n") or {}
        if len(counter.get("seqs", {}).get("SS", [])) < total:
            return None
        slices = self._slices(scene_id, base)
        if len(slices) < total:
            return None  # another slice's put is still on its way; that call completes it
        if not self._end(scene_id, base, "done"):
            return None  # another call (the last two slices at once) completed it
        self._close(scene_id, connection_id, chunk_id)
        self._forget(scene_id, base, total)
        return "".join(slices[i] for i in range(total))

    # -- items -----------------------------------------------------------------------------
    def _key(self, scene_id: str, sk: str) -> dict[str, Any]:
        return {"sceneId": {"S": scene_id}, "sk": {"S": sk}}

    def _expiry(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + self.ttl_seconds)}

    def _get(self, scene_id: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table, Key=self._key(scene_id, sk), ConsistentRead=True
        ).get("Item")
        return item

    def _open(self, scene_id: str, connection_id: str, chunk_id: str, base: str) -> None:
        """Count the id among the connection's incomplete messages (at most max_pending)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(scene_id, f"{PREFIX}{connection_id}#open"),
                UpdateExpression="ADD ids :id SET expiresAt = :exp",
                ConditionExpression="attribute_not_exists(ids) OR size(ids) < :max OR contains(ids, :one)",
                ExpressionAttributeValues={
                    ":id": {"SS": [chunk_id]},
                    ":one": {"S": chunk_id},
                    ":max": {"N": str(self.max_pending)},
                    ":exp": self._expiry(),
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self._end(scene_id, base, "too_many")
            raise TooLarge(
                f"too many pending chunked messages (limit {self.max_pending} per connection)"
            ) from None

    def _close(self, scene_id: str, connection_id: str, chunk_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=self._key(scene_id, f"{PREFIX}{connection_id}#open"),
            UpdateExpression="DELETE ids :id",
            ExpressionAttributeValues={":id": {"SS": [chunk_id]}},
        )

    def _refuse(self, scene_id: str, connection_id: str, chunk_id: str, base: str) -> None:
        self._end(scene_id, base, "too_large")
        self._close(scene_id, connection_id, chunk_id)

    def _reserve(
        self, scene_id: str, connection_id: str, chunk_id: str, base: str, seq: int, total: int, size: int
    ) -> bool:
        """Record `seq` and its bytes; False (the id refused) when they cross max_bytes. A
        repeated seq, or botocore's retry of our own reservation, changes nothing."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(scene_id, base + "n"),
                UpdateExpression="SET #t = if_not_exists(#t, :total), expiresAt = :exp ADD seqs :seq, #b :size",
                ConditionExpression="(attribute_not_exists(#t) OR #t = :total) AND "
                "(attribute_not_exists(seqs) OR NOT contains(seqs, :one)) AND "
                "(attribute_not_exists(#b) OR #b <= :room)",
                ExpressionAttributeNames={"#t": "total", "#b": "bytes"},
                ExpressionAttributeValues={
                    ":total": {"N": str(total)},
                    ":exp": self._expiry(),
                    ":seq": {"SS": [str(seq)]},
                    ":one": {"S": str(seq)},
                    ":size": {"N": str(size)},
                    ":room": {"N": str(self.max_bytes - size)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = error.response.get("Item") or self._get(scene_id, base + "n") or {}
            if "total" in old and int(old["total"]["N"]) != total:
                raise BadRequest(
                    f"chunk {chunk_id!r}: total {total} differs from the first chunk's total "
                    f"{old['total']['N']}"
                ) from None
            if str(seq) in old.get("seqs", {}).get("SS", []):
                return True  # a repeat (first write wins) or our own retried reservation
            self._refuse(scene_id, connection_id, chunk_id, base)
            return False
        return True

    def _put_slice(self, scene_id: str, base: str, seq: int, data: str) -> None:
        """First write wins: a repeated seq (or botocore's retry of our own put) keeps it."""
        item = {**self._key(scene_id, f"{base}p{seq}"), "data": {"S": data}, "expiresAt": self._expiry()}
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)"
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _slices(self, scene_id: str, base: str) -> dict[int, str]:
        pages = prefix_pages(self._db, self._table, scene_id, base + "p")
        return {
            int(item["sk"]["S"][len(base) + 1 :]): item["data"]["S"]
            for page in pages
            for item in page["Items"]
        }

    def _end(self, scene_id: str, base: str, status: str) -> bool:
        """Claim the id; True for the one call that did (a retry of it included)."""
        token = secrets.token_hex(8)
        item = {
            **self._key(scene_id, base + "end"),
            "status": {"S": status},
            "by": {"S": token},
            "expiresAt": self._expiry(),
        }
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)"
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = self._get(scene_id, base + "end")
            return stored is not None and stored["by"]["S"] == token
        return True

    def _forget(self, scene_id: str, base: str, total: int) -> None:
        """Delete the slices and the counter (the TTL would, later); the end marker stays
        until its TTL so late duplicates are dropped."""
        keys = [self._key(scene_id, f"{base}p{seq}") for seq in range(total)] + [
            self._key(scene_id, base + "n")
        ]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            }
            for _ in range(5):
                pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
