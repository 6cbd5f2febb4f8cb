"""The hot state of a scene in Redis: a snapshot plus a bounded tail of recent updates.

Keys (one {scene} hash tag, so scripts stay in one cluster slot):
- `doc`   hash: `snap` (merged update), `ver` (bumped by every commit), `base` (the
          DynamoDB snapshot version the content is known to include), `m:<entry id>` for
          each log entry that `snap` includes (every tail entry a commit merged, and the
          log entries a refill merged), so readers need not merge (or fetch from S3)
          them again; and `sv`, `rest`, `sumver`: the Summary of `snap`
          (collab.state_summary), valid only while `sumver` equals `ver`;
- `tail`  hash: log entry id -> update, appended after the durable write;
- `logn`  the weight of the log appended since the last DynamoDB compaction (when to
          compact the log: durable_log.entry_weight counts entries and bytes);
- `lease` who compacts the log right now (an optimisation; correctness is the CAS).

Redis is a cache of the durable log: it may be flushed, evicted, stale after a failover or
miss an append. Invariants kept here: the content (snap + tail) includes the DynamoDB
snapshot number `base`; every `m:` mark names an entry `snap` includes; `sv`/`rest`
describe exactly the `snap` of version `sumver`. Marks and the summary live in the same
key as `snap` and are written by the same script, so they are flushed, expired and
restored with it; a commit by code that does not write a summary bumps `ver` past
`sumver`, which retires the old summary. Readers add the durable log on top
(documents.py).

redis-py retries a script whose reply was lost (timeouts, cluster re-initialisation), so
every script here gives the same result when it runs twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collab.cache import Cache, scene_key
from collab.durable_log import entry_weight
from collab.state_summary import Summary

MARK = "m:"

# KEYS: tail, logn, doc.  ARGV: entry id, update, ttl seconds, weight.
# The counter moves only when the entry is new to the tail: a re-run counts it once.
_APPEND = """
local n
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  n = redis.call('INCRBY', KEYS[2], ARGV[4])
else
  n = tonumber(redis.call('GET', KEYS[2]) or '0')
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return {redis.call('HLEN', KEYS[1]), n}
"""

# KEYS: doc, tail.
_READ = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: doc, tail.  Everything a sync needs but `snap`: the version, base, summary, the
# names of the marks, and the tail.
_READ_SUMMARY = """
local fields = redis.call('HMGET', KEYS[1], 'ver', 'base', 'sumver', 'sv', 'rest')
local marks = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 2) == 'm:' then marks[#marks + 1] = name end
end
return {fields, marks, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: doc, tail.  ARGV: expected ver, snapshot, base, ttl, sv, rest ('' and '': no
# summary), k, k marks to set, j, j marks to drop, merged tail ids...
# Commits only on the version that was read, and removes exactly the merged ids; a re-run
# finds the version moved and does nothing.
_COMMIT = """
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then return 0 end
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '-1')
local new_base = math.max(base, tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'snap', ARGV[2], 'ver', ver + 1, 'base', new_base)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'sv', ARGV[5], 'rest', ARGV[6], 'sumver', ver + 1)
else
  redis.call('HDEL', KEYS[1], 'sv', 'rest', 'sumver')
end
local i = 7
local set_last = i + tonumber(ARGV[i])
for m = i + 1, set_last do redis.call('HSET', KEYS[1], ARGV[m], '1') end
i = set_last + 1
local drop_last = i + tonumber(ARGV[i])
for m = i + 1, drop_last do redis.call('HDEL', KEYS[1], ARGV[m]) end
for t = drop_last + 1, #ARGV, 500 do
  redis.call('HDEL', KEYS[2], unpack(ARGV, t, math.min(t + 499, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: logn.  ARGV: weight compacted, ttl.
# Never creates the key (a lost counter restarts from nothing), never leaves it negative
# (appends the cache missed, or a flush, make the compacted weight exceed it) or without TTL.
_LOG_COMPACTED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('DECRBY', KEYS[1], ARGV[1])
if n < 0 then
  redis.call('SET', KEYS[1], 0)
  n = 0
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n
"""

# KEYS: lease.  ARGV: owner.  Deletes the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class CachedState:
    snapshot: bytes | None
    version: int  # 0 when the scene is not cached
    base: int | None  # None when unknown: the content cannot be trusted to cover DynamoDB
    tail: dict[str, bytes]
    # Log entries `snapshot` includes (the `m:` marks).
    merged: frozenset[str] = field(default_factory=frozenset)
    # The summary of `snapshot`, when one was stored with it.
    summary: Summary | None = None


@dataclass(frozen=True)
class CachedSummary:
    """The cached state without `snap`: what a sync whose client is up to date needs."""

    version: int
    base: int | None
    summary: Summary | None  # of `snap` (absent: not cached, or written without one)
    tail: dict[str, bytes]
    merged: frozenset[str]

    def as_read(self) -> CachedState:
        """For a commit (compare-and-set on `version`) of a state that includes `snap`."""
        return CachedState(None, self.version, self.base, self.tail, self.merged, self.summary)


class HotState:
    def __init__(self, cache: Cache, ttl_seconds: int = 24 * 3600) -> None:
        self._cache = cache
        self._ttl = ttl_seconds
        self._append = cache.register_script(_APPEND)
        self._read = cache.register_script(_READ)
        self._read_summary = cache.register_script(_READ_SUMMARY)
        self._commit = cache.register_script(_COMMIT)
        self._log_compacted = cache.register_script(_LOG_COMPACTED)
        self._release = cache.register_script(_RELEASE)

    def append(self, scene_id: str, entry_id: str, update: bytes) -> tuple[int, int]:
        """Add an update to the tail; returns (tail length, log weight since log compaction)."""
        keys = [scene_key(scene_id, "tail"), scene_key(scene_id, "logn"), scene_key(scene_id, "doc")]
        args = [entry_id, update, self._ttl, entry_weight(len(update))]
        tail_len, appended = self._append(keys=keys, args=args)
        return int(tail_len), int(appended)

    def read(self, scene_id: str) -> CachedState:
        doc_flat, tail_flat = self._read(keys=[scene_key(scene_id, "doc"), scene_key(scene_id, "tail")])
        doc = dict(zip(doc_flat[::2], doc_flat[1::2], strict=True))
        tail = {k.decode(): bytes(v) for k, v in zip(tail_flat[::2], tail_flat[1::2], strict=True)}
        base = doc.get(b"base")
        version = int(doc.get(b"ver", 0))
        marks = MARK.encode()
        return CachedState(
            snapshot=doc.get(b"snap"),
            version=version,
            base=int(base) if base is not None else None,
            tail=tail,
            merged=frozenset(k[len(marks) :].decode() for k in doc if k.startswith(marks)),
            summary=_summary(version, doc.get(b"sumver"), doc.get(b"sv"), doc.get(b"rest")),
        )

    def read_summary(self, scene_id: str) -> CachedSummary:
        """Like `read`, without transferring `snap` (the bulk of a big scene)."""
        fields, marks, tail_flat = self._read_summary(
            keys=[scene_key(scene_id, "doc"), scene_key(scene_id, "tail")]
        )
        ver, base, sumver, state_vector, rest = fields
        version = int(ver or 0)
        tail = {k.decode(): bytes(v) for k, v in zip(tail_flat[::2], tail_flat[1::2], strict=True)}
        return CachedSummary(
            version=version,
            base=int(base) if base is not None else None,
            summary=_summary(version, sumver, state_vector, rest),
            tail=tail,
            merged=frozenset(m[len(MARK) :].decode() for m in marks),
        )

    def commit(
        self,
        scene_id: str,
        read: CachedState,
        snapshot: bytes,
        base: int,
        *,
        summary: Summary | None = None,
        include: Iterable[str] = (),
        forget: Iterable[str] = (),
    ) -> bool:
        """Replace the snapshot with `snapshot` (which includes everything `read` held and
        the DynamoDB snapshot `base`) and its `summary` (None: none is kept) if nobody
        committed since `read`; drop exactly the tail entries `read` held. Those entries
        and `include` (log entries `snapshot` also holds) get a mark; marks of `forget`
        (entries no longer in the durable log) go."""
        gone = set(forget)
        to_set = sorted(MARK + i for i in (set(read.tail) | set(include)) - gone)
        to_drop = sorted(MARK + i for i in read.merged & gone)
        keys = [scene_key(scene_id, "doc"), scene_key(scene_id, "tail")]
        args: list[bytes | str | int] = [read.version, snapshot, base, self._ttl]
        args += [summary.state_vector, summary.rest] if summary is not None else ["", ""]
        args += [len(to_set), *to_set, len(to_drop), *to_drop, *read.tail]
        return bool(self._commit(keys=keys, args=args))

    def log_compacted(self, scene_id: str, weight: int) -> None:
        """The log lost `weight` (durable_log.log_weight of the entries a compaction merged)."""
        self._log_compacted(keys=[scene_key(scene_id, "logn")], args=[weight, self._ttl])

    def take_lease(self, scene_id: str, owner: str, seconds: int) -> bool:
        return bool(self._cache.set(scene_key(scene_id, "lease"), owner, nx=True, ex=seconds))

    def release_lease(self, scene_id: str, owner: str) -> None:
        self._release(keys=[scene_key(scene_id, "lease")], args=[owner])


def _summary(
    version: int, sumver: bytes | None, state_vector: bytes | None, rest: bytes | None
) -> Summary | None:
    # Only the summary written with the current `snap` describes it (see the docstring).
    if sumver is None or state_vector is None or rest is None or int(sumver) != version:
        return None
    return Summary(bytes(state_vector), bytes(rest))
