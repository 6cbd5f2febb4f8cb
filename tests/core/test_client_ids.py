"""Client ids bound to the user who first wrote with them (review M8), against moto's
DynamoDB: a forged id's structs are dropped and the server's merges no longer depend on
their order; honest users lose nothing (reconnects, offline edits, a SyncStep2 carrying
others' structs); a lost put response and a race for one id are decided by the table."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from pycrdt import Doc, Text, merge_updates

from collab.client_ids import ClientIds
from collab.yjs_format import read_update
from tests.support.faults import LoseResponses, on_call
from tests.support.pause import PausePoints


@pytest.fixture
def dynamodb(aws_tables: dict[str, str]) -> Any:
    # As runtime.py configures it: botocore retries a write whose response was lost.
    return boto3.client(
        "dynamodb", region_name="us-east-1", config=Config(retries={"max_attempts": 3, "mode": "standard"})
    )


@pytest.fixture
def table(aws_tables: dict[str, str]) -> str:
    return aws_tables["DOCUMENTS_TABLE"]


@pytest.fixture
def scene() -> str:
    return f"scene-{uuid.uuid4().hex[:8]}"


class Calls:
    """Counts the DynamoDB operations a client makes."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        on_call(client, self.names.append)


def edits(text: str, client_id: int, base: bytes = b"") -> bytes:
    doc: Doc = Doc(client_id=client_id)
    if base:
        doc.apply_update(base)
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update(before)


def text_of(*updates: bytes) -> str:
    doc: Doc = Doc()
    doc.apply_update(merge_updates(*updates))
    return str(doc.get("t", type=Text))


def clients_in(update: bytes) -> list[int]:
    return [group.client for group in read_update(update).groups]


def test_a_forged_client_id_is_dropped_and_merges_stop_depending_on_order(
    dynamodb: Any, table: str, scene: str
) -> None:
    ids = ClientIds(dynamodb, table)
    ada = edits("abc", client_id=5)
    assert ids.filter_foreign(scene, "ada", ada) is ada  # first writer: bound, unchanged
    forged = edits("xyz", client_id=5)  # bob reuses ada's (client, clock) range
    # What the review measured without the binding: the merge order decides the content.
    assert text_of(ada, forged) != text_of(forged, ada)
    assert read_update(ids.filter_foreign(scene, "bob", forged)).groups == ()
    item = dynamodb.get_item(TableName=table, Key={"sceneId": {"S": scene}, "sk": {"S": "client#5"}})["Item"]
    assert item["userId"]["S"] == "ada"


def test_an_update_mixing_own_and_foreign_groups_keeps_its_own_and_the_deletes(
    dynamodb: Any, table: str, scene: str
) -> None:
    ids = ClientIds(dynamodb, table)
    ada = edits("hello", client_id=5)
    ids.filter_foreign(scene, "ada", ada)
    # Bob's doc holds ada's text, adds his own and deletes a character of hers.
    doc: Doc = Doc(client_id=9)
    doc.apply_update(ada)
    text = doc.get("t", type=Text)
    text.insert(5, " world")
    del text[0:1]
    bobs = merge_updates(doc.get_update(), edits("!", client_id=5, base=b""))  # plus a forged group
    assert sorted(clients_in(bobs)) == [5, 9]
    kept = ids.filter_foreign(scene, "bob", bobs)
    assert clients_in(kept) == [9]
    assert read_update(kept).delete_ranges == read_update(bobs).delete_ranges
    assert text_of(ada, kept) == "ello world"


def test_reconnects_and_offline_edits_keep_their_client_id_in_a_cold_environment(
    dynamodb: Any, table: str, scene: str
) -> None:
    first = ClientIds(dynamodb, table)
    online = edits("typed online ", client_id=5)
    first.filter_foreign(scene, "ada", online)
    # Offline, then a new connection to another (cold) environment: same id, same user.
    offline = edits("typed offline ", client_id=5, base=online)
    calls = Calls(dynamodb)
    cold = ClientIds(dynamodb, table)
    assert cold.filter_foreign(scene, "ada", offline) is offline
    assert calls.names == ["BatchGetItem"]  # read, not rebound
    # Bound once, cached for good: the next update costs no DynamoDB call.
    assert cold.filter_foreign(scene, "ada", edits("more", client_id=5, base=merge_updates(online, offline)))
    assert calls.names == ["BatchGetItem"]


