"""The hot state of a scene in Redis: a snapshot plus a bounded tail of recent updates.

Keys (one {scene} hash tag, so scripts stay in one cluster slot):
- `doc`   hash: `snap` (merged update), `ver` (bumped by every commit), `base` (the
          DynamoDB snapshot version the content is known to include);
- `tail`  hash: log entry id -> update, appended after the durable write;
- `logn`  appends since the last DynamoDB compaction (when to compact the log);
- `lease` who compacts the log right now (an optimisation; correctness is the CAS).

Redis is a cache of the durable log: it may be flushed, evicted, stale after a failover or
miss an append. Invariant kept here: the content (snap + tail) includes the DynamoDB
snapshot number `base`. Readers add the durable log on top (documents.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from collab.cache import Cache, scene_key

# KEYS: tail, logn, doc.  ARGV: entry id, update, ttl seconds.
_APPEND = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('INCR', KEYS[2])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return {redis.call('HLEN', KEYS[1]), n}
"""

# KEYS: doc, tail.
_READ = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: doc, tail.  ARGV: expected ver, snapshot, base, ttl, merged ids...
# Commits only on the version that was read, and removes exactly the merged ids.
_COMMIT = """
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then return 0 end
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '-1')
local new_base = math.max(base, tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'snap', ARGV[2], 'ver', ver + 1, 'base', new_base)
for i = 5, #ARGV, 500 do
  redis.call('HDEL', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class CachedState:
    snapshot: bytes | None
    version: int  # 0 when the scene is not cached
    base: int | None  # None when unknown: the content cannot be trusted to cover DynamoDB
    tail: dict[str, bytes]


class HotState:
    def __init__(self, cache: Cache, ttl_seconds: int = 24 * 3600) -> None:
        self._cache = cache
        self._ttl = ttl_seconds
        self._append = cache.register_script(_APPEND)
        self._read = cache.register_script(_READ)
        self._commit = cache.register_script(_COMMIT)

    def append(self, scene_id: str, entry_id: str, update: bytes) -> tuple[int, int]:
        """Add an update to the tail; returns (tail length, appends since log compaction)."""
        keys = [scene_key(scene_id, "tail"), scene_key(scene_id, "logn"), scene_key(scene_id, "doc")]
        tail_len, appended = self._append(keys=keys, args=[entry_id, update, self._ttl])
        return int(tail_len), int(appended)

    def read(self, scene_id: str) -> CachedState:
        doc_flat, tail_flat = self._read(keys=[scene_key(scene_id, "doc"), scene_key(scene_id, "tail")])
        doc = dict(zip(doc_flat[::2], doc_flat[1::2], strict=True))
        tail = {k.decode(): bytes(v) for k, v in zip(tail_flat[::2], tail_flat[1::2], strict=True)}
        base = doc.get(b"base")
        return CachedState(
            snapshot=doc.get(b"snap"),
            version=int(doc.get(b"ver", 0)),
            base=int(base) if base is not None else None,
            tail=tail,
        )

    def commit(self, scene_id: str, read: CachedState, snapshot: bytes, base: int) -> bool:
        """Replace the snapshot with `snapshot` (which includes everything `read` held and
        the DynamoDB snapshot `base`) if nobody committed since `read`; drop exactly the
        tail entries `read` held."""
        keys = [scene_key(scene_id, "doc"), scene_key(scene_id, "tail")]
        args: list[bytes | str | int] = [read.version, snapshot, base, self._ttl, *read.tail]
        return bool(self._commit(keys=keys, args=args))

    def log_compacted(self, scene_id: str, merged: int) -> None:
        self._cache.decrby(scene_key(scene_id, "logn"), merged)

    def take_lease(self, scene_id: str, owner: str, seconds: int) -> bool:
        return bool(self._cache.set(scene_key(scene_id, "lease"), owner, nx=True, ex=seconds))

    def release_lease(self, scene_id: str, owner: str) -> None:
        key = scene_key(scene_id, "lease")
        if self._cache.get(key) == owner.encode():
            self._cache.delete(key)
