"""The command line: `python -m collabctl {grant,revoke,grants,participants,token,scene,
versions,export,import} ...`.

Where commands go (collabctl/target.py): table names from flags or ACCESS_TABLE /
CONNECTIONS_TABLE, AWS credentials, region and endpoints from boto3's usual chain; with
none of that in the environment, the running `make dev` of this checkout (its state
file, collabctl/local_state.py). `versions`, `export` and `import` go through the stage's
HTTP API instead (collabctl/http_api.py: HTTP_URL, a bearer token).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from collab import settings
from collab.access import ROLES, SceneAccess
from collab.auth.config import InvalidSetting
from collab.auth.handshake import SCENE_ID_PATTERN
from collab.rooms import Rooms
from collab.settings import MissingSetting, Settings
from collabctl.connections import close_user_connections, stale_connections
from collabctl.devtoken import mint_dev_token
from collabctl.documents import register as register_document_commands
from collabctl.scenes import register as register_scene_commands
from collabctl.target import MANAGEMENT_URL, CommandError, Target

DESCRIPTION = (
    "Scene access, participants, development tokens, documents and versions of the collaboration backend."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.target = Target.resolve()
    try:
        return int(args.run(args))
    except (CommandError, MissingSetting, InvalidSetting, ValueError, BotoCoreError, ClientError) as error:
        # A missing setting, no such table, no credentials: the user's to fix, so say
        # which (and where), without a traceback.
        print(f"collabctl: error: {args.target.explain(error)}", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="collabctl", description=DESCRIPTION)
    commands = top.add_subparsers(required=True, metavar="command")

    access = argparse.ArgumentParser(add_help=False)
    access.add_argument("--access-table", help=f"default: ${settings.ACCESS_TABLE}")
    connections = argparse.ArgumentParser(add_help=False)
    connections.add_argument("--connections-table", help=f"default: ${settings.CONNECTIONS_TABLE}")
    scene = argparse.ArgumentParser(add_help=False)
    scene.add_argument("--scene", required=True, type=scene_id, help="scene id")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    management = argparse.ArgumentParser(add_help=False)
    management.add_argument(
        "--management-endpoint",
        help=f"the API's https://{{api}}.execute-api.{{region}}.amazonaws.com/{{stage}}; "
        f"default: ${settings.MANAGEMENT_ENDPOINT} (or ${MANAGEMENT_URL}, as `make dev` prints it), "
        "else the local stack's",
    )

    grant = commands.add_parser(
        "grant",
        parents=[scene, access, connections, management],
        help="give a user a role in a scene; a lower role closes their open connections",
    )
    grant.add_argument("--user", required=True, type=user_id, help="the user id (the token's sub)")
    grant.add_argument("--role", required=True, choices=ROLES)
    grant.set_defaults(run=run_grant)

    revoke = commands.add_parser(
        "revoke",
        parents=[scene, access, connections, management],
        help="remove a user's access to a scene and close their open connections to it",
    )
    revoke.add_argument("--user", required=True, type=user_id, help="the user id (the token's sub)")
    revoke.set_defaults(run=run_revoke)

    grants = commands.add_parser(
        "grants", aliases=["list"], parents=[scene, access, as_json], help="list who has access to a scene"
    )
    grants.set_defaults(run=run_grants)

    participants = commands.add_parser(
        "participants", parents=[scene, connections, as_json], help="list a scene's open connections"
    )
    participants.set_defaults(run=run_participants)

    token = commands.add_parser("token", help="mint an HS256 development token")
    token.add_argument("--user", required=True, type=user_id, help="the user id (the token's sub)")
    token.add_argument("--scene", type=scene_id, help="restrict the token to this scene")
    token.add_argument("--name", help="display name (the name claim)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default: 3600)")
    token.add_argument("--secret", help=f"default: ${settings.JWT_SECRET} (prefer it: argv is visible)")
    token.add_argument("--issuer", help=f"default: ${settings.JWT_ISSUER}")
    token.add_argument("--audience", help=f"default: ${settings.JWT_AUDIENCE}")
    token.set_defaults(run=run_token)

    register_scene_commands(commands, scene, as_json)
    register_document_commands(commands, scene, as_json)
    return top


def scene_id(value: str) -> str:
    # The authorizer refuses any other id: a grant for one could never be used.
    if not SCENE_ID_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a scene id ({SCENE_ID_PATTERN.pattern})")
    return value


def user_id(value: str) -> str:
    # The authorizer refuses a token with an empty sub, and no grant can match one.
    if not value.strip():
        raise argparse.ArgumentTypeError("a user id must not be empty")
    return value


def run_grant(args: argparse.Namespace) -> int:
    _access(args).grant(args.scene, args.user, args.role)
    # A lower role applies at once: connections opened with a higher one are closed.
    closed = _close(args, above=args.role, what=f"granted {args.role}")
    closing = f"; closed {_connections(closed)} opened with a higher role (a reconnect gets {args.role})"
    print(f"granted {args.role} on {args.scene} to {args.user}" + (closing if closed else ""))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    had_access = _access(args).revoke(args.scene, args.user)
    closed = _close(args, above=None, what="access revoked")
    if had_access:
        done = f"revoked {args.user}'s access to {args.scene}; "
        done += f"closed {_connections(closed)}" if closed else f"{args.user} had no open connections"
    elif closed:
        done = f"{args.user} had no access to {args.scene}; closed {_connections(closed)}"
    else:
        done = f"{args.user} had no access to {args.scene} and no open connections: nothing changed"
    print(done)
    return 0


def _connections(count: int) -> str:
    return f"{count} open connection" + ("" if count == 1 else "s")


def _close(args: argparse.Namespace, above: str | None, what: str) -> int:
    """Close the user's connections a revoke (above=None) or a lower role outdates."""
    target: Target = args.target
    if above is not None and not target.get(settings.CONNECTIONS_TABLE, args.connections_table):
        return 0  # a plain grant needs no connections table
    rooms = _rooms(args)
    endpoint = target.management_endpoint(args.management_endpoint)
    if endpoint:
        management = target.client("apigatewaymanagementapi", endpoint_url=endpoint)
        return len(close_user_connections(rooms, args.scene, args.user, management, above=above))
    if stale_connections(rooms, args.scene, args.user, above):
        raise CommandError(
            f"{what}, but {args.user} still has open connections with the old role: set "
            f"{settings.MANAGEMENT_ENDPOINT} (the API's https://{{api}}.execute-api.{{region}}."
            f"amazonaws.com/{{stage}}) or pass --management-endpoint to close them"
        )
    return 0


