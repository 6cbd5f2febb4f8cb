"""The collabctl commands of README.md and docs/auth.md, run exactly as written (a shell, the
repository root, nothing exported) against a running local stack, each checked by its
effect (issue 13 item 1).

The stack is the e2e fixture's, announced through a state file as `make dev` announces
its own (devstack/__main__.py writes it with the same function). Every command line of a
`sh`/`console` block that runs `-m collabctl` is run in order. Around them the users act
as real ones would: a user connects (a real WebSocket client, synced) right after being
granted access, and a user whose first command is a revoke had an editor's connection
open, so that `revoke` and a lower `grant` have something to close. A command this file
has no check for fails the test, so a new documented command gets one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collab.access import SceneAccess
from collab.auth.config import AuthConfig
from collab.auth.tokens import TokenVerifier
from collab.rooms import ROLE_RANK
from collabctl.local_state import STATE_FILE_ENV, write_state
from devstack.__main__ import ready_info
from devstack.stack import LocalStack
from tests.e2e.conftest import Scene
from tests.e2e.wsclient import Opener, WsClient, error

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/auth.md"]
# The documented way to run it: the system Python has none of the dependencies.
PROGRAM = ".venv/bin/python"
FENCE = re.compile(r"^\s*```\s*([\w-]*)")
SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
TIMEOUT = 120  # seconds per command: a loaded 2-core machine starts Python slowly


@dataclass
class DocCommand:
    where: str  # file:line, for failure messages
    line: str  # as written, without the console prompt
    argv: list[str]  # collabctl's arguments
    output: list[str] = field(default_factory=list)  # what a console block shows after it

    @property
    def documents_an_error(self) -> bool:
        return bool(self.output) and self.output[0].startswith(("usage:", "collabctl: error:", "collabctl "))

    def option(self, name: str) -> str | None:
        return self.argv[self.argv.index(name) + 1] if name in self.argv else None


def doc_commands(relative: str) -> list[DocCommand]:
    """Every collabctl command line in the file's shell and console blocks, in order."""
    commands: list[DocCommand] = []
    block: str | None = None
    console_output: list[str] | None = None
    for number, text in enumerate((ROOT / relative).read_text().splitlines(), start=1):
        fence = FENCE.match(text)
        if fence:
            block = None if block is not None else (fence.group(1) or "text")
            console_output = None
            continue
        if block not in SHELL_BLOCKS:
            continue
        line = text.strip()
        if block == "console":
            if not line.startswith("$ "):
                if console_output is not None:
                    console_output.append(text)
                continue
            line = line[2:]
        console_output = None
        tokens = shlex.split(line, comments=True)
        if "collabctl" not in tokens:
            continue
        at = tokens.index("collabctl")
        assert tokens[: at + 1] == [PROGRAM, "-m", "collabctl"], (
            f"{relative}:{number}: run collabctl as `{PROGRAM} -m collabctl` (the system Python "
            f"lacks its dependencies): {line}"
        )
        command = DocCommand(f"{relative}:{number}", line, tokens[at + 1 :])
        commands.append(command)
        if block == "console":
            console_output = command.output
    return commands


@pytest.fixture(scope="module")
def state_file(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state file `make dev` would write for this stack."""
    path = tmp_path_factory.mktemp("devstack") / "state.json"
    write_state(path, stack.env, ready_info(stack))
    return path


def shell_env(state_file: Path) -> dict[str, str]:
    """A shell with nothing of the stack exported: only where `make dev`'s state file is (the
    default is the checkout's, which a developer's own `make dev` may be using)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: v for k, v in os.environ.items() if k in keep}, STATE_FILE_ENV: str(state_file)}


class World:
    """The users' side: their grants as the commands left them and their open clients."""

    def __init__(self, stack: LocalStack, state_file: Path) -> None:
        self.stack = stack
        self.env = shell_env(state_file)
        self.access = SceneAccess(stack.env["ACCESS_TABLE"])
        self.openers: dict[str, Opener] = {}
        self.clients: dict[
            tuple[str, str], list[tuple[WsClient, str]]
        ] = {}  # (scene, user) -> (client, role)

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )

    def reset(self, scene_id: str) -> None:
        for grant in self.access.list_grants(scene_id):
            self.access.revoke(scene_id, grant.user_id)

    def connect(self, scene_id: str, user: str, role: str) -> WsClient:
        opener = self.openers.setdefault(scene_id, Opener(Scene(self.stack, scene_id)))
        client = opener(user, role=None)  # the grant is the commands' (or the setup's) own
        connected = client.synced()
        assert connected["role"] == role, f"{user} connected as {connected['role']}, granted {role}"
        self.clients.setdefault((scene_id, user), []).append((client, role))
        return client

    def open_clients(self, scene_id: str, user: str) -> list[tuple[WsClient, str]]:
        return [(c, role) for c, role in self.clients.get((scene_id, user), []) if not c.closed]

    def close(self) -> None:
        for opener in self.openers.values():
            opener.close_all()


