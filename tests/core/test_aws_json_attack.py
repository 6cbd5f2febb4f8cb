"""Attacks on collab.aws_json, the lean JSON-protocol client that replaced botocore's
DynamoDB client in the handlers: it must answer as botocore's client does for every call
the handlers make, against the same moto server (`aws_tables`), and fail, retry and time
out as botocore's "standard" mode does against a real loopback HTTP server started here
(`FakeService`), which answers each request from a script.

The scripted server's tests give the client three attempts (`fake`), the numbers they count
against; the handlers' clients make four (test_the_clients_the_handlers_build)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from collab import aws_clients, aws_json
from collab.aws_json import JsonClient

# -- the clients against moto -------------------------------------------------------------


def _fresh_table(prefix: str, key_type: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": key_type},
            {"AttributeName": "sk", "AttributeType": key_type},
        ],
    )
    yield name
    client.delete_table(TableName=name)


@pytest.fixture
def table(moto: str) -> Iterator[str]:
    """A fresh table (string partition and sort keys, as tables.json's)."""
    yield from _fresh_table("atk", "S")


@pytest.fixture
def binary_table(moto: str) -> Iterator[str]:
    """A table keyed by binary attributes: every key in requests and answers is base64."""
    yield from _fresh_table("atkb", "B")


@pytest.fixture
def lean(moto: str) -> Iterator[JsonClient]:
    client = aws_clients.json_client("dynamodb")
    yield client
    client.close()


@pytest.fixture
def boto(moto: str) -> Any:
    return boto3.client("dynamodb")


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def error_of(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def comparable_error(error: ClientError) -> dict[str, Any]:
    """What the handlers read of an error: the code, and the modelled members."""
    response = dict(error.response)
    response.pop("ResponseMetadata", None)
    response.pop("message", None)  # botocore repeats the message as a modelled member
    response.pop("Message", None)
    return {"Code": response.pop("Error")["Code"], **response}


# -- a scripted HTTP/1.1 server on loopback ---------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    crc32: bool | str = True  # True: the right x-amz-crc32; False: none; a string: that value
    close_after: bool = False  # close the connection after answering (no Connection: close)
    chunked: bool = False  # Transfer-Encoding: chunked, in chunks of 7 bytes


@dataclass
class Hang:
    """Read the request, answer nothing, hold the connection open."""


@dataclass
class CutOff:
    """Send the status line, headers (Content-Length of the whole body) and `sent` bytes, close."""

    body: bytes = b'{"Item":{"pk":{"S":"x"}}}'
    sent: int = 5


@dataclass
class Drop:
    """Read the request, close the connection without a word (a server restarting, or an
    idle timeout that fired as the request arrived)."""


Action = Reply | Hang | CutOff | Drop


def json_reply(payload: dict[str, Any], status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode(), **kwargs)


def error_reply(code: str, message: str = "m", status: int = 400) -> Reply:
    return json_reply({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}, status)


class FakeService:
    """Answers the n-th request with script[n] (the last action repeats once exhausted).
    Records each request: which connection (its accept order) carried it, its headers and body."""

    def __init__(self, script: list[Action]) -> None:
        self.script = list(script)
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self.connections: list[socket.socket] = []
        # Connections accepted before this index drop any request they carry, unrecorded
        # (gone while Lambda froze the environment; the client has not seen it yet).
        self.dead_below = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def connection_of(self, n: int) -> int:
        with self._lock:
            return self.requests[n][0]

    def close_connections(self) -> None:
        """The server closes every connection it holds (an idle timeout on its side)."""
        with self._lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self.close_connections()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = len(self.connections)
                self.connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket, index: int) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                if index < self.dead_below:
                    connection.shutdown(socket.SHUT_RDWR)
                    return
                with self._lock:
                    n = len(self.requests)
                    self.requests.append((index, headers, body))
                    action = self.script[min(n, len(self.script) - 1)]
                if isinstance(action, Hang):
                    self._stop.wait()
                    return
                if isinstance(action, Drop):
                    connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, CutOff):
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                        + f"Content-Length: {len(action.body)}\r\n\r\n".encode()
                        + action.body[: action.sent]
                    )
                    connection.shutdown(socket.SHUT_RDWR)
                    return
                headers_out = {
                    "Content-Type": "application/x-amz-json-1.0",
                    "Content-Length": str(len(action.body)),
                    "x-amzn-RequestId": f"req-{n}",
                    **action.headers,
                }
                if action.crc32 is True:
                    headers_out["x-amz-crc32"] = str(zlib.crc32(action.body))
                elif isinstance(action.crc32, str):
                    headers_out["x-amz-crc32"] = action.crc32
                payload = action.body
                if action.chunked:
                    del headers_out["Content-Length"]
                    headers_out["Transfer-Encoding"] = "chunked"
                    pieces = [action.body[i : i + 7] for i in range(0, len(action.body), 7)]
                    payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
                status_line = f"HTTP/1.1 {action.status} X\r\n"
                head_out = status_line + "".join(f"{k}: {v}\r\n" for k, v in headers_out.items()) + "\r\n"
                connection.sendall(head_out.encode() + payload)
                if action.close_after:
                    connection.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return
        finally:
            connection.close()


