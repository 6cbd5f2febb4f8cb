"""collabctl against moto (DynamoDB) and a loopback Management API: grant, list, revoke
(closing the user's connections), participants, development tokens the authorizer
accepts, the local stack's state file, and errors that name what they are about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from authtest import SECRET

from collab.auth.config import AuthConfig
from collab.auth.tokens import TokenVerifier
from collab.rooms import Member, Rooms
from collabctl.cli import main
from collabctl.devtoken import mint_dev_token
from collabctl.local_state import STATE_FILE_ENV, write_state
from collabctl.target import AIMING_ENV
from devstack import services

ROOT = Path(__file__).resolve().parents[2]


class ManagementApi:
    """The API Gateway Management API's DELETE @connections/{id} on loopback: 204 for an
    open connection, 410 GoneException for any other, as API Gateway answers."""

    def __init__(self, open_ids: set[str]) -> None:
        self.open_ids = set(open_ids)
        self.deleted: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_DELETE(self) -> None:
                connection_id = urllib.parse.unquote(self.path.rsplit("/@connections/", 1)[1])
                if connection_id in api.open_ids:
                    api.open_ids.remove(connection_id)
                    api.deleted.append(connection_id)
                    self.send_response(204)
                    self.end_headers()
                    return
                body = b'{"message": null}'
                self.send_response(410)
                self.send_header("x-amzn-ErrorType", "GoneException")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/local"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where collabctl looks for the local stack's state in these tests: a file that does
    not exist unless a test writes it (a `make dev` running in this checkout must not
    leak in)."""
    path = tmp_path / "state.json"
    monkeypatch.setenv(STATE_FILE_ENV, str(path))
    monkeypatch.delenv("MANAGEMENT_URL", raising=False)
    return path


@pytest.fixture
def tables(aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in aws_tables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANAGEMENT_ENDPOINT", raising=False)
    return aws_tables


@pytest.fixture
def rooms(tables: dict[str, str]) -> Rooms:
    return Rooms(boto3.client("dynamodb"), tables["CONNECTIONS_TABLE"], 7800)


@pytest.fixture
def management() -> Iterator[ManagementApi]:
    api = ManagementApi({"ada-laptop=", "ada-phone=", "bob-laptop="})
    yield api
    api.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def join(
    rooms: Rooms, connection_id: str, user_id: str, role: str = "editor", now: float | None = None
) -> None:
    rooms.join("scene-1", Member(connection_id, user_id, user_id.title(), role), now=now)


def test_grant_list_and_revoke(tables: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "grant", "--scene", "scene-1", "--user", "ada", "--role", "owner")[1] == (
        "granted owner on scene-1 to ada\n"
    )
    run(capsys, "grant", "--scene", "scene-1", "--user", "bob", "--role", "viewer")
    run(capsys, "grant", "--scene", "scene-1", "--user", "bob", "--role", "editor")  # replaces
    run(capsys, "grant", "--scene", "scene-2", "--user", "cy", "--role", "viewer")
    assert run(capsys, "grants", "--scene", "scene-1") == (0, "ada\towner\nbob\teditor\n", "")
    assert json.loads(run(capsys, "list", "--scene", "scene-1", "--json")[1]) == [
        {"user_id": "ada", "role": "owner"},
        {"user_id": "bob", "role": "editor"},
    ]
    assert run(capsys, "revoke", "--scene", "scene-1", "--user", "bob")[1] == (
        "revoked bob's access to scene-1; bob had no open connections\n"
    )
    assert run(capsys, "revoke", "--scene", "scene-1", "--user", "bob")[1] == (
        "bob had no access to scene-1 and no open connections: nothing changed\n"
    )
    assert run(capsys, "grants", "--scene", "scene-1")[1] == "ada\towner\n"
    assert run(capsys, "grants", "--scene", "scene-9") == (0, "", "nobody has access to scene-9\n")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--scene", "scene-1", "--role", "admin"], "invalid choice: 'admin'"),
        (["--scene", "{scene-1}", "--role", "editor"], "'{scene-1}' is not a scene id"),
        (["--user", " ", "--scene", "scene-1", "--role", "editor"], "a user id must not be empty"),
    ],
)
def test_bad_arguments_are_refused(
    tables: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["grant", "--user", "ada", *argv])
    assert raised.value.code == 2
    assert complaint in capsys.readouterr().err