@pytest.fixture
def world(stack: LocalStack, state_file: Path) -> Iterator[World]:
    users = World(stack, state_file)
    yield users
    users.close()


@pytest.mark.parametrize("doc", DOCS)
def test_documented_commands_work_as_written(doc: str, world: World) -> None:
    commands = doc_commands(doc)
    assert commands, f"{doc} shows no collabctl command"
    first_seen: dict[tuple[str, str], str] = {}
    for command in commands:
        scene, user = command.option("--scene"), command.option("--user")
        if scene and user:
            first_seen.setdefault((scene, user), command.argv[0])
    for scene in {scene for scene, _ in first_seen}:
        world.reset(scene)
    for (scene, user), first in first_seen.items():
        if first == "revoke":  # someone with access, connected, whose access is taken away
            world.access.grant(scene, user, "editor")
            world.connect(scene, user, "editor")

    for command in commands:
        done = world.run(command.line)
        context = f"{command.where}: {command.line}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        if command.documents_an_error:
            assert done.returncode != 0, context
            # The documented message, but for the ports and the state file's place, which
            # differ from run to run.
            assert same_places(command.output[-1].strip()) in same_places(done.stderr), context
            continue
        assert done.returncode == 0, context
        check = CHECKS.get(command.argv[0])
        assert check is not None, f"{command.where}: no check for `collabctl {command.argv[0]}`: add one"
        check(world, command, done.stdout, context)


def same_places(text: str) -> str:
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return re.sub(r"from \S+state\.json", "from STATE_FILE", text)


# ------------------------------------------------------------------------ the checks


def check_grant(world: World, command: DocCommand, stdout: str, context: str) -> None:
    scene, user, role = command.option("--scene"), command.option("--user"), command.option("--role")
    assert scene and user and role, context
    assert world.access.get_role(scene, user) == role, context
    listed = world.run(f"{PROGRAM} -m collabctl grants --scene {shlex.quote(scene)}")
    assert f"{user}\t{role}" in listed.stdout.splitlines(), f"{context}\ngrants: {listed.stdout}"
    # Connections opened with a higher role are closed; the others stay open.
    for client, had in world.open_clients(scene, user):
        if ROLE_RANK[had] > ROLE_RANK[role]:
            assert client.wait_closed() == 1000, context
        else:
            client.ping()
    world.connect(scene, user, role)  # the user (re)opens the scene


def check_revoke(world: World, command: DocCommand, stdout: str, context: str) -> None:
    scene, user = command.option("--scene"), command.option("--user")
    assert scene and user, context
    assert world.access.get_role(scene, user) is None, context
    open_before = world.open_clients(scene, user)
    for client, _ in open_before:
        assert client.wait_closed() == 1000, context  # closed by the server, not left open
    if open_before:
        count = len(open_before)
        assert f"closed {count} open connection" in stdout, context


def check_grants(world: World, command: DocCommand, stdout: str, context: str) -> None:
    scene = command.option("--scene")
    assert scene, context
    grants = {g.user_id: g.role for g in world.access.list_grants(scene)}
    if "--json" in command.argv:
        assert {g["user_id"]: g["role"] for g in json.loads(stdout)} == grants, context
    else:
        assert dict(line.split("\t") for line in stdout.splitlines()) == grants, context
    if command.output:  # a console block shows what it printed: it must be what it prints
        assert stdout.splitlines() == [line.rstrip() for line in command.output], context


def check_participants(world: World, command: DocCommand, stdout: str, context: str) -> None:
    scene = command.option("--scene")
    assert scene, context
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in stdout.splitlines()}
    for (client_scene, user), clients in world.clients.items():
        for client, role in clients:
            if client_scene == scene and not client.closed:
                assert rows.get(client.connection_id or "", [None])[0] == user, context
                assert rows[client.connection_id or ""][2] == role, context


def check_token(world: World, command: DocCommand, stdout: str, context: str) -> None:
    user = command.option("--user")
    assert user, context
    token = stdout.strip()
    identity = TokenVerifier(AuthConfig.hs256(world.stack.jwt_secret)).verify(token)
    assert identity.user_id == user, context
    if command.option("--name"):
        assert identity.user_name == command.option("--name"), context
    scene = command.option("--scene") or identity.scene_id
    assert scene, f"{context}\n(the check needs a scene to connect to)"
    assert identity.scene_id == command.option("--scene"), context
    # The emulator's authorizer admits it, and the handlers know the user by it.
    opener = world.openers.setdefault(scene, Opener(Scene(world.stack, scene)))
    client = opener(user, token=token)
    role = world.access.get_role(scene, user)
    if role is None:
        client.sync()
        client.wait_for(error("forbidden"))
        return
    connected = client.synced()
    assert connected["user"]["userId"] == user and connected["role"] == role, context
    world.clients.setdefault((scene, user), []).append((client, role))  # later commands see it


CHECKS = {
    "grant": check_grant,
    "revoke": check_revoke,
    "grants": check_grants,
    "list": check_grants,
    "participants": check_participants,
    "token": check_token,
}