@pytest.fixture
def fake() -> Iterator[Callable[..., tuple[FakeService, JsonClient, list[float]]]]:
    """fake(script, **client options) -> (server, a DynamoDB JsonClient on it, its sleeps)."""
    made: list[tuple[FakeService, JsonClient]] = []

    def make(script: list[Action], **options: Any) -> tuple[FakeService, JsonClient, list[float]]:
        server = FakeService(script)
        sleeps: list[float] = []
        client = JsonClient(
            aws_json.DYNAMODB,
            region="us-east-1",
            endpoint_url=server.url,
            identity=aws_json.mc.SigningIdentity(StaticCredentials()),
            sleep=sleeps.append,
            **{"max_attempts": 3, **options},
        )
        made.append((server, client))
        return server, client, sleeps

    yield make
    for server, client in made:
        client.close()
        server.stop()


class StaticCredentials:
    def get_frozen_credentials(self) -> tuple[str, str, None]:
        return ("local", "local", None)


def get(client: JsonClient) -> dict[str, Any]:
    return client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})


# -- binary values at every depth, against moto, as botocore reads them -----------------------

BLOB = bytes(range(256)) * 3


def every_depth_item(pk: str) -> dict[str, Any]:
    return {
        "pk": {"S": pk},
        "sk": {"S": "0"},
        "b": {"B": BLOB},
        "empty_set_member": {"BS": [b"\x00", b"\xff" * 7, b"x"]},
        # attributes literally named as DynamoDB's type tags
        "B": {"B": b"named B"},
        "BS": {"BS": [b"named", b"BS"]},
        "S": {"S": "a string named S"},
        "M": {
            "M": {
                "B": {"B": b"\x01in a map"},
                "BS": {"BS": [b"\x02", b"\x03"]},
                "deeper": {"M": {"B": {"M": {"B": {"B": b"three maps down"}}}}},
                "str_named_B": {"M": {"B": {"S": "QUJD"}}},  # a string that is valid base64
                "list": {"L": [{"B": b"\x04"}, {"L": [{"B": b"\x05"}, {"M": {"B": {"B": b"\x06"}}}]}]},
            }
        },
        "L": {"L": [{"B": b"first"}, {"BS": [b"\x07"]}, {"S": "QkJC"}, {"SS": ["QQ==", "Qg=="]}]},
        "looks_like_b64": {"S": "AAAA"},
        "ss_named": {"SS": ["B", "BS"]},
    }


def test_binary_values_round_trip_at_every_depth_as_botocore_reads_them(
    table: str, lean: JsonClient, boto: Any
) -> None:
    item = every_depth_item("deep")
    lean.put_item(TableName=table, Item=item)
    key = {"pk": {"S": "deep"}, "sk": {"S": "0"}}
    mine = lean.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    theirs = boto.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert mine == theirs
    # moto returns sets in its own order: compare sets as sets
    assert sorted(mine["empty_set_member"]["BS"]) == sorted(item["empty_set_member"]["BS"])
    mine_cmp = {k: v for k, v in mine.items() if k not in ("empty_set_member", "BS", "M", "L", "ss_named")}
    assert mine_cmp == {k: v for k, v in item.items() if k in mine_cmp}
    assert mine["M"]["M"]["deeper"] == item["M"]["M"]["deeper"]
    assert mine["M"]["M"]["str_named_B"] == {"M": {"B": {"S": "QUJD"}}}
    assert mine["M"]["M"]["list"] == item["M"]["M"]["list"]
    assert mine["L"]["L"][0] == {"B": b"first"}
    assert mine["L"]["L"][2] == {"S": "QkJC"}
    assert isinstance(mine["B"]["B"], bytes)
    # and what botocore wrote, the lean client reads the same
    boto.put_item(TableName=table, Item={**item, "pk": {"S": "deep2"}})
    key2 = {"pk": {"S": "deep2"}, "sk": {"S": "0"}}
    assert (
        lean.get_item(TableName=table, Key=key2, ConsistentRead=True)["Item"]
        == boto.get_item(TableName=table, Key=key2, ConsistentRead=True)["Item"]
    )


def test_empty_binary_and_bytearray_memoryview_values(table: str, lean: JsonClient, boto: Any) -> None:
    key = {"pk": {"S": "kinds"}, "sk": {"S": "0"}}
    lean.put_item(
        TableName=table,
        Item={
            **key,
            "ba": {"B": bytearray(b"\x00\x01")},
            "mv": {"B": memoryview(b"\x02\x03")},
            "one": {"B": b"\x00"},
        },
    )
    item = boto.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert (
        item["ba"] == {"B": b"\x00\x01"}
        and item["mv"] == {"B": b"\x02\x03"}
        and item["one"] == {"B": b"\x00"}
    )
    # an empty binary (allowed for a non-key attribute): both clients agree on what happens
    empty = {**key, "e": {"B": b""}}
    try:
        boto.put_item(TableName=table, Item=empty)
        boto_outcome: Any = boto.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"].get("e")
    except ClientError as error:
        boto_outcome = error.response["Error"]["Code"]
    lean.delete_item(TableName=table, Key=key)
    try:
        lean.put_item(TableName=table, Item=empty)
        lean_outcome: Any = lean.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"].get("e")
    except ClientError as error:
        lean_outcome = error.response["Error"]["Code"]
    assert lean_outcome == boto_outcome


def test_binary_keys_in_get_query_and_last_evaluated_key(
    binary_table: str, lean: JsonClient, boto: Any
) -> None:
    pk = b"\x00\xffpk"
    for i in range(7):
        lean.put_item(
            TableName=binary_table,
            Item={"pk": {"B": pk}, "sk": {"B": bytes([i, 255 - i])}, "n": {"N": str(i)}},
        )
    seen: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": binary_table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"B": pk}},
        "Limit": 2,
        "ConsistentRead": True,
    }
    pages = 0
    while True:
        page = lean.query(**kwargs)
        pages += 1
        seen.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        assert isinstance(page["LastEvaluatedKey"]["sk"]["B"], bytes)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]  # bytes go back out as base64
    assert pages >= 4
    theirs = boto.query(
        TableName=binary_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"B": pk}},
        ConsistentRead=True,
    )["Items"]
    assert seen == theirs
    assert [item["sk"]["B"] for item in seen] == [bytes([i, 255 - i]) for i in range(7)]


