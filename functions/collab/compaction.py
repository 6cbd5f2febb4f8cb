"""Compaction runs after the replies and broadcasts, off the latency path."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from collab.observability import logger, metrics
from collab.runtime import Runtime
from collab.yjs_format import UnreadableUpdate


def compact(rt: Runtime, scene_id: str, log: bool) -> None:
    """Fold the cache tail (log=False) or the durable log (log=True). A failure is logged:
    the tail only grows a little until the next attempt."""
    try:
        done = rt.documents.compact_log(scene_id) if log else rt.documents.compact_cache(scene_id)
    except UnreadableUpdate as error:
        # Validation keeps such bytes out, so this is a scene stored before it (or a bug):
        # said loudly and counted (an alarm), never folded into a snapshot.
        logger.error(
            "the scene's stored state is unreadable by Yjs; run `collabctl scene check`",
            extra={"sceneId": scene_id, "client": error.client, "reason": error.message},
        )
        metrics.add_metric(name="UnreadableScenes", unit=MetricUnit.Count, value=1)
        return
    except Exception:
        logger.exception("compaction failed", extra={"log": log})
        return
    if done:
        name = "LogCompactions" if log else "CacheCompactions"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
