"""Chunk reassembly in DynamoDB (collab.durable_chunks), what the handlers use while the
cache is unavailable: the text is handed over exactly once whatever the order, repeats and
retried writes; limits answer as the Redis assembler's do. Against moto's server."""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest
from botocore.config import Config

from collab.chunks import split_message
from collab.durable_chunks import DurableChunks
from collab.errors import BadRequest, TooLarge
from tests.support.faults import LoseResponses


def client() -> Any:
    return boto3.client("dynamodb", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


@pytest.fixture
def chunks(aws_tables: dict[str, str]) -> DurableChunks:
    return DurableChunks(client(), aws_tables["DOCUMENTS_TABLE"], max_bytes=200_000)


def frames(text: str, chunk_id: str = "m1", limit: int = 1_000) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in split_message(text, limit, new_id=lambda: chunk_id)]


def add(chunks: DurableChunks, frame: dict[str, Any], conn: str = "conn=") -> str | None:
    return chunks.add("scene-1", conn, frame["id"], frame["seq"], frame["total"], frame["data"])


def leftovers(aws_tables: dict[str, str]) -> list[str]:
    items = client().scan(TableName=aws_tables["DOCUMENTS_TABLE"])["Items"]
    return sorted(item["sk"]["S"].rsplit("#", 1)[1] for item in items)


def test_out_of_order_and_repeated_slices_give_the_text_once(
    chunks: DurableChunks, aws_tables: dict[str, str]
) -> None:
    text = '{"action":"update","data":"' + "QUJD" * 2_000 + '"}'
    parts = frames(text)
    assert len(parts) > 5
    order = parts + parts[:3]  # every slice, then repeats
    random.Random(7).shuffle(order)
    got = [result for frame in order if (result := add(chunks, frame)) is not None]
    assert got == [text]
    for frame in parts:  # late duplicates of a finished id
        assert add(chunks, frame) is None
    # Slices and counter deleted; the end marker and the (now empty) open list expire.
    assert leftovers(aws_tables) == ["end", "open"]
    [opened] = [
        i
        for i in client().scan(TableName=aws_tables["DOCUMENTS_TABLE"])["Items"]
        if i["sk"]["S"].endswith("#open")
    ]
    assert "ids" not in opened


def test_ids_of_different_connections_and_ids_holding_separators_do_not_mix(chunks: DurableChunks) -> None:
    one, other = '{"a":"' + "x" * 3_000 + '"}', '{"b":"' + "y" * 3_000 + '"}'
    first, second = frames(one, "p"), frames(other, "p#p0")
    results = [add(chunks, f) for f in first[:-1]] + [add(chunks, f) for f in second]
    results.append(add(chunks, first[-1]))
    assert [r for r in results if r] == [other, one]
    same_id = frames(one, "q")
    assert [r for f in same_id if (r := add(chunks, f, "conn-a="))] == [one]
    assert [r for f in same_id if (r := add(chunks, f, "conn-b="))] == [one]


def test_limits_answer_as_the_redis_assembler(chunks: DurableChunks) -> None:
    with pytest.raises(TooLarge):
        chunks.add("scene-1", "conn=", "many", 0, 5_000, "x")
    assert chunks.add("scene-1", "conn=", "many", 1, 5_000, "x") is None  # refused once
    big = frames('{"a":"' + "z" * 250_000 + '"}', "big", limit=30_000)
    with pytest.raises(TooLarge):
        for frame in big:
            add(chunks, frame)
    chunks.add("scene-1", "conn=", "t", 0, 3, "abc")
    with pytest.raises(BadRequest):
        chunks.add("scene-1", "conn=", "t", 1, 4, "def")
    with pytest.raises(BadRequest):
        chunks.add("scene-1", "conn=", "t", 7, 3, "def")


def test_the_completing_call_keeps_the_text_when_its_writes_responses_are_lost(
    aws_tables: dict[str, str],
) -> None:
    dynamodb = client()
    chunks = DurableChunks(dynamodb, aws_tables["DOCUMENTS_TABLE"])
    text = '{"action":"update","data":"' + "QUJD" * 600 + '"}'
    parts = frames(text)
    for frame in parts[:-1]:
        assert add(chunks, frame) is None
    lost = LoseResponses(dynamodb, "PutItem", times=2)  # the last slice's put and the claim
    assert add(chunks, parts[-1]) == text
    assert lost.lost == 2