def test_a_400_kb_item_round_trips(table: str, lean: JsonClient, boto: Any) -> None:
    big = bytes(range(256)) * 1500  # 384,000 bytes, 512,000 as base64
    key = {"pk": {"S": "big"}, "sk": {"S": "0"}}
    lean.put_item(TableName=table, Item={**key, "data": {"B": big}, "text": {"S": "é" * 5000}})
    mine = lean.get_item(TableName=table, Key=key, ConsistentRead=True)
    assert mine["Item"]["data"]["B"] == big
    assert mine["Item"] == boto.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    # one byte over DynamoDB's limit is refused (moto checks the size too), as botocore sees it
    over = {**key, "data": {"B": bytes(400 * 1024 + 1)}}
    assert comparable_error(error_of(lambda: lean.put_item(TableName=table, Item=over))) == comparable_error(
        error_of(lambda: boto.put_item(TableName=table, Item=over))
    )


@pytest.mark.parametrize(
    "text",
    ["plain", "é中文🎉", "\u2028\u2029", "nul\x00inside", "\ud800", "a\udfffb", "\ud83d\ude00"],
    ids=["ascii", "unicode", "separators", "nul", "lone-high", "lone-low", "pair-as-surrogates"],
)
def test_strings_round_trip_as_botocore_sends_them(
    table: str, lean: JsonClient, boto: Any, text: str
) -> None:
    key = {"pk": {"S": "u-" + uuid.uuid4().hex}, "sk": {"S": text}}

    def outcome(client: Any) -> Any:
        try:
            client.put_item(TableName=table, Item={**key, "v": {"S": text}, "m": {"M": {text: {"S": text}}}})
            return client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        except ClientError as error:
            return error.response["Error"]["Code"]
        except BotoCoreError as error:  # the kind is what matters
            return type(error).__name__

    assert outcome(lean) == outcome(boto)


# -- every operation the handlers use, against moto, compared with botocore ----------------------


def test_put_get_update_delete_answers_as_botocore(table: str, lean: JsonClient, boto: Any) -> None:
    for name, client in (("lean", lean), ("boto", boto)):
        key = {"pk": {"S": f"ops-{name}"}, "sk": {"S": "0"}}
        put = client.put_item(TableName=table, Item={**key, "v": {"B": b"\x00one"}, "n": {"N": "1"}})
        assert without_metadata(put) == {}
        assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert put["ResponseMetadata"]["RetryAttempts"] == 0
        again = client.put_item(
            TableName=table, Item={**key, "v": {"B": b"\x00two"}, "n": {"N": "2"}}, ReturnValues="ALL_OLD"
        )
        assert again["Attributes"]["v"] == {"B": b"\x00one"}
        updated = client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #b = :b, m = :m ADD n :one",
            ExpressionAttributeNames={"#b": "B"},
            ExpressionAttributeValues={
                ":b": {"B": b"\xffupdated"},
                ":m": {"M": {"B": {"BS": [b"\x01"]}}},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
        )
        assert updated["Attributes"]["B"] == {"B": b"\xffupdated"}
        assert updated["Attributes"]["m"] == {"M": {"B": {"BS": [b"\x01"]}}}
        assert updated["Attributes"]["n"] == {"N": "3"}
        missing = client.get_item(TableName=table, Key={"pk": {"S": "absent"}, "sk": {"S": "0"}})
        assert "Item" not in missing
        deleted = client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
        assert deleted["Attributes"]["v"] == {"B": b"\x00two"}
        assert "Item" not in client.get_item(TableName=table, Key=key, ConsistentRead=True)


def test_a_failed_condition_returns_the_item_with_its_binaries(
    table: str, lean: JsonClient, boto: Any
) -> None:
    key = {"pk": {"S": "cond"}, "sk": {"S": "0"}}
    lean.put_item(
        TableName=table,
        Item={**key, "claim": {"S": "mine"}, "sv": {"B": b"\x00\x01"}, "M": {"M": {"B": {"B": b"\x02"}}}},
    )

    def attempt(client: Any) -> ClientError:
        return error_of(
            lambda: client.put_item(
                TableName=table,
                Item={**key, "claim": {"S": "theirs"}},
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )

    mine, theirs = attempt(lean), attempt(boto)
    assert type(mine).__name__ == "ConditionalCheckFailedException"
    assert mine.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert mine.response["Item"]["sv"] == {"B": b"\x00\x01"}
    assert mine.response["Item"]["M"] == {"M": {"B": {"B": b"\x02"}}}
    assert comparable_error(mine) == comparable_error(theirs)
    assert mine.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert mine.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert mine.operation_name == "PutItem"
    # an update's failed condition, the same
    update = error_of(
        lambda: lean.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET claim = :c",
            ConditionExpression="claim = :other",
            ExpressionAttributeValues={":c": {"S": "x"}, ":other": {"S": "nobody"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    )
    assert update.response["Item"]["claim"] == {"S": "mine"}
    assert update.response["Item"]["sv"] == {"B": b"\x00\x01"}


def test_query_pagination_reads_every_item_once(table: str, lean: JsonClient, boto: Any) -> None:
    for i in range(23):
        lean.put_item(
            TableName=table, Item={"pk": {"S": "q"}, "sk": {"S": f"{i:03}"}, "b": {"B": bytes([i])}}
        )
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :z)",
        "ExpressionAttributeValues": {":p": {"S": "q"}, ":z": {"S": "0"}},
        "Limit": 5,
        "ConsistentRead": True,
    }
    seen: list[dict[str, Any]] = []
    while True:
        page = lean.query(**kwargs)
        assert page["Count"] == len(page["Items"])
        seen.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert [item["sk"]["S"] for item in seen] == [f"{i:03}" for i in range(23)]
    assert [item["b"]["B"] for item in seen] == [bytes([i]) for i in range(23)]
    full = boto.query(**{k: v for k, v in kwargs.items() if k not in ("Limit", "ExclusiveStartKey")})
    assert seen == full["Items"]
    descending = lean.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "q"}},
        ScanIndexForward=False,
        Limit=1,
        ProjectionExpression="sk",
    )
    assert descending["Items"] == [{"sk": {"S": "022"}}]


