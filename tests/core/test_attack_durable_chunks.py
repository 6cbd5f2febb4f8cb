"""Floods of chunk frames while the cache is down (collab.durable_chunks), against moto's
server: the DynamoDB assembler must bound what one connection stores as the Redis one
does (invariant 9: caps per message and per connection), or a hostile connection of any
role (reassembly runs before the role is looked at) buys storage, DynamoDB reads and a
Lambda's memory with a handful of frames. Both failed on the first build of it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from collab.durable_chunks import DurableChunks
from collab.errors import TooLarge
from collab.settings import Settings


def client() -> Any:
    return boto3.client("dynamodb", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def slices_stored(aws_tables: dict[str, str]) -> int:
    items = client().scan(TableName=aws_tables["DOCUMENTS_TABLE"])["Items"]
    return sum(1 for item in items if item["sk"]["S"].rsplit("#", 1)[1].startswith("p"))


def test_a_message_over_the_size_limit_is_refused_as_it_crosses_it(aws_tables: dict[str, str]) -> None:
    chunks = DurableChunks(client(), aws_tables["DOCUMENTS_TABLE"], max_bytes=1_000)
    refused_at = None
    for seq in range(10):  # 10 x 500 bytes against a 1,000-byte limit
        try:
            chunks.add("scene-1", "conn=", "big", seq, 10, "x" * 500)
        except TooLarge:
            refused_at = seq
            break
    # The Redis assembler refuses the slice that crosses the limit (the third).
    assert refused_at is not None and refused_at <= 2
    assert slices_stored(aws_tables) <= 2


def test_a_connection_cannot_open_more_pending_messages_than_the_limit(aws_tables: dict[str, str]) -> None:
    chunks = DurableChunks(client(), aws_tables["DOCUMENTS_TABLE"])
    limit = Settings.max_pending_chunked
    refused = 0
    for number in range(limit + 4):
        try:
            chunks.add("scene-1", "conn=", f"m{number}", 0, 2, "x" * 100)
        except TooLarge:
            refused += 1
    assert refused == 4
    assert slices_stored(aws_tables) == limit