def test_table_names_from_flags(
    tables: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACCESS_TABLE")
    code, _, err = run(capsys, "grants", "--scene", "scene-1")
    assert code == 1
    assert err.startswith(
        "collabctl: error: required setting ACCESS_TABLE is not set: set ACCESS_TABLE or pass "
        "--access-table, or start the local stack with `make dev`"
    )
    table = tables["ACCESS_TABLE"]
    run(capsys, "grant", "--access-table", table, "--scene", "scene-1", "--user", "ada", "--role", "viewer")
    assert run(capsys, "grants", "--access-table", table, "--scene", "scene-1")[1] == "ada\tviewer\n"
    code, _, err = run(capsys, "grants", "--access-table", "no-such-table", "--scene", "scene-1")
    endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    assert (code, err) == (
        1,
        f"collabctl: error: DynamoDB table no-such-table does not exist at {endpoint} (region "
        "us-east-1): check the table name (flag or environment variable) and the region\n",
    )


def test_no_region_names_the_settings_to_set(
    tables: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # no region from ~/.aws either
    code, _, err = run(capsys, "grants", "--scene", "scene-1")
    assert code == 1
    assert err.startswith("collabctl: error: no AWS region is set: set AWS_REGION (or AWS_DEFAULT_REGION")
    assert "`make dev`" in err


def test_revoke_closes_the_users_open_connections(
    tables: dict[str, str], rooms: Rooms, management: ManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "grant", "--scene", "scene-1", "--user", "ada", "--role", "editor")
    join(rooms, "ada-laptop=", "ada")
    join(rooms, "ada-phone=", "ada")
    join(rooms, "ada-gone=", "ada")  # its socket is gone, $disconnect never came
    join(rooms, "bob-laptop=", "bob")
    code, out, _ = run(
        capsys, "revoke", "--scene", "scene-1", "--user", "ada", "--management-endpoint", management.url
    )
    assert (code, out) == (0, "revoked ada's access to scene-1; closed 2 open connections\n")
    assert sorted(management.deleted) == ["ada-laptop=", "ada-phone="]
    assert management.open_ids == {"bob-laptop="}
    # Connections left open by an earlier revoke that could not close them.
    join(rooms, "bob-laptop=", "bob")
    code, out, _ = run(
        capsys, "revoke", "--scene", "scene-1", "--user", "bob", "--management-endpoint", management.url
    )
    assert (code, out) == (0, "bob had no access to scene-1; closed 1 open connection\n")


def test_revoke_takes_the_endpoint_from_the_environment(
    tables: dict[str, str],
    rooms: Rooms,
    management: ManagementApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    join(rooms, "ada-laptop=", "ada")
    code, _, err = run(capsys, "revoke", "--scene", "scene-1", "--user", "ada")
    assert code == 1 and "MANAGEMENT_ENDPOINT" in err and "--management-endpoint" in err
    assert management.deleted == []
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", management.url)
    assert run(capsys, "revoke", "--scene", "scene-1", "--user", "ada")[0] == 0
    assert management.deleted == ["ada-laptop="]
    # The name `make dev` prints works too.
    join(rooms, "ada-phone=", "ada")
    monkeypatch.delenv("MANAGEMENT_ENDPOINT")
    monkeypatch.setenv("MANAGEMENT_URL", management.url)
    assert run(capsys, "revoke", "--scene", "scene-1", "--user", "ada")[0] == 0
    assert management.deleted == ["ada-laptop=", "ada-phone="]


def test_participants_skip_rows_past_their_ttl(
    tables: dict[str, str], rooms: Rooms, capsys: pytest.CaptureFixture[str]
) -> None:
    join(rooms, "ada-laptop=", "ada", "owner")
    join(rooms, "bob-laptop=", "bob", "viewer")
    join(rooms, "cy-stale=", "cy", now=time.time() - 3 * 3600)  # no $disconnect, TTL passed
    code, out, _ = run(capsys, "participants", "--scene", "scene-1")
    assert code == 0
    assert sorted(out.splitlines()) == ["ada-laptop=\tada\tAda\towner", "bob-laptop=\tbob\tBob\tviewer"]
    listed = json.loads(run(capsys, "participants", "--scene", "scene-1", "--json")[1])
    assert {p["connection_id"] for p in listed} == {"ada-laptop=", "bob-laptop="}
    assert run(capsys, "participants", "--scene", "empty-scene") == (
        0,
        "",
        "nobody is connected to empty-scene\n",
    )
    assert run(capsys, "participants", "--scene", "empty-scene", "--json") == (0, "[]\n", "")


def test_token_is_accepted_by_the_authorizer_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"AUTH_MODE": "hs256", "JWT_SECRET": SECRET, "JWT_ISSUER": "collab-dev", "JWT_AUDIENCE": "collab"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run(
        capsys, "token", "--user", "ada", "--scene", "scene-1", "--name", "Ada L", "--ttl", "120"
    )
    identity = TokenVerifier(AuthConfig.from_env(env)).verify(out.strip())
    assert code == 0
    assert (identity.user_id, identity.user_name, identity.scene_id) == ("ada", "Ada L", "scene-1")
    assert 100 < identity.expires_at - time.time() <= 120


def test_token_needs_a_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    code, _, err = run(capsys, "token", "--user", "ada")
    assert code == 1
    assert err.startswith(
        "collabctl: error: required setting JWT_SECRET is not set: set JWT_SECRET or pass --secret"
    )
    code, _, err = run(capsys, "token", "--user", "ada", "--secret", "short")
    assert code == 1 and "at least 32 bytes" in err


def test_mint_dev_token_for_the_local_stack() -> None:
    token = mint_dev_token(SECRET, "ada", "demo-scene", name="Ada", ttl=60)
    identity = TokenVerifier(AuthConfig.hs256(SECRET)).verify(token)
    assert (identity.user_id, identity.user_name, identity.scene_id) == ("ada", "Ada", "demo-scene")


def test_runs_as_a_module_from_a_checkout() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["JWT_SECRET"] = SECRET
    done = subprocess.run(
        [sys.executable, "-m", "collabctl", "token", "--user", "ada", "--scene", "scene-1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert TokenVerifier(AuthConfig.hs256(SECRET)).verify(done.stdout.strip()).user_id == "ada"


# ------------------------------------------------------------ the local stack's state file


def local_stack_state(tables: dict[str, str], moto: str, management: ManagementApi) -> dict[str, str]:
    """The environment a running `make dev` writes to its state file (devstack/__main__.py
    writes LocalStack.env): moto's endpoints, region, fake credentials, tables, endpoints."""
    return {
        **services.aws_endpoint_env(moto),
        **tables,
        "MANAGEMENT_ENDPOINT": management.url,
        "AUTH_MODE": "hs256",
        "JWT_SECRET": SECRET,
    }


@pytest.fixture
def bare_shell(tables: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell with nothing exported: no tables, no AWS settings, no endpoint."""
    for name in [*AIMING_ENV, *tables, "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"]:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + ["JWT_SECRET"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_a_running_local_stack_needs_nothing_exported(
    tables: dict[str, str],
    moto: str,
    rooms: Rooms,  # made before the shell is emptied
    bare_shell: None,
    management: ManagementApi,
    no_local_stack: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "grants", "--scene", "scene-1")
    assert code == 1 and "start the local stack with `make dev`" in err

    write_state(no_local_stack, local_stack_state(tables, moto, management), {})
    assert run(capsys, "grant", "--scene", "scene-1", "--user", "ada", "--role", "editor")[0] == 0
    assert run(capsys, "grants", "--scene", "scene-1")[1] == "ada\teditor\n"
    join(rooms, "ada-laptop=", "ada")
    code, out, _ = run(capsys, "revoke", "--scene", "scene-1", "--user", "ada")  # no endpoint flag
    assert (code, out) == (0, "revoked ada's access to scene-1; closed 1 open connection\n")
    assert management.deleted == ["ada-laptop="]
    code, out, _ = run(capsys, "token", "--user", "ada", "--scene", "scene-1")
    assert TokenVerifier(AuthConfig.hs256(SECRET)).verify(out.strip()).user_id == "ada"
    # Errors say they are about the local stack, and which table and endpoint.
    code, _, err = run(capsys, "grants", "--scene", "scene-1", "--access-table", "nope")
    assert code == 1
    assert f"table nope does not exist at {moto} (region us-east-1; the local stack of `make dev`" in err


def test_a_shell_aimed_at_aws_ignores_the_local_stack(
    tables: dict[str, str],
    moto: str,
    bare_shell: None,
    management: ManagementApi,
    no_local_stack: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_state(no_local_stack, local_stack_state(tables, moto, management), {})
    monkeypatch.setenv("AWS_PROFILE", "production")  # a profile that does not exist here
    code, _, err = run(capsys, "grants", "--scene", "scene-1")
    assert code == 1 and "required setting ACCESS_TABLE is not set" in err


def test_a_state_file_left_by_a_stopped_stack_is_ignored_and_named(
    tables: dict[str, str],
    moto: str,
    bare_shell: None,
    management: ManagementApi,
    no_local_stack: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs (the stack was killed with -9)
    write_state(no_local_stack, local_stack_state(tables, moto, management), {}, pid=gone.pid)
    code, _, err = run(capsys, "grants", "--scene", "scene-1")
    assert code == 1
    assert f"from one that no longer runs, pid {gone.pid}" in err