def run_grants(args: argparse.Namespace) -> int:
    grants = _access(args).list_grants(args.scene)
    _print(grants, args.json, lambda g: [g.user_id, g.role])
    if not grants and not args.json:
        print(f"nobody has access to {args.scene}", file=sys.stderr)
    return 0


def run_participants(args: argparse.Namespace) -> int:
    members = _rooms(args).members(args.scene)
    _print(members, args.json, lambda m: [m.connection_id, m.user_id, m.user_name, m.role or "-"])
    if not members and not args.json:
        # Stdout stays empty for scripts; a person is told that was the answer.
        print(f"nobody is connected to {args.scene}", file=sys.stderr)
    return 0


def run_token(args: argparse.Namespace) -> int:
    target: Target = args.target
    token = mint_dev_token(
        target.required(settings.JWT_SECRET, args.secret, "--secret"),
        args.user,
        args.scene,
        args.name,
        args.ttl,
        issuer=target.get(settings.JWT_ISSUER, args.issuer) or None,
        audience=target.get(settings.JWT_AUDIENCE, args.audience) or None,
    )
    print(token)
    return 0


def _print(records: Sequence[Any], as_json: bool, columns: Callable[[Any], list[str]]) -> None:
    """One JSON array, or one tab-separated line per record."""
    if as_json:
        print(json.dumps([asdict(record) for record in records]))
        return
    for record in records:
        print("\t".join(columns(record)))


def _access(args: argparse.Namespace) -> SceneAccess:
    target: Target = args.target
    table = target.required(settings.ACCESS_TABLE, args.access_table, "--access-table")
    return SceneAccess(table, target.client("dynamodb"))


def _rooms(args: argparse.Namespace) -> Rooms:
    target: Target = args.target
    table = target.required(settings.CONNECTIONS_TABLE, args.connections_table, "--connections-table")
    # Only read here: the TTL matters to joins, which the handlers make.
    return Rooms(target.client("dynamodb"), table, Settings.connection_ttl_seconds)