def test_a_sync_step2_carrying_other_users_structs_loses_nothing(
    dynamodb: Any, table: str, scene: str
) -> None:
    ids = ClientIds(dynamodb, table)
    ada = edits("from ada ", client_id=5)
    ids.filter_foreign(scene, "ada", ada)  # stored: the server has it
    bob_doc: Doc = Doc(client_id=9)
    bob_doc.apply_update(ada)  # received through the server
    bob_doc.get("t", type=Text).insert(0, "from bob ")
    step2 = bob_doc.get_update()  # bob answers a SyncStep1 of a server that lost nothing
    kept = ids.filter_foreign(scene, "bob", step2)
    assert clients_in(kept) == [9]
    assert text_of(ada, kept) == text_of(step2)  # the server's state equals bob's


def test_a_lost_put_response_is_recognised_as_our_binding(dynamodb: Any, table: str, scene: str) -> None:
    lose = LoseResponses(dynamodb, "PutItem")
    ids = ClientIds(dynamodb, table)
    update = edits("abc", client_id=5)
    assert ids.filter_foreign(scene, "ada", update) is update  # the retry failed its condition
    assert lose.lost == 1
    assert ClientIds(dynamodb, table).owners(scene, [5]) == {5: "ada"}


def test_every_response_lost_fails_the_update_and_the_retry_finds_the_binding(
    dynamodb: Any, table: str, scene: str
) -> None:
    lose = LoseResponses(dynamodb, "PutItem", times=4)  # the first attempt and 3 retries
    ids = ClientIds(dynamodb, table)
    update = edits("abc", client_id=5)
    with pytest.raises(ReadTimeoutError):  # the update is not stored; the client resends it
        ids.filter_foreign(scene, "ada", update)
    assert lose.lost == 4
    assert ids.filter_foreign(scene, "ada", update) is update
    assert ids.filter_foreign(scene, "bob", edits("xyz", client_id=5)) != update


def test_two_users_racing_for_one_new_client_id_one_wins(dynamodb: Any, table: str, scene: str) -> None:
    pause = PausePoints()
    slow = ClientIds(dynamodb, table, pause=pause)
    fast = ClientIds(dynamodb, table)
    ada, bob = edits("abc", client_id=5), edits("xyz", client_id=5)
    pause.arm("bind:read")
    result: dict[str, bytes] = {}
    thread = threading.Thread(target=lambda: result.update(ada=slow.filter_foreign(scene, "ada", ada)))
    thread.start()
    pause.wait_reached("bind:read")  # ada's call read "unbound" and has not put yet
    assert fast.filter_foreign(scene, "bob", bob) is bob  # bob binds it first
    pause.release("bind:read")
    thread.join(timeout=60)
    assert clients_in(result["ada"]) == []  # ada's put failed its condition: bob's id now
    assert slow.owners(scene, [5]) == fast.owners(scene, [5]) == {5: "bob"}


def test_the_cache_is_bounded(dynamodb: Any, table: str, scene: str) -> None:
    ids = ClientIds(dynamodb, table, cache_limit=3)
    for client in range(10, 20):
        ids.filter_foreign(scene, "ada", edits("x", client_id=client))
    calls = Calls(dynamodb)
    assert ids.owners(scene, range(10, 20)) == dict.fromkeys(range(10, 20), "ada")
    assert calls.names == ["BatchGetItem"]  # the evicted ones are read again, in one call


def test_a_frame_naming_thousands_of_new_ids_reads_a_bounded_number_and_defers_the_rest(
    dynamodb: Any, table: str, scene: str
) -> None:
    """Invariant 9: the bindings of at most MAX_IDS_PER_UPDATE ids are read (a BatchGetItem
    per 100) and at most `max_new_ids` bound; the rest of the groups wait for the author's
    next resync. The same update over the HTTP API (no resync follows) is refused."""
    from collab import client_ids as module
    from collab.errors import TooLarge
    from tests.core.test_attack_http_api import fresh_ids

    calls: list[str] = []
    on_call(dynamodb, calls.append)
    ids = ClientIds(dynamodb, table)
    update = fresh_ids(3_000)
    kept = ids.filter_foreign(scene, "ann", update)
    assert len(read_update(kept).groups) == ids.max_new_ids
    assert calls.count("BatchGetItem") == module.MAX_IDS_PER_UPDATE // 100
    assert calls.count("PutItem") == ids.max_new_ids
    with pytest.raises(TooLarge):
        ids.filter_foreign(scene, "ann", update, max_new=module.MAX_IDS_PER_UPDATE)
