"""`collabctl versions|export|import` against the real local stack (its HTTP API, the real
http function, moto, Redis), run as a user runs it: a subprocess from the repository root.

Two ways of aiming it, as in use: the running stack found through its state file (what
`make dev` writes; nothing exported, a token minted with the stack's secret), and HTTP_URL
with COLLAB_TOKEN as on AWS (no state file, no secret). Update files are made by Node yjs
and read back with pycrdt, so both ends are real Yjs implementations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pycrdt import Doc, Map, Text

from collab import settings
from collabctl.devtoken import mint_dev_token
from collabctl.local_state import STATE_FILE_ENV, write_state
from collabctl.target import AIMING_ENV
from devstack.__main__ import ready_info
from tests.e2e.conftest import E2E_DIR, Scene

ROOT = Path(__file__).resolve().parents[2]
# What a shell aimed at AWS or at another stack would carry; none of it may leak in.
NOT_INHERITED = {*AIMING_ENV, "HTTP_URL", "COLLAB_TOKEN", settings.JWT_SECRET, settings.AUTH_MODE}

SCRIPT = "INT. KITCHEN \u2013 NIGHT\n\nMARÍA pours coffee. ☕ 🎬\n"  # ends in a newline of its own

# A Node yjs document: a Y.Text with formatting and a Y.Map, as Y.encodeStateAsUpdate.
NODE_WRITER = """
import * as Y from 'yjs'
import { writeFileSync } from 'node:fs'
const [path, text] = process.argv.slice(1)
const doc = new Y.Doc()
doc.getText('script').insert(0, text)
doc.getText('script').format(0, 4, { bold: true })
doc.getMap('meta').set('title', 'Pilot')
writeFileSync(path, Y.encodeStateAsUpdate(doc))
"""


def node_update(path: Path, text: str) -> Path:
    subprocess.run(
        ["node", "--input-type=module", "-e", NODE_WRITER, str(path), text],
        cwd=E2E_DIR,
        check=True,
        timeout=60,
    )
    return path


def pycrdt_update(path: Path, text: str) -> Path:
    """An update that appends `text` to script, from a client of its own."""
    doc: Doc[Any] = Doc()
    doc.get("script", type=Text).insert(0, text)
    path.write_bytes(doc.get_update())
    return path


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in NOT_INHERITED and not k.startswith("AWS_")}


@pytest.fixture
def local(scene: Scene, tmp_path: Path) -> dict[str, str]:
    """The environment of a shell in a checkout running `make dev`: nothing exported, the
    stack announced by its state file."""
    state = tmp_path / "state.json"
    write_state(state, scene.stack.env, ready_info(scene.stack))
    return {**base_env(), STATE_FILE_ENV: str(state)}


def remote(scene: Scene, token: str) -> dict[str, str]:
    """A shell aimed at a deployed stage: its HttpUrl and a token, no secret, no state file."""
    return {**base_env(), STATE_FILE_ENV: "off", "HTTP_URL": scene.stack.http_url, "COLLAB_TOKEN": token}


def collabctl(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "collabctl", *argv]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)


def ok(env: dict[str, str], *argv: str) -> bytes:
    done = collabctl(env, *argv)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def refused(env: dict[str, str], *argv: str) -> str:
    """The one line collabctl printed for a refusal (exit status 1, nothing on stdout)."""
    done = collabctl(env, *argv)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("collabctl: error: ")
    return lines[0].removeprefix("collabctl: error: ")


def script_of(env: dict[str, str], at: tuple[str, ...], out: Path) -> str:
    """The script text of the scene (or of a version), exported as an update file."""
    ok(env, "export", *at, "--out", str(out))
    return str(decoded(out.read_bytes()).get("script", type=Text))


def decoded(update: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(update)
    return doc


def test_import_a_yjs_file_and_export_the_scene(scene: Scene, local: dict[str, str], tmp_path: Path) -> None:
    scene.grant("writer", "editor")
    at = ("--scene", scene.scene_id, "--user", "writer")
    draft = node_update(tmp_path / "draft.ydoc", SCRIPT)
    assert ok(local, "import", *at, "--file", str(draft)).decode() == (
        f"imported {draft.stat().st_size} bytes into {scene.scene_id}\n"
    )
    out = tmp_path / "scene.ydoc"
    said = ok(local, "export", *at, "--out", str(out)).decode()
    assert said == f"wrote {out.stat().st_size} bytes to {out}: scene {scene.scene_id} as one Yjs update\n"
    doc = decoded(out.read_bytes())
    assert str(doc.get("script", type=Text)) == SCRIPT
    assert doc.get("meta", type=Map).to_py() == {"title": "Pilot"}
    # A refused export leaves the file as it was.
    assert refused(local, "export", "--scene", scene.scene_id, "--user", "zed", "--out", str(out))
    assert str(decoded(out.read_bytes()).get("script", type=Text)) == SCRIPT
    assert {p.name for p in tmp_path.iterdir()} == {"state.json", draft.name, out.name}  # no partial file


def test_export_text_is_the_text_exactly(scene: Scene, local: dict[str, str], tmp_path: Path) -> None:
    scene.grant("writer", "editor")
    at = ("--scene", scene.scene_id, "--user", "writer")
    ok(local, "import", *at, "--file", str(node_update(tmp_path / "draft.ydoc", SCRIPT)))
    version = ok(local, "versions", "create", *at).decode().strip()
    ok(local, "import", *at, "--file", str(pycrdt_update(tmp_path / "more.ydoc", "COLD OPEN\n")))
    # Byte for byte: the text's own trailing newline, and nothing added.
    assert ok(local, "export", *at, "--version", version, "--text", "script") == SCRIPT.encode()
    now = ok(local, "export", *at, "--text", "script").decode()
    assert sorted(now.splitlines()) == sorted([*SCRIPT.splitlines(), "COLD OPEN"])
    assert refused(local, "export", *at, "--text", "no-such-root") == (
        "HTTP 404 not_found: the scene has no text named 'no-such-root'"
    )


def test_versions_create_list_and_export_a_version(
    scene: Scene, local: dict[str, str], tmp_path: Path
) -> None:
    scene.grant("writer", "editor")
    at = ("--scene", scene.scene_id, "--user", "writer")
    assert ok(local, "versions", "list", *at, "--json") == b"[]\n"
    listing = collabctl(local, "versions", "list", *at)
    assert (listing.returncode, listing.stdout) == (0, b"")
    assert listing.stderr.decode() == f"{scene.scene_id} has no versions\n"

    ok(local, "import", *at, "--file", str(node_update(tmp_path / "draft.ydoc", SCRIPT)))
    table_read = ok(local, "versions", "create", *at, "--label", "table read").decode().strip()
    ok(local, "import", *at, "--file", str(pycrdt_update(tmp_path / "more.ydoc", "COLD OPEN\n")))
    unlabelled = ok(local, "versions", "create", *at).decode().strip()

    versions = json.loads(ok(local, "versions", "list", *at, "--json"))
    assert [(v["versionId"], v["label"], v["createdBy"], v["auto"]) for v in versions] == [
        (unlabelled, "", "writer", False),
        (table_read, "table read", "writer", False),
    ]
    header, *rows = ok(local, "versions", "list", *at).decode().splitlines()
    assert header.split() == ["ID", "CREATED", "BY", "BYTES", "AUTO", "LABEL"]
    assert rows[0].split() == [
        unlabelled,
        versions[0]["createdAt"],
        "writer",
        str(versions[0]["bytes"]),
        "no",
    ]
    assert rows[1].split() == [
        table_read,
        versions[1]["createdAt"],
        "writer",
        str(versions[1]["bytes"]),
        "no",
        "table",
        "read",
    ]

    # The version, not the scene now.
    old = tmp_path / "table-read.ydoc"
    ok(local, "export", *at, "--version", table_read, "--out", str(old))
    assert str(decoded(old.read_bytes()).get("script", type=Text)) == SCRIPT
    assert refused(local, "export", *at, "--version", "1700000000000-deadbeef", "--out", str(old)) == (
        f"HTTP 404 not_found: scene {scene.scene_id} has no version 1700000000000-deadbeef"
    )


def test_restore_brings_the_version_back_and_keeps_the_state_before(
    scene: Scene, local: dict[str, str], tmp_path: Path
) -> None:
    scene.grant("writer", "editor")
    at = ("--scene", scene.scene_id, "--user", "writer")
    ok(local, "import", *at, "--file", str(node_update(tmp_path / "draft.ydoc", SCRIPT)))
    table_read = ok(local, "versions", "create", *at, "--label", "table read").decode().strip()
    ok(local, "import", *at, "--file", str(pycrdt_update(tmp_path / "more.ydoc", "COLD OPEN\n")))
    edited = script_of(local, at, tmp_path / "edited.ydoc")
    assert "COLD OPEN" in edited

    saved = ok(local, "versions", "restore", *at, "--version", table_read).decode().strip()
    assert script_of(local, at, tmp_path / "restored.ydoc") == SCRIPT
    versions = json.loads(ok(local, "versions", "list", *at, "--json"))
    assert versions[0]["versionId"] == saved
    assert versions[0]["label"] == "before restore of table read"
    # The restore can itself be undone: the version saved just before holds what was there.
    assert script_of(local, (*at, "--version", saved), tmp_path / "saved.ydoc") == edited


def test_aimed_like_aws_with_http_url_and_a_token(scene: Scene, tmp_path: Path) -> None:
    env = remote(scene, scene.grant("ada", "owner"))
    at = ("--scene", scene.scene_id)
    ok(env, "import", *at, "--file", str(node_update(tmp_path / "draft.ydoc", SCRIPT)))
    assert script_of(env, at, tmp_path / "scene.ydoc") == SCRIPT
    version = ok(env, "versions", "create", *at, "--label", "from afar").decode().strip()
    assert json.loads(ok(env, "versions", "list", *at, "--json"))[0]["versionId"] == version
    # The token says who: a --user beside it would be silently ignored, so it is refused.
    assert refused(env, "versions", "list", *at, "--user", "bob").startswith(
        "--user is for a token collabctl mints"
    )
    # Without a token and without the stage's secret there is nothing to send.
    bare = {k: v for k, v in env.items() if k != "COLLAB_TOKEN"}
    assert refused(bare, "versions", "list", *at) == (
        "no token: pass --token or set COLLAB_TOKEN (a JWT the stage accepts); collabctl mints one "
        "only with the stage's HS256 secret (JWT_SECRET is not set)"
    )
    # With the stage's HS256 secret exported (as for `collabctl token`), one is minted.
    secret = {**bare, settings.JWT_SECRET: scene.stack.jwt_secret}
    assert refused(secret, "versions", "list", *at).startswith("HTTP 403 forbidden: ")
    scene.grant("collabctl", "viewer")
    assert json.loads(ok(secret, "versions", "list", *at, "--json"))[0]["versionId"] == version


def test_a_bad_token_is_refused_in_one_line(scene: Scene, local: dict[str, str], tmp_path: Path) -> None:
    scene.grant("ada", "owner")
    at = ("--scene", scene.scene_id)
    assert refused(local, "versions", "list", *at, "--token", "not-a-jwt") == (
        "HTTP 401 unauthorized: invalid token: malformed token: Not enough segments"
    )
    forged = mint_dev_token("x" * 48, "ada", scene.scene_id)
    assert refused(local, "export", *at, "--text", "script", "--token", forged).startswith(
        "HTTP 401 unauthorized: invalid token: "
    )
    expired = mint_dev_token(scene.stack.jwt_secret, "ada", scene.scene_id, ttl=1, now=int(time.time()) - 60)
    assert refused(local, "versions", "create", *at, "--token", expired) == (
        "HTTP 401 token_expired: the token has expired; get a fresh one"
    )
    other_scene = mint_dev_token(scene.stack.jwt_secret, "ada", "another-scene")
    draft = str(pycrdt_update(tmp_path / "d.ydoc", "x"))
    assert refused(local, "import", *at, "--file", draft, "--token", other_scene) == (
        "HTTP 401 unauthorized: the token was issued for another scene"
    )


def test_no_access_says_which_grant_is_missing(scene: Scene, local: dict[str, str], tmp_path: Path) -> None:
    at = ("--scene", scene.scene_id)
    assert refused(local, "versions", "list", *at, "--user", "zed") == (
        f"HTTP 403 forbidden: no access to scene {scene.scene_id} (the token collabctl minted is for user "
        f"zed: give it a role with `collabctl grant --scene {scene.scene_id} --user zed --role editor`, "
        "or pass --user)"
    )
    # The default user has no role either: collabctl grants nothing by itself.
    assert refused(local, "export", *at, "--text", "script").startswith(
        f"HTTP 403 forbidden: no access to scene {scene.scene_id} (the token collabctl minted is for user collabctl:"
    )
    draft = str(node_update(tmp_path / "draft.ydoc", SCRIPT))
    scene.grant("vic", "viewer")
    assert refused(local, "import", *at, "--user", "vic", "--file", draft).startswith(
        "HTTP 403 forbidden: a viewer cannot change the scene"
    )
    assert refused(local, "versions", "create", *at, "--user", "vic").startswith(
        "HTTP 403 forbidden: a viewer cannot change the scene"
    )
    # A token the user brought: the hint cannot name its user.
    vic = remote(scene, scene.token("vic"))
    assert refused(vic, "import", *at, "--file", draft) == (
        "HTTP 403 forbidden: a viewer cannot change the scene (the token's user needs a role in the scene: "
        "`collabctl grant`)"
    )


def test_bad_files_and_urls_are_refused_before_sending(
    scene: Scene, local: dict[str, str], tmp_path: Path
) -> None:
    scene.grant("collabctl", "editor")
    at = ("--scene", scene.scene_id)
    missing = tmp_path / "missing.ydoc"
    assert refused(local, "import", *at, "--file", str(missing)) == (
        f"cannot read {missing}: No such file or directory"
    )
    empty = tmp_path / "empty.ydoc"
    empty.write_bytes(b"")
    assert refused(local, "import", *at, "--file", str(empty)) == (
        f"{empty} is empty: an update file holds one Yjs update (v1)"
    )
    huge = tmp_path / "huge.ydoc"
    with huge.open("wb") as out:
        out.truncate(10 * 1024 * 1024 + 1)  # sparse: nothing is written to disk
    assert refused(local, "import", *at, "--file", str(huge)) == (
        f"{huge} is over 10485760 bytes, the most an HTTP API request can carry"
    )
    # Not a Yjs update: the API's own refusal.
    junk = tmp_path / "junk.ydoc"
    junk.write_bytes(b"\xff" * 64)
    assert refused(local, "import", *at, "--file", str(junk)).startswith("HTTP 400 invalid_update: ")
    assert refused(local, "versions", "list", *at, "--http-url", "file:///etc/passwd") == (
        "the HTTP API URL 'file:///etc/passwd' is not an http:// or https:// URL"
    )
    unreachable = {**remote(scene, scene.token("collabctl")), "HTTP_URL": "http://127.0.0.1:9"}
    assert refused(unreachable, "versions", "list", *at).startswith("cannot reach http://127.0.0.1:9 (")


def test_a_scene_over_lambdas_response_limit_comes_through_s3(
    scene: Scene, local: dict[str, str], tmp_path: Path
) -> None:
    """Over 6 MB the API answers 303 with a presigned S3 URL; the export follows it."""
    scene.grant("writer", "editor")
    at = ("--scene", scene.scene_id, "--user", "writer")
    acts = [f"ACT {n}\n" + "x" * (3_500_000 - 6) for n in (1, 2)]  # each under the request limit
    for n, act in enumerate(acts):
        ok(local, "import", *at, "--file", str(pycrdt_update(tmp_path / f"act{n}.ydoc", act)))
    out = tmp_path / "scene.ydoc"
    ok(local, "export", *at, "--out", str(out))
    assert out.stat().st_size > 6 * 1024 * 1024
    assert sorted(str(decoded(out.read_bytes()).get("script", type=Text)).split("ACT ")[1:]) == [
        a.removeprefix("ACT ") for a in acts
    ]


class Redirecting(BaseHTTPRequestHandler):
    """An API that answers as the stage does for a large scene: 303 to a presigned URL
    (here on the same loopback server), and the headers each request came with."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        Redirecting.seen.append((self.path, self.headers.get("authorization")))
        if self.path.startswith("/scenes/"):
            self.send_response(303)
            self.send_header("location", "/exports/s.ydoc?X-Amz-Signature=abc")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = Doc().get_update()
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_token_is_not_sent_on_to_the_presigned_url(scene: Scene, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**remote(scene, "the-token"), "HTTP_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        ok(env, "export", "--scene", "s", "--out", str(tmp_path / "s.ydoc"))
    finally:
        server.shutdown()
        server.server_close()
    assert Redirecting.seen == [
        ("/scenes/s", "Bearer the-token"),
        ("/exports/s.ydoc?X-Amz-Signature=abc", None),
    ]
