"""The Redis client: a cluster client against ElastiCache Serverless (cluster mode, TLS),
a plain client against a standalone server. Both expose the same commands; multi-key
commands and scripts only ever touch keys of one scene, under its {hash tag}."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster

Cache = redis.Redis | RedisCluster


def connect(url: str, cluster: bool) -> Cache:
    # rediss:// turns TLS on; short timeouts so a failed-over node surfaces as an error,
    # which the callers treat as a cache miss (DynamoDB holds the truth).
    options = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "health_check_interval": 30}
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def scene_key(scene_id: str, part: str) -> str:
    """Every key of a scene shares the {scene} hash tag, so they live in one slot."""
    return f"collab:{{{scene_id}}}:{part}"
