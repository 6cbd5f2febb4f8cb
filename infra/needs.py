"""What each function of routes.json calls, besides logs and traces: the grants the stack
gives it, and nothing more. Plain data (no CDK), so the handler tests can check every AWS
call the handlers really make against it (tests/events).

A function routes.json gains without an entry here fails the synth, so its access is a
decision, not a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

TABLE_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
TABLE_WRITE = (
    *TABLE_READ,
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)

# Large payloads, under the bucket's scenes/ prefix, and saved versions beyond an item,
# under versions/ (the same actions on each prefix); ListBucket makes a missing object a
# 404 (NoSuchKey, which collab.blobs handles) rather than a 403.
BLOB_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
BLOB_BUCKET_ACTIONS = ("s3:ListBucket",)
# POST, GET and DELETE @connections/{id} of the stage.
MANAGE_CONNECTIONS = "execute-api:ManageConnections"
# Change events, on the stage's own bus only.
PUT_EVENTS = "events:PutEvents"
# Reading the HS256 key, wherever it is kept.
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "ssm:GetParameter")


@dataclass(frozen=True)
class Needs:
    """What one function's code calls, besides logs and traces."""

    # Table (tables.json name) -> access level.
    tables: Mapping[str, Literal["read", "write"]] = field(default_factory=dict)
    # Verifies tokens: the auth settings and read access to the JWT secret.
    verifies_tokens: bool = False
    # Reads, writes and deletes large payloads in the bucket.
    blobs: bool = False
    # Posts to, reads and closes connections of this API's stage.
    manages_connections: bool = False
    # ... from events of another API (the HTTP API's): told the stage's endpoint
    # (MANAGEMENT_ENDPOINT), which a WebSocket event names itself.
    needs_management_endpoint: bool = False
    # Saves, reads and restores versions (collab.versions): their payloads beyond an item
    # under the bucket's versions/, and the retention setting.
    versions: bool = False
    # Answers over Lambda's 6 MB response limit, under the bucket's exports/ (collab.http_routes),
    # read back through presigned URLs the function signs.
    exports: bool = False
    # Sends change events (collab.change_events) to the stage's bus.
    publishes_events: bool = False


NEEDS: dict[str, Needs] = {
    # collab.auth: verifies the token, reads the caller's role (collab.access.get_role).
    "authorizer": Needs(tables={"access": "read"}, verifies_tokens=True),
    # collab.admission: records the connection (so revoke finds it), re-reads the role.
    "connect": Needs(tables={"connections": "write", "access": "read"}),
    # collab.session.on_disconnect: leaves the room, tells the others; the last to leave
    # has a version saved (collab.scene_versions.version_on_last_leave: the scene is loaded,
    # the version written to the documents table and S3) and `Version Created` sent.
    "disconnect": Needs(
        tables={"connections": "write", "documents": "write"},
        blobs=True,
        manages_connections=True,
        versions=True,
        publishes_events=True,
    ),
    # collab.session.handle_message: rooms, the durable log and snapshots, fan-out, and
    # the role check of a connection's first sync (collab.access.get_role); automatic
    # versions while a scene is edited, `Scene Changed` and version events.
    "messages": Needs(
        tables={"connections": "write", "documents": "write", "access": "read"},
        blobs=True,
        manages_connections=True,
        versions=True,
        publishes_events=True,
    ),
    # collab.http_routes: verifies the bearer token itself (no API Gateway authorizer),
    # reads the caller's role, reads and writes the scene, saves and restores versions, and
    # broadcasts what it writes to the scene's connections.
    "http": Needs(
        tables={"connections": "write", "documents": "write", "access": "read"},
        verifies_tokens=True,
        blobs=True,
        manages_connections=True,
        needs_management_endpoint=True,
        versions=True,
        exports=True,
        publishes_events=True,
    ),
}


def allowed(function: str) -> set[tuple[str, str | None]]:
    """(IAM action, tables.json table or None) pairs the function is granted."""
    needs = NEEDS[function]
    pairs: set[tuple[str, str | None]] = {
        (action, table)
        for table, level in needs.tables.items()
        for action in (TABLE_WRITE if level == "write" else TABLE_READ)
    }
    if needs.blobs or needs.versions or needs.exports:
        pairs |= {(action, None) for action in (*BLOB_OBJECT_ACTIONS, *BLOB_BUCKET_ACTIONS)}
    if needs.manages_connections:
        pairs.add((MANAGE_CONNECTIONS, None))
    if needs.publishes_events:
        pairs.add((PUT_EVENTS, None))
    if needs.verifies_tokens:
        pairs |= {(action, None) for action in SECRET_ACTIONS}
    return pairs
