"""collab.state_summary against the full computation it stands in for: on random editing
histories of three authors (inserts, deletions, offline stretches, updates stored out of
order or not at all, so that stored states hold pending structs), a summary and the fold
of later updates into it give the same state vector as get_state of the whole merged
state, and the same answer as get_update of it, for every client that covers the base."""

from __future__ import annotations

import random

import pytest
from pycrdt import Doc, Text, get_state, get_update, merge_updates

from collab.state_summary import EMPTY, fold, summarize
from collab.yjs_format import read_state_vector


def history(rng: random.Random, steps: int) -> list[bytes]:
    docs = [Doc(client_id=100 + i) for i in range(3)]
    updates: list[bytes] = []
    for doc in docs:
        doc.observe(lambda event: updates.append(event.update))
    for _ in range(steps):
        doc = rng.choice(docs)
        text = doc.get("t", type=Text)
        if updates and rng.random() < 0.3:  # catches up with the others (not always)
            doc.apply_update(merge_updates(*updates))
        if len(text) > 3 and rng.random() < 0.4:
            position = rng.randrange(len(text) - 1)
            del text[position : position + rng.randint(1, 2)]
        else:
            text.insert(rng.randint(0, len(text)), rng.choice(["a", "bc", "def"]))
    return updates


def text_after(*updates: bytes) -> str:
    doc = Doc()
    doc.apply_update(merge_updates(*updates))
    return str(doc.get("t", type=Text))


def covers(client: bytes, server: bytes) -> bool:
    mine = read_state_vector(client)
    return all(mine.get(k, 0) >= clock for k, clock in read_state_vector(server).items())


def same_result(a: bytes, b: bytes, onto: bytes) -> bool:
    """a and b bring a client holding `onto` to the same document: the same text, state
    vector and deletions. Not the same bytes: merges in another order may pick another
    copy of a deleted struct (one author's with the text, another's with it collected),
    which Yjs integrates alike."""
    left, right = merge_updates(onto, a), merge_updates(onto, b)
    deleted = [_delete_set(x) for x in (left, right)]
    return (
        text_after(left) == text_after(right)
        and get_state(left) == get_state(right)
        and deleted[0] == deleted[1]
    )


def _delete_set(update: bytes) -> bytes:
    # The diff against the update's own vector: its pending structs and its delete set.
    return merge_updates(get_update(update, get_state(update)))


@pytest.mark.parametrize("seed", range(40))
def test_fold_and_answer_equal_the_full_computation(seed: int) -> None:
    rng = random.Random(seed)
    updates = history(rng, rng.randint(5, 40))
    stored = [u for u in updates if rng.random() < 0.9]  # some never arrive: pending structs
    rng.shuffle(stored)
    cut = rng.randint(0, len(stored))
    snapshot = merge_updates(*stored[:cut]) if cut else b"\x00\x00"
    # What a reader folds in: the newer updates and, as the log often does, some the
    # snapshot already holds; sometimes a merged batch (structs overlapping the snapshot's).
    later = stored[cut:] + rng.sample(stored[:cut], min(cut, 3))
    if later and rng.random() < 0.5:
        later.append(merge_updates(*rng.sample(stored, max(1, len(stored) // 2))))
    whole = merge_updates(snapshot, *later)

    base = summarize(snapshot)
    folded = fold(base, later)
    assert folded.summary.state_vector == get_state(whole)
    assert same_result(folded.summary.rest, get_update(whole, get_state(whole)), b"\x00\x00")

    # Clients by what they hold: nothing, everything, the snapshot, random subsets.
    clients = [b"\x00\x00", whole, snapshot]
    for _ in range(6):
        held = [u for u in stored if rng.random() < 0.8]
        clients.append(merge_updates(*held) if held else b"\x00\x00")
    answered = 0
    for client in clients:
        vector = get_state(client)
        expected = get_update(whole, vector)
        if covers(vector, base.state_vector):
            answered += 1
            assert same_result(folded.answer(vector), expected, client)
            assert text_after(client, folded.answer(vector)) == text_after(whole)
        if covers(vector, folded.summary.state_vector):
            assert same_result(folded.summary.answer(vector), expected, client)
    assert answered >= 1  # `whole` covers every base


def test_a_client_with_the_servers_state_vector_still_gets_every_deletion() -> None:
    doc = Doc(client_id=7)
    text = doc.get("t", type=Text)
    text += "INT. KITCHEN - NIGHT"
    client = doc.get_update()  # a client that has the inserts and missed what follows
    before = doc.get_state()
    del text[0:5]
    deletion = doc.get_update(before)
    state = doc.get_update()
    assert get_state(client) == get_state(state)  # a deletion does not move the vector

    summary = summarize(state)
    assert summary.covered_by(get_state(client))
    assert text_after(client, summary.answer(get_state(client))) == "KITCHEN - NIGHT"
    folded = fold(summarize(client), [deletion])
    assert folded.summary.state_vector == get_state(state)
    assert text_after(client, folded.answer(get_state(client))) == "KITCHEN - NIGHT"


def test_a_fold_never_answers_a_client_that_lacks_part_of_its_base() -> None:
    # Its merge holds placeholder structs below the base's vector: they must never be sent.
    doc = Doc(client_id=9)
    doc.get("t", type=Text).insert(0, "FADE IN:")
    folded = fold(summarize(doc.get_update()), [])
    assert not folded.base.covered_by(b"\x00")
    with pytest.raises(ValueError):
        folded.answer(b"\x00")


def test_the_empty_summary_is_the_empty_state() -> None:
    assert summarize(b"\x00\x00") == EMPTY
    doc = Doc(client_id=3)
    doc.get("t", type=Text).insert(0, "hello")
    folded = fold(EMPTY, [doc.get_update()])
    assert folded.summary.state_vector == get_state(doc.get_update())
    assert text_after(folded.answer(b"\x00")) == "hello"