def test_batch_write_and_batch_get_with_binary_keys(binary_table: str, lean: JsonClient, boto: Any) -> None:
    keys = [{"pk": {"B": b"\x00batch"}, "sk": {"B": bytes([i]) * 3}} for i in range(30)]
    for start in range(0, 30, 25):
        pending: dict[str, Any] = {
            binary_table: [
                {"PutRequest": {"Item": {**k, "v": {"BS": [b"a", k["sk"]["B"]]}}}}
                for k in keys[start : start + 25]
            ]
        }
        while pending:
            pending = lean.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    got: list[dict[str, Any]] = []
    request: dict[str, Any] = {binary_table: {"Keys": keys[:100], "ConsistentRead": True}}
    while request:
        answer = lean.batch_get_item(RequestItems=request)
        got.extend(answer["Responses"].get(binary_table, []))
        request = answer.get("UnprocessedKeys") or {}
    assert sorted(item["sk"]["B"] for item in got) == sorted(k["sk"]["B"] for k in keys)
    theirs = boto.batch_get_item(RequestItems={binary_table: {"Keys": keys, "ConsistentRead": True}})
    by_key = {item["sk"]["B"]: item for item in theirs["Responses"][binary_table]}
    for item in got:
        assert item["pk"] == by_key[item["sk"]["B"]]["pk"]
        assert sorted(item["v"]["BS"]) == sorted(by_key[item["sk"]["B"]]["v"]["BS"])
    # deletes through BatchWriteItem
    lean.batch_write_item(RequestItems={binary_table: [{"DeleteRequest": {"Key": k}} for k in keys[:10]]})
    left = lean.batch_get_item(RequestItems={binary_table: {"Keys": keys[:12], "ConsistentRead": True}})
    assert sorted(item["sk"]["B"] for item in left["Responses"][binary_table]) == [
        keys[10]["sk"]["B"],
        keys[11]["sk"]["B"],
    ]


def test_unprocessed_keys_of_a_batch_get_over_16_mb_come_back_as_bytes(
    binary_table: str, lean: JsonClient, boto: Any
) -> None:
    """moto answers a BatchGetItem over 16 MB with UnprocessedKeys, as DynamoDB does: the
    binary keys there must be bytes, so the handlers' loop can send them again."""
    text = "x" * (390 * 1024)
    keys = [{"pk": {"B": b"\x01big"}, "sk": {"B": i.to_bytes(2, "big") + b"\xff"}} for i in range(44)]
    for k in keys:
        boto.put_item(TableName=binary_table, Item={**k, "t": {"S": text}})
    request: dict[str, Any] = {binary_table: {"Keys": keys, "ProjectionExpression": "pk, sk, t"}}
    rounds = 0
    got: list[bytes] = []
    saw_unprocessed = False
    while request:
        rounds += 1
        answer = lean.batch_get_item(RequestItems=request)
        got.extend(item["sk"]["B"] for item in answer["Responses"].get(binary_table, []))
        request = answer.get("UnprocessedKeys") or {}
        if request:
            saw_unprocessed = True
            for key in request[binary_table]["Keys"]:
                assert isinstance(key["pk"]["B"], bytes) and isinstance(key["sk"]["B"], bytes)
        assert rounds < 5
    assert saw_unprocessed
    assert sorted(got) == sorted(k["sk"]["B"] for k in keys)


