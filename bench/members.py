"""Room members for the fan-out benchmarks: COUNT real WebSocket clients of one scene,
granted, connected and synced, draining whatever arrives until told to stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any


async def hold_members(
    env: Mapping[str, str],
    ws_url: str,
    jwt_secret: str,
    scene: str,
    count: int,
    ready: Callable[[list[str]], None],
    stopped: Callable[[], bool],
) -> None:
    """Call `ready(connection_ids)` once every member has synced, then drain their sockets
    until `stopped()` (polled every 0.1 s) is true."""
    from websockets.asyncio.client import connect

    from collab import protocol
    from collab.access import SceneAccess
    from collab.settings import Settings
    from collabctl.devtoken import mint_dev_token

    access = SceneAccess(Settings.from_env(env).access_table)
    sync = json.dumps({"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(b"\x00"))})
    sockets, ids = [], []
    for i in range(count):
        user = f"member{i}"
        access.grant(scene, user, "editor")
        token = mint_dev_token(jwt_secret, user, scene, name=user)
        ws = await connect(f"{ws_url}?sceneId={scene}&token={token}", max_size=None)
        await ws.send(sync)
        while (message := json.loads(await ws.recv()))["type"] != "connected":
            pass
        ids.append(message["connectionId"])
        sockets.append(ws)

    async def drain(ws: Any) -> None:
        async for _ in ws:
            pass

    tasks = [asyncio.create_task(drain(ws)) for ws in sockets]
    ready(ids)
    while not stopped():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
