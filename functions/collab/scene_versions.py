"""Taking and restoring versions of a scene (issue 12), for the HTTP API and the handlers.

A version is the scene's merged state at one moment (collab.versions stores it). Members of
the scene are told with a `version` server message (`event`: "created" or "restored", and
the version's entry), and the stage's bus gets `Version Created` / `Version Restored`.

A restore never rewrites history: it is one new update, made on the server, that turns the
content of every root type back into the version's (collab.restore), stored and broadcast
like any edit, so connected clients see the restored scene without reloading and what
they type later merges on top. A version of the scene as it was just before is saved
first (automatic, labelled), so a restore can itself be undone.

Automatic versions: at most one every AUTO_INTERVAL_SECONDS while a scene is edited
(`auto_version_if_due`, after an edit's broadcast), and one when its last participant
leaves (`version_on_last_leave`) if anything changed since the newest version.
"""

from __future__ import annotations

import secrets

from aws_lambda_powertools.metrics import MetricUnit

from collab import change_events, protocol
from collab.caller import Caller
from collab.documents import Loaded
from collab.membership import broadcast, recipients
from collab.observability import logger, metrics
from collab.runtime import Runtime
from collab.versions import Version, state_digest
from collab.yjs_format import read_state_vector

BEFORE_RESTORE = "before restore of {}"
MAX_CLIENT_ID = 2**32 - 1  # Yjs draws 32-bit client ids
LAST_LEAVE = "when the last participant left"
WHILE_EDITING = "while editing"


def take_version(
    rt: Runtime, caller: Caller, label: str, *, auto: bool, loaded: Loaded | None = None
) -> Version:
    """Saves the scene as it is now, tells its members and the bus."""
    loaded = loaded or rt.documents.load(caller.scene_id)
    version = rt.versions.create(
        caller.scene_id,
        loaded.state,
        loaded.summary.state_vector,
        label=label,
        created_by=caller.user_id,
        auto=auto,
    )
    metrics.add_metric(name="VersionsCreated", unit=MetricUnit.Count, value=1)
    _tell(rt, caller, "created", version)
    rt.events.put(change_events.VERSION_CREATED, {"sceneId": caller.scene_id, "version": version.public()})
    return version


def restore_version(rt: Runtime, caller: Caller, version_id: str) -> Version:
    """Restores `version_id` (VersionNotFound when there is none); returns the automatic
    version saved just before. Restores of one scene run one after another (the scene's
    restore lease; RestoreBusy past its wait). A restore that cannot be computed
    (CannotRestore, UnloadableState) writes nothing and tells no one."""
    # Imported here: only a restore needs pycrdt's document model (cold starts).
    from collab.restore import restore_update

    target = rt.versions.get(caller.scene_id, version_id)
    version_state = rt.versions.read(caller.scene_id, version_id)
    with rt.versions.restoring(caller.scene_id):
        loaded = rt.documents.load(caller.scene_id)
        client = _unbound_client(rt, caller.scene_id, loaded)
        update = restore_update(loaded.state, version_state, client_id=client)
        before = take_version(
            rt, caller, BEFORE_RESTORE.format(target.label or target.version_id), auto=True, loaded=loaded
        )
        if update:
            # Imported here: collab.actions.update imports this module.
            from collab.actions.update import apply_update

            apply_update(rt, caller, update)
    metrics.add_metric(name="VersionsRestored", unit=MetricUnit.Count, value=1)
    _tell(rt, caller, "restored", target, savedBefore=before.version_id)
    rt.events.put(
        change_events.VERSION_RESTORED,
        {
            "sceneId": caller.scene_id,
            "version": target.public(),
            "savedBefore": before.version_id,
            "restoredBy": caller.user_id,
        },
    )
    return before


def _unbound_client(rt: Runtime, scene_id: str, loaded: Loaded) -> int:
    """A Yjs client id for the restore's update that the scene holds no structs of and that
    is bound to no one (collab.client_ids: awareness binds an id before its owner types;
    the update path would drop the restore's structs under another user's id)."""
    held = set(read_state_vector(loaded.summary.state_vector))
    candidate = secrets.randbelow(MAX_CLIENT_ID) + 1
    for _ in range(64):
        bound = rt.client_ids is not None and rt.client_ids.owners(scene_id, [candidate])
        if candidate not in held and not bound:
            return candidate
        candidate = candidate % MAX_CLIENT_ID + 1  # the next one: a draw that repeats still ends
    raise RuntimeError(f"no free Yjs client id near {candidate} in scene {scene_id}")


def auto_version_if_due(rt: Runtime, caller: Caller) -> None:
    """After an edit: an automatic version when the scene has none from the last interval.
    A failure costs the version only (logged), never the edit already stored."""
    try:
        if rt.versions.claim_auto(caller.scene_id):
            take_version(rt, caller, WHILE_EDITING, auto=True)
    except Exception:
        logger.exception("automatic version failed", extra={"sceneId": caller.scene_id})


def version_on_last_leave(rt: Runtime, caller: Caller) -> None:
    """After a departure: if no one is left and the scene changed since its newest version
    (or has none and is not empty), save one."""
    try:
        if rt.rooms.members(caller.scene_id):
            return
        loaded = rt.documents.load(caller.scene_id)
        if not loaded.state or loaded.summary.state_vector == b"\x00":
            return  # an empty scene
        newest = rt.versions.latest(caller.scene_id)
        if newest is not None and newest.state_digest == state_digest(loaded.summary.state_vector):
            return
        take_version(rt, caller, LAST_LEAVE, auto=True, loaded=loaded)
    except Exception:
        logger.exception("version on last leave failed", extra={"sceneId": caller.scene_id})


def _tell(rt: Runtime, caller: Caller, event: str, version: Version, **fields: str) -> None:
    members = [m.connection_id for m in recipients(rt, caller)]
    if caller.connection_id:
        members.append(caller.connection_id)
    if members:
        text = protocol.server_message("version", event=event, version=version.public(), **fields)
        broadcast(rt, caller, members, text)