def test_transaction_cancellation_reasons_with_the_item(table: str, lean: JsonClient, boto: Any) -> None:
    held = {"pk": {"S": "tx"}, "sk": {"S": "held"}}
    lean.put_item(TableName=table, Item={**held, "owner": {"S": "a"}, "b": {"B": b"\x00held"}})

    def transact(client: Any, suffix: str) -> ClientError:
        return error_of(
            lambda: client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": "tx"}, "sk": {"S": "free-" + suffix}, "b": {"B": b"\x01"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {**held, "owner": {"S": "b"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        )

    mine, theirs = transact(lean, "lean"), transact(boto, "boto")
    assert type(mine).__name__ == "TransactionCanceledException"
    assert mine.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = mine.response["CancellationReasons"]
    assert [reason.get("Code") for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["b"] == {"B": b"\x00held"}
    assert comparable_error(mine) == comparable_error(theirs)
    assert mine.response["ResponseMetadata"]["RetryAttempts"] == 0
    # nothing of the transaction was written
    assert "Item" not in lean.get_item(
        TableName=table, Key={"pk": {"S": "tx"}, "sk": {"S": "free-lean"}}, ConsistentRead=True
    )
    # and a transaction that succeeds
    done = lean.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": held,
                    "UpdateExpression": "SET #o = :b",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": {":b": {"S": "b"}},
                }
            },
            {"Delete": {"TableName": table, "Key": {"pk": {"S": "tx"}, "sk": {"S": "nothing"}}}},
        ]
    )
    assert done["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert lean.get_item(TableName=table, Key=held, ConsistentRead=True)["Item"]["owner"] == {"S": "b"}


@pytest.mark.parametrize(
    "params",
    [
        {"TableName": "no-such-table", "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}},
        {"Key": {"pk": {"S": "a"}}},  # the table's name: wrong schema
        {"Key": {"pk": {"N": "1"}, "sk": {"S": "b"}}},  # a key of the wrong type
    ],
    ids=["missing-table", "missing-sort-key", "wrong-key-type"],
)
def test_errors_carry_botocores_code(table: str, lean: JsonClient, boto: Any, params: dict[str, Any]) -> None:
    params = {"TableName": table, **params}

    def outcome(client: Any) -> Any:
        try:
            return ("answer", without_metadata(client.get_item(**params)))
        except ClientError as error:
            assert error.response["ResponseMetadata"]["RetryAttempts"] == 0
            return (
                "error",
                error.response["Error"]["Code"],
                error.response["Error"]["Message"],
                error.response["ResponseMetadata"]["HTTPStatusCode"],
            )

    assert outcome(lean) == outcome(boto)


def test_a_scan_and_an_unknown_method(table: str, lean: JsonClient) -> None:
    lean.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": "0"}, "b": {"B": b"\x09"}})
    assert lean.scan(TableName=table)["Items"][0]["b"] == {"B": b"\x09"}
    with pytest.raises(AttributeError):
        lean.create_table  # noqa: B018 - not an operation the handlers call


def test_concurrent_calls_on_one_client_get_their_own_answers(table: str, lean: JsonClient) -> None:
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(15):
                key = {"pk": {"S": f"w{w}"}, "sk": {"S": f"{i}"}}
                payload = f"{w}:{i}".encode() * 50
                lean.put_item(TableName=table, Item={**key, "b": {"B": payload}})
                item = lean.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
                assert item["b"]["B"] == payload, (w, i)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_the_endpoint_comes_from_the_services_variable_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2/")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EVENTBRIDGE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:3")
    identity = aws_json.mc.SigningIdentity(StaticCredentials())
    assert JsonClient(aws_json.SECRETS_MANAGER, identity=identity).endpoint_url == "http://127.0.0.1:2"
    assert JsonClient(aws_json.SSM, identity=identity).endpoint_url == "http://127.0.0.1:3"
    assert JsonClient(aws_json.DYNAMODB, identity=identity).endpoint_url == "http://127.0.0.1:1"
    assert JsonClient(aws_json.EVENTBRIDGE, identity=identity).endpoint_url == "http://127.0.0.1:1"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert JsonClient(aws_json.DYNAMODB, region="eu-west-1", identity=identity).endpoint_url == (
        "https://dynamodb.eu-west-1.amazonaws.com"
    )


# -- faults from a scripted loopback server: retries, what is raised, time bounds ---------------

OK = json_reply({"Item": {"pk": {"S": "a"}, "b": {"B": base64.b64encode(b"\x00ok").decode()}}})


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_transient_status_then_200_is_one_retry(fake: Any, status: int) -> None:
    server, client, sleeps = fake([Reply(status, b"<html>gateway</html>", crc32=False), OK])
    answer = get(client)
    assert answer["Item"]["b"] == {"B": b"\x00ok"}
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert answer["ResponseMetadata"]["RequestId"] == "req-1"
    assert server.count == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1.0
    # the connection was kept across the retry (the 500 had a body of known length)
    assert server.connection_of(0) == server.connection_of(1)


def test_500s_until_the_attempts_run_out(fake: Any) -> None:
    server, client, sleeps = fake([error_reply("InternalServerError", "boom", 500)])
    error = error_of(lambda: get(client))
    assert error.response["Error"] == {"Code": "InternalServerError", "Message": "boom"}
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert server.count == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
    ],
)
def test_throttling_is_retried(fake: Any, code: str) -> None:
    server, client, sleeps = fake([error_reply(code), error_reply(code), OK])
    answer = get(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert server.count == 3 and len(sleeps) == 2
    server, client, sleeps = fake([error_reply(code)])
    error = error_of(lambda: get(client))
    assert error.response["Error"]["Code"] == code
    assert type(error).__name__ == code
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert server.count == 3


@pytest.mark.parametrize(
    "code,status",
    [
        ("ConditionalCheckFailedException", 400),
        ("ValidationException", 400),
        ("ResourceNotFoundException", 400),
        ("TransactionCanceledException", 400),
        ("TransactionConflictException", 400),
        ("AccessDeniedException", 400),
        ("UnrecognizedClientException", 400),
        ("ItemCollectionSizeLimitExceededException", 400),
        ("SomethingNew", 403),
        ("SomethingNew", 404),
    ],
)
def test_a_4xx_is_raised_at_once(fake: Any, code: str, status: int) -> None:
    server, client, sleeps = fake([error_reply(code, "no", status), OK])
    error = error_of(lambda: get(client))
    assert error.response["Error"] == {"Code": code, "Message": "no"}
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert server.count == 1 and sleeps == []


def test_modelled_members_of_an_error_stay_and_binaries_are_bytes(fake: Any) -> None:
    body = {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]",
        "CancellationReasons": [
            {"Code": "None"},
            {
                "Code": "ConditionalCheckFailed",
                "Message": "The conditional request failed",
                "Item": {"B": {"B": base64.b64encode(b"\x00").decode()}, "s": {"S": "AAAA"}},
            },
        ],
    }
    server, client, _ = fake([json_reply(body, 400)])
    error = error_of(lambda: client.transact_write_items(TransactItems=[]))
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    assert error.response["Error"]["Message"].startswith("Transaction cancelled")
    reasons = error.response["CancellationReasons"]
    assert reasons[1]["Item"] == {"B": {"B": b"\x00"}, "s": {"S": "AAAA"}}
    assert reasons[0] == {"Code": "None"}
    assert server.count == 1


