"""A scene's document: accept updates, serve its state, compact it.

Merges and diffs use pycrdt's update-level functions on raw bytes, never a Doc's encoding:
a Doc silently drops updates whose causal parents have not arrived (docs/design.md §5), and
`merge_updates` keeps them.

What a reader serves = Redis content + the whole durable log (+ the DynamoDB snapshot when
Redis does not include it). The log is bounded by compaction, so this stays a few hundred
small updates, and it makes every acknowledged update visible whatever happened to Redis.

A sync is answered the same way without the snapshot's bytes when it can be
(`answer_sync`): the snapshot's Summary (its state vector, pending structs and delete set,
stored beside it in Redis and in its DynamoDB item) stands for it, and the log and the
tail are folded into that summary as they would be into the state. A client that covers
the snapshot's state vector gets exactly what a full load would send it; only a client
that lacks something the snapshot holds (a new joiner, one long offline) needs the load.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from pycrdt import get_state, get_update, merge_updates

from collab.blobs import BlobMissing
from collab.cache import CacheUnavailable
from collab.durable_log import DurableLog, Head, LogEntry, entry_weight, log_weight
from collab.errors import InvalidUpdate
from collab.hot_state import CachedState, CachedSummary, HotState
from collab.state_summary import Summary, fold, summarize
from collab.yjs_format import check_state, read_update

_Cached = TypeVar("_Cached")

logger = logging.getLogger(__name__)

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"

PausePoint = Callable[[str], None]


def _no_pause(point: str) -> None:
    return None


def validate_update(update: bytes) -> bool:
    """True when the update changes something, False when it adds nothing; InvalidUpdate
    when Yjs (JavaScript) or pycrdt cannot decode it (nothing invalid is ever stored)."""
    # First what Yjs (every browser) can read: yrs decodes more than Yjs does (review F1).
    read_update(update)
    try:
        state_vector = get_state(update)
        if state_vector != EMPTY_STATE_VECTOR:
            return True
        # No new structs; a delete set alone is still a change.
        return merge_updates(update) != EMPTY_UPDATE
    except ValueError:
        raise InvalidUpdate("the update cannot be decoded as a Yjs update") from None


@dataclass(frozen=True)
class Appended:
    entry_id: str
    compact_cache: bool
    compact_log: bool


@dataclass(frozen=True)
class Loaded:
    state: bytes
    cached: CachedState | None
    head: Head
    log: list[LogEntry]
    # Log entries merged into `state` from the log itself (not the cache): a refill marks
    # them, so later readers skip them (and a spilled one's S3 GET): HotState's `m:` marks.
    merged_log: tuple[str, ...] = ()

    @cached_property
    def summary(self) -> Summary:
        """Of `state`; one pass over it, computed when first needed."""
        return summarize(self.state)


@dataclass(frozen=True)
class SyncAnswer:
    missing: bytes  # the update of the SyncStep2: what the client lacks
    state_vector: bytes  # the server's SyncStep1: what is stored
    log: list[LogEntry]  # the durable log as read (its weight says if compaction is due)
    loaded: bool  # True when the whole state had to be read (the client lacked some of it)
    # Bytes folded in that a cache compaction would spare the next syncs: the tail when the
    # cache's summary was used; all of them when the cache is up but has no usable summary
    # (its compaction then refills it, marking every entry); 0 without the cache.
    compactable: int


class Documents:
    def __init__(
        self,
        log: DurableLog,
        hot: HotState,
        *,
        cache_tail_limit: int = 200,
        log_tail_limit: int = 500,
        pause: PausePoint = _no_pause,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._log = log
        self._hot = hot
        self._cache_tail_limit = cache_tail_limit
        self._log_tail_limit = log_tail_limit
        self._chance = chance  # uniform in [0, 1); tests pass a seeded one
        # Tests stop a handler at named points to drive races deterministically.
        self._pause = pause

    def append(self, scene_id: str, update: bytes) -> Appended:
        """Durable write first (the acknowledgement), then the cache."""
        self._pause("append:start")
        entry_id = self._log.append(scene_id, update)
        self._pause("append:durable-written")
        try:
            tail_len, appended = self._hot.append(scene_id, entry_id, update)
        except CacheUnavailable as error:
            logger.info("cache append skipped (%s); readers merge the durable log", error)
            # Without the cache's counters the log's weight is unknown here (reading it
            # would cost a Query per update). Each update asks for a compaction with the
            # chance its own weight gives, so one comes about every `log_tail_limit` of
            # weight, and a paste that weighs that much on its own always asks. A stage
            # without a cache relies on this; compaction's CAS makes a needless one harmless.
            due = self._chance() * self._log_tail_limit < entry_weight(len(update))
            return Appended(entry_id, False, due)
        return Appended(entry_id, tail_len > self._cache_tail_limit, appended > self._log_tail_limit)

    def load(self, scene_id: str) -> Loaded:
        """Everything acknowledged so far, merged into one update."""
        log = self._log.read_log(scene_id)  # before the head: see durable_log.py
        self._pause("load:log-read")
        head = self._log.read_head(scene_id)
        return self._load(scene_id, log, head)

    def answer_sync(self, scene_id: str, state_vector: bytes) -> SyncAnswer:
        """What a client with `state_vector` lacks, and the state vector of what is stored
        (the server's SyncStep1: only what the durable log and snapshots hold, since the
        cache holds nothing else). From the snapshot's summary when the client covers it,
        else from the whole state."""
        # The cache may be read before the log: it is trusted only if it includes the
        # snapshot of the head read after the log, whenever it was read (see load).
        cached = self._from_cache(self._hot.read_summary, scene_id)
        self._pause("answer:cache-read")
        log = self._log.read_log(scene_id)  # before the head: see durable_log.py
        self._pause("load:log-read")
        head = self._log.read_head(scene_id)
        based = self._summary_and_updates(scene_id, cached, head, log)
        if based is not None and based[0].covered_by(state_vector):
            base, updates, compactable = based
            folded = fold(base, updates)
            return SyncAnswer(
                missing=folded.answer(state_vector),
                state_vector=folded.summary.state_vector,
                log=log,
                loaded=False,
                compactable=compactable,
            )
        loaded = self._load(scene_id, log, head)
        return SyncAnswer(
            missing=get_update(loaded.state, state_vector),
            state_vector=loaded.summary.state_vector,
            log=log,
            loaded=True,
            compactable=0,
        )

    def _summary_and_updates(
        self, scene_id: str, cached: CachedSummary | None, head: Head, log: list[LogEntry]
    ) -> tuple[Summary, list[bytes], int] | None:
        """A summary of a state that includes snapshot `head`, the updates that, merged
        into it, give everything acknowledged (the reasoning of `_load`, with summaries in
        place of snapshots), and how many of their bytes a cache compaction would spare
        (SyncAnswer.compactable). None when no summary can stand in (then the state is
        read)."""
        tail = cached.tail if cached is not None else {}
        if (
            cached is not None
            and cached.summary is not None
            and cached.base is not None
            and cached.base >= head.version
        ):
            summary: Summary | None = cached.summary
            included = set(tail) | cached.merged
        else:
            # The cache is down, behind DynamoDB or without a summary: the snapshot's own.
            summary = self._log.read_snapshot_summary(scene_id, head)
            included = set(tail)  # the tail's copy is as good as the log's, and local
        if summary is None:
            return None
        updates = list(tail.values())
        for entry in log:
            if entry.entry_id in included:
                continue
            try:
                updates.append(entry.update)
            except BlobMissing:
                return None  # compacted since the log was read: the load sorts that out
        if cached is None or (cached.base is not None and cached.base < head.version):
            # No cache; or one behind DynamoDB, which its compaction leaves behind (the next
            # full load refills it): nothing to gain.
            compactable = 0
        elif cached.summary is not None and cached.base is not None:
            compactable = sum(map(len, tail.values()))
        else:
            compactable = sum(map(len, updates))
        return summary, updates, compactable

    def _load(self, scene_id: str, log: list[LogEntry], head: Head) -> Loaded:
        cached = self._from_cache(self._hot.read, scene_id)
        parts: list[bytes] = []
        if cached is not None and cached.snapshot is not None:
            parts.append(cached.snapshot)
        if cached is None or cached.base is None or cached.base < head.version:
            head, snapshot = self._current_snapshot(scene_id, head)
            if snapshot is not None:
                parts.append(snapshot)
        tail = cached.tail if cached is not None else {}
        parts.extend(tail.values())
        # Only what the cache lacks: a spilled entry costs an S3 GET (LogEntry.update).
        included = set(tail) | (cached.merged if cached is not None else set())
        needed = [entry for entry in log if entry.entry_id not in included]
        self._pause("load:fetch-log")
        complete = True
        merged_log: list[str] = []
        for entry in needed:
            try:
                parts.append(entry.update)
                merged_log.append(entry.entry_id)
            except BlobMissing:
                complete = False
                # Compaction deletes an item before its object: an object missing under a
                # live item was lost by something else. Said loudly, served without.
                if self._log.entry_exists(scene_id, entry.entry_id):
                    logger.error("a log entry's S3 object is missing", extra={"entry": entry.entry_id})
        if not complete:
            # Compacted since the log was read: the head's snapshot holds those entries now.
            head, snapshot = self._current_snapshot(scene_id, head)
            if snapshot is not None:
                parts.append(snapshot)
        state = merge_updates(*parts) if parts else EMPTY_UPDATE
        loaded = Loaded(state, cached, head, log, tuple(merged_log))
        if cached is None or cached.base is None or cached.base < head.version or cached.summary is None:
            # Behind DynamoDB, or without a summary for the next syncs to use.
            self._refill_cache(scene_id, loaded)
        return loaded

    def _current_snapshot(self, scene_id: str, head: Head) -> tuple[Head, bytes | None]:
        # The head may have moved on since it was read; a newer snapshot only adds.
        latest, snapshot = self._log.load_latest(scene_id)
        return (latest if latest.version >= head.version else head), snapshot

    @staticmethod
    def _from_cache(read: Callable[[str], _Cached], scene_id: str) -> _Cached | None:
        """`read(scene_id)` from the cache, or None while it is unavailable."""
        try:
            return read(scene_id)
        except CacheUnavailable as error:
            logger.info("cache read skipped (%s); serving from DynamoDB", error)
            return None

    def _refill_cache(self, scene_id: str, loaded: Loaded) -> None:
        read = loaded.cached or CachedState(None, 0, None, {})
        in_log = {entry.entry_id for entry in loaded.log}
        try:
            self._hot.commit(
                scene_id,
                read,
                loaded.state,
                loaded.head.version,
                summary=loaded.summary,
                include=loaded.merged_log,
                # Marks of entries gone from the log are garbage (a compaction whose cache
                # update failed); dropping a mark never loses anything, it only costs a merge.
                forget=read.merged - in_log,
            )
        except CacheUnavailable as error:
            logger.info("cache refill skipped (%s)", error)

    def compact_cache(self, scene_id: str) -> bool:
        """Merge the Redis tail into the Redis snapshot (compare-and-set on the version)."""
        cached = self._hot.read(scene_id)
        if cached.base is None or cached.summary is None:
            self.load(scene_id)  # refills (with a summary), which is itself a compaction
            return True
        parts = ([cached.snapshot] if cached.snapshot else []) + list(cached.tail.values())
        merged = merge_updates(*parts) if parts else EMPTY_UPDATE
        # The new snapshot's summary from the old one, without another pass over it.
        tail = list(cached.tail.values())
        summary = fold(cached.summary, tail).summary if cached.summary is not None else summarize(merged)
        self._pause("compact-cache:merged")
        return self._hot.commit(scene_id, cached, merged, cached.base, summary=summary)

    def compact_log(self, scene_id: str, lease_seconds: int = 60) -> bool:
        """Fold the durable log into a new DynamoDB snapshot. The lease only keeps
        compactors from duplicating work; the head's compare-and-set and deleting by id
        are what make a late or frozen compactor harmless."""
        owner = uuid.uuid4().hex
        try:
            if not self._hot.take_lease(scene_id, owner, lease_seconds):
                return False
        except CacheUnavailable:
            pass  # no lease without Redis; the CAS still protects the log
        try:
            loaded = self.load(scene_id)
            if not loaded.log:
                return False
            self._pause("compact-log:merged")
            # Nothing Yjs cannot read becomes a snapshot (UnreadableUpdate): the log keeps
            # the entries, and the operator is told (collab.compaction).
            check_state(loaded.state)
            new_head = self._log.commit_snapshot(
                scene_id, loaded.head, loaded.state, loaded.log, loaded.summary
            )
            if new_head is None:
                return False
            self._pause("compact-log:committed")
            self._after_log_compaction(scene_id, loaded, new_head)
            return True
        finally:
            with contextlib.suppress(CacheUnavailable):
                self._hot.release_lease(scene_id, owner)

    def _after_log_compaction(self, scene_id: str, loaded: Loaded, head: Head) -> None:
        try:
            self._hot.log_compacted(scene_id, log_weight(loaded.log))
            if loaded.cached is not None and loaded.cached.base is not None:
                # Our merged state includes the new DynamoDB snapshot: say so, or the next
                # reader reloads it from DynamoDB for nothing. The merged entries left the
                # log, so their marks go.
                forget = [entry.entry_id for entry in loaded.log]
                self._hot.commit(
                    scene_id,
                    loaded.cached,
                    loaded.state,
                    head.version,
                    summary=loaded.summary,
                    forget=forget,
                )
        except CacheUnavailable as error:
            logger.info("cache update after log compaction skipped (%s)", error)