def test_a_wrong_crc32_is_retried_and_then_raised(fake: Any) -> None:
    server, client, sleeps = fake([json_reply({"Item": {}}, crc32="12345"), OK])
    answer = get(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1 and server.count == 2 and len(sleeps) == 1
    server, client, sleeps = fake([json_reply({"Item": {}}, crc32="1")])
    with pytest.raises(ChecksumError):
        get(client)
    assert server.count == 3 and len(sleeps) == 2
    # a crc32 of an error answer is checked too: a corrupted throttle is retried as well
    server, client, _ = fake([Reply(400, b'{"__type":"x#ConditionalCheckFailedException"}', crc32="7"), OK])
    assert get(client)["ResponseMetadata"]["RetryAttempts"] == 1


def test_no_crc32_header_is_accepted(fake: Any) -> None:
    _, client, _ = fake([Reply(200, OK.body, crc32=False)])
    assert get(client)["Item"]["b"] == {"B": b"\x00ok"}


def test_a_server_that_never_answers_is_bounded_and_its_connection_dropped(fake: Any) -> None:
    server, client, sleeps = fake([Hang(), OK], timeout_s=1.0)
    started = time.monotonic()
    answer = get(client)
    elapsed = time.monotonic() - started
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert server.count == 2
    assert server.connection_of(0) != server.connection_of(1)  # the hung one is not reused
    assert 0.9 <= elapsed < 20
    assert len(sleeps) == 1
    # every attempt hangs: ReadTimeoutError after the attempts, each on its own connection
    server, client, sleeps = fake([Hang()], timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        get(client)
    elapsed = time.monotonic() - started
    assert server.count == 3
    assert len({server.connection_of(i) for i in range(3)}) == 3
    assert 2.5 <= elapsed < 30


def test_a_call_ends_at_its_deadline_whatever_its_attempts(fake: Any) -> None:
    """Four attempts of up to 2 s each would take 8 s; the call's deadline ends it at 3 s
    with the timeout (the handlers' 12 s deadline is under their functions' 15 s)."""
    server, client, _ = fake([Hang()], timeout_s=2.0, deadline_s=3.0, max_attempts=4)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        get(client)
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 3.0 + 2.0, elapsed  # + slack for a loaded machine
    # A second attempt gets what is left of the 3 s (none when the backoff would pass it).
    assert 1 <= server.count <= 2


def test_a_connection_closed_mid_answer_is_retried_on_a_new_one(fake: Any) -> None:
    server, client, sleeps = fake([CutOff(), OK])
    answer = get(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert server.count == 2 and server.connection_of(0) != server.connection_of(1)
    server, client, sleeps = fake([CutOff()])
    with pytest.raises(ConnectionClosedError):
        get(client)
    assert server.count == 3 and len(sleeps) == 2


def test_a_kept_alive_connection_is_reused(fake: Any) -> None:
    server, client, _ = fake([OK])
    for _ in range(5):
        assert get(client)["ResponseMetadata"]["RetryAttempts"] == 0
    assert {server.connection_of(i) for i in range(5)} == {0}


def test_a_kept_alive_connection_the_server_closed_between_calls(fake: Any) -> None:
    server, client, sleeps = fake([OK])
    get(client)
    server.close_connections()
    time.sleep(0.3)  # the FIN reaches the client's event loop
    answer = get(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0 and sleeps == []
    assert server.count == 2 and server.connection_of(1) != server.connection_of(0)
    # and without giving the close any time to arrive: still no error, no backoff
    server.close_connections()
    answer = get(client)
    assert answer["Item"]["b"] == {"B": b"\x00ok"}
    assert sleeps == []


def test_an_answer_then_a_close_without_saying_so(fake: Any) -> None:
    server, client, sleeps = fake([Reply(200, OK.body, close_after=True)])
    for _ in range(4):
        assert get(client)["ResponseMetadata"]["RetryAttempts"] == 0
    assert sleeps == []
    server, client, sleeps = fake([Reply(200, OK.body, headers={"Connection": "close"})])
    for _ in range(3):
        assert get(client)["ResponseMetadata"]["RetryAttempts"] == 0
    assert sleeps == [] and len({server.connection_of(i) for i in range(3)}) == 3


def test_a_refused_connection_is_an_endpoint_connection_error_after_the_attempts(fake: Any) -> None:
    server, client, sleeps = fake([OK])
    server.stop()
    started = time.monotonic()
    with pytest.raises(EndpointConnectionError):
        get(client)
    assert len(sleeps) == 2 and time.monotonic() - started < 20


def test_a_non_json_error_answer_keeps_its_status_as_the_code(fake: Any) -> None:
    server, client, sleeps = fake([Reply(400, b"<html>bad request</html>"), OK])
    error = error_of(lambda: get(client))
    assert error.response["Error"]["Code"] == "400"
    assert server.count == 1 and sleeps == []


def test_the_request_botocore_would_send(fake: Any) -> None:
    server, client, _ = fake([OK])
    client.put_item(
        TableName="t", Item={"pk": {"S": "é"}, "b": {"B": b"\x00\xff"}, "m": {"M": {"B": {"BS": [b"\x01"]}}}}
    )
    _, headers, body = server.requests[0]
    assert headers["x-amz-target"] == "DynamoDB_20120810.PutItem"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=local/")
    assert "/us-east-1/dynamodb/aws4_request" in headers["authorization"]
    assert json.loads(body) == {
        "TableName": "t",
        "Item": {"pk": {"S": "é"}, "b": {"B": "AP8="}, "m": {"M": {"B": {"BS": ["AQ=="]}}}},
    }


def test_concurrent_calls_each_get_their_own_connection_and_answer(fake: Any) -> None:
    """Answers tagged with the request they answer: no answer crosses to another caller."""

    bodies = [json_reply({"Item": {"n": {"N": str(i)}}}) for i in range(200)]
    server, client, _ = fake(bodies)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            answer = get(client)
            with lock:
                results.append(answer)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 120
    numbers = sorted(int(answer["Item"]["n"]["N"]) for answer in results)
    assert numbers == list(range(120))  # each answer read once, by one caller
    assert len(server.connections) <= 6


def test_after_a_thaw_every_idle_connection_is_dead_and_one_call_still_succeeds_at_once(fake: Any) -> None:
    """Parallel calls leave several idle connections; the server drops them all (as while
    Lambda froze the environment): the next call neither sleeps nor counts a retry."""
    import concurrent.futures

    server, client, sleeps = fake([OK])
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert all(
            a["ResponseMetadata"]["RetryAttempts"] == 0 for a in pool.map(lambda _: get(client), range(6))
        )
    opened = len(server.connections)
    assert opened >= 2, opened  # several connections idle in the pool
    server.dead_below = opened
    answer = get(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0 and sleeps == [], (
        answer["ResponseMetadata"],
        sleeps,
    )


def test_a_reused_connection_dropped_as_the_request_arrives_is_replaced_at_once(fake: Any) -> None:
    server, client, sleeps = fake([OK, Drop(), OK])
    get(client)
    answer = get(client)  # its request reached the old connection, which closed
    assert answer["Item"]["b"] == {"B": b"\x00ok"}
    assert server.count == 3
    assert server.connection_of(1) == server.connection_of(0) != server.connection_of(2)
    # every connection dropping every request: bounded, a ConnectionClosedError
    server, client, sleeps = fake([OK, Drop()])
    get(client)
    with pytest.raises(ConnectionClosedError):
        get(client)
    assert server.count <= 1 + 4 and len(sleeps) == 2


def test_a_connection_timeout_is_bounded(fake: Any) -> None:
    """A listener whose accept queue is full drops the SYN: the connect times out."""
    sleeps: list[float] = []
    with client_of_a_full_listener(sleep=sleeps.append, connect_timeout_s=0.5, timeout_s=1.0) as client:
        started = time.monotonic()
        with pytest.raises(BotoCoreError):
            get(client)
        assert time.monotonic() - started < 20 and len(sleeps) == client.max_attempts - 1


def test_the_deadline_bounds_the_connect_too() -> None:
    """A connect that would take its 2 s (+1) ends when the call's 1.5 s deadline does."""
    with client_of_a_full_listener(sleep=lambda _: None, connect_timeout_s=2.0, deadline_s=1.5) as client:
        started = time.monotonic()
        with pytest.raises(BotoCoreError):
            get(client)
        assert time.monotonic() - started < 1.5 + 1.0  # + slack for a loaded machine


@contextlib.contextmanager
def client_of_a_full_listener(**options: Any) -> Iterator[JsonClient]:
    """A DynamoDB client of a listener whose accept queue is full: its connects time out."""
    listener, fillers = full_listener()
    client = JsonClient(
        aws_json.DYNAMODB,
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
        identity=aws_json.mc.SigningIdentity(StaticCredentials()),
        **options,
    )
    try:
        yield client
    finally:
        client.close()
        for sock in (listener, *fillers):
            sock.close()


def full_listener() -> tuple[socket.socket, list[socket.socket]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    time.sleep(0.2)
    return listener, fillers


def test_a_session_token_is_sent(fake: Any) -> None:
    server, client, _ = fake([OK])
    client._identity = aws_json.mc.SigningIdentity(TokenCredentials())
    get(client)
    _, headers, _ = server.requests[0]
    assert headers["x-amz-security-token"] == "the-token"
    assert "x-amz-security-token" in headers["authorization"]


class TokenCredentials:
    def get_frozen_credentials(self) -> tuple[str, str, str]:
        return ("AKID", "secret", "the-token")


def test_a_lost_answer_to_a_conditional_put_comes_back_as_its_own_item(table: str, lean: JsonClient) -> None:
    """What the handlers' idempotent writes rely on (faults.SendThenLose on the lean client):
    the write is applied, its answer lost, the retry fails its condition with the item."""
    from tests.support import faults

    lost = faults.LoseResponses(lean, "PutItem")
    key = {"pk": {"S": "lost"}, "sk": {"S": "0"}}
    error = error_of(
        lambda: lean.put_item(
            TableName=table,
            Item={**key, "claim": {"S": "me"}, "b": {"B": b"\x00me"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    )
    assert lost.lost == 1
    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error.response["Item"]["claim"] == {"S": "me"} and error.response["Item"]["b"] == {"B": b"\x00me"}
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 1


# -- defects the attack found, fixed ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"<html>a proxy</html>", b'{"Item":', b'{"Item":{"b":{"B":"abc"}}}', b"\xff\xfe not utf-8"],
    ids=["html", "truncated", "bad-base64", "not-utf8"],
)
def test_a_2xx_body_that_is_not_json_is_a_botocore_error(fake: Any, body: bytes) -> None:
    _, client, _ = fake([Reply(200, body)])
    with pytest.raises(BotoCoreError):
        get(client)


@pytest.mark.parametrize("body", [b"", b"<html>Too Many Requests</html>"], ids=["empty", "html"])
def test_a_bare_429_is_retried_as_botocore_does(fake: Any, body: bytes) -> None:
    _, client, _ = fake([Reply(429, body), OK])
    assert get(client)["ResponseMetadata"]["RetryAttempts"] == 1


def test_an_error_type_with_a_colon_suffix_is_sanitised(fake: Any) -> None:
    _, client, _ = fake(
        [
            json_reply(
                {
                    "__type": "com.amazon.coral.validate#ValidationException:http://internal.amazon.com/",
                    "message": "m",
                },
                400,
            )
        ]
    )
    error = error_of(lambda: get(client))
    assert error.response["Error"]["Code"] == "ValidationException"


def test_a_connect_timeout_is_a_connect_timeout_error() -> None:
    from botocore.exceptions import ConnectTimeoutError

    options = {"connect_timeout_s": 0.5, "timeout_s": 1.0, "max_attempts": 1}
    with (
        client_of_a_full_listener(sleep=lambda _: None, **options) as client,
        pytest.raises(ConnectTimeoutError),
    ):
        get(client)


def test_a_client_can_be_copied_without_recursing() -> None:
    import copy

    client = JsonClient(
        aws_json.DYNAMODB,
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        identity=aws_json.mc.SigningIdentity(StaticCredentials()),
    )
    copy.copy(client)


def test_botocores_client_and_the_json_client_make_as_many_attempts(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.endpoint

    server, lean_client, _ = fake(
        [error_reply("ProvisionedThroughputExceededException")], max_attempts=aws_clients.MAX_ATTEMPTS
    )
    error_of(lambda: get(lean_client))
    lean_attempts = server.count
    assert lean_attempts == aws_clients.MAX_ATTEMPTS

    other = FakeService([error_reply("ProvisionedThroughputExceededException")])
    try:
        for name, value in {
            "AWS_ENDPOINT_URL_DYNAMODB": other.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _: None)
        botocore_client = aws_clients.client("dynamodb")
        error_of(lambda: botocore_client.get_item(TableName="t", Key={"pk": {"S": "a"}}))
        assert other.count == lean_attempts
    finally:
        other.stop()


# -- the other JSON services the handlers call ---------------------------------------------------


def test_ssm_secrets_manager_and_eventbridge_answer_as_botocore(moto: str) -> None:
    name = f"/atk/{uuid.uuid4().hex[:8]}"
    boto3.client("ssm").put_parameter(Name=name, Value="s3cr\u00e9t", Type="SecureString")
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"atk-{uuid.uuid4().hex[:8]}", SecretString="hs256 \U0001f511"
    )
    ssm, secrets, events = (aws_clients.json_client(s) for s in ("ssm", "secretsmanager", "events"))
    try:
        assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "s3cr\u00e9t"
        assert secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"] == "hs256 \U0001f511"
        missing = error_of(lambda: ssm.get_parameter(Name=name + "-missing", WithDecryption=True))
        theirs = error_of(
            lambda: boto3.client("ssm").get_parameter(Name=name + "-missing", WithDecryption=True)
        )
        assert missing.response["Error"]["Code"] == theirs.response["Error"]["Code"] == "ParameterNotFound"
        gone = error_of(
            lambda: secrets.get_secret_value(
                SecretId="arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"
            )
        )
        assert gone.response["Error"]["Code"] == "ResourceNotFoundException"
        entry = {
            "Source": "collab.test",
            "DetailType": "t",
            "Detail": json.dumps({"b": "é"}),
            "EventBusName": "default",
        }
        answer = events.put_events(Entries=[entry])
        assert (
            answer["FailedEntryCount"] == 0
            and len(answer["Entries"]) == 1
            and "EventId" in answer["Entries"][0]
        )
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        for client in (ssm, secrets, events):
            client.close()


def test_a_chunked_answer_is_read_whole_and_its_crc32_checked(fake: Any) -> None:
    server, client, _ = fake([Reply(200, OK.body, chunked=True)])
    for _ in range(3):  # and the connection stays usable after it
        assert get(client)["Item"]["b"] == {"B": b"\x00ok"}
    assert {server.connection_of(i) for i in range(3)} == {0}
    server, client, _ = fake(
        [Reply(200, OK.body, chunked=True, crc32="3"), Reply(200, OK.body, chunked=True)]
    )
    assert get(client)["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_retried_transaction_sends_the_same_body_and_token(fake: Any) -> None:
    """awareness_table passes its own ClientRequestToken; a call without one gets one, the
    same on every retry, as botocore fills it."""
    server, client, _ = fake([Reply(500, b""), OK])
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "b": {"B": b"\x00"}}}}],
        ClientRequestToken="tok-1",
    )
    first, second = server.requests[0][2], server.requests[1][2]
    assert first == second
    assert json.loads(first)["ClientRequestToken"] == "tok-1"
    server, client, _ = fake([Reply(500, b""), OK])
    client.transact_write_items(TransactItems=[])
    first, second = (json.loads(server.requests[n][2]) for n in (0, 1))
    assert first == second and len(first["ClientRequestToken"]) == 36, first


def test_the_clients_the_handlers_build(moto: str) -> None:
    client = aws_clients.json_client("dynamodb")
    try:
        assert client.max_attempts == aws_clients.MAX_ATTEMPTS == 4
        assert client.connect_timeout_s == 2.0 and client.timeout_s == 10.0 and client.deadline_s == 12.0
        assert client.endpoint_url == moto
    finally:
        client.close()
