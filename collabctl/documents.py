"""`collabctl versions list|create|restore`, `collabctl export` and `collabctl import`: a
scene's content and version history through the stage's HTTP API (docs/http-api.md), so
they work the same against the local stack and AWS. Which URL and token: collabctl/http_api.py.

Stdout carries only the answer (a version id, the text, the table) so that scripts can
use it: `export --text` writes the text's bytes exactly as the API sent them, without a
newline of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collabctl.http_api import COLLAB_TOKEN, DEFAULT_USER, HTTP_URL, MINTED_TTL_SECONDS, HttpApi, connect
from collabctl.target import CommandError

OCTETS = "application/octet-stream"
# API Gateway refuses an HTTP API request over 10 MB; a larger file is not read at all.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
TABLE_COLUMNS = ("ID", "CREATED", "BY", "BYTES", "AUTO", "LABEL")
ACCESS_NOTE = (
    "A token says who you are, not what you may do: its user needs a role in the scene "
    "(`collabctl grant`); collabctl never grants by itself."
)


def register(commands: Any, scene: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
    """Add `versions`, `export` and `import` to collabctl's subcommands."""
    http = argparse.ArgumentParser(add_help=False)
    http.add_argument(
        "--http-url",
        help=f"the stage's HTTP API (on AWS its HttpUrl output); default: ${HTTP_URL}, else the local stack's",
    )
    http.add_argument(
        "--token",
        help=f"a JWT the stage accepts; default: ${COLLAB_TOKEN} (prefer it: argv is visible), else one "
        f"collabctl mints for --user when it has the stage's HS256 secret (the local stack's, or $JWT_SECRET)",
    )
    http.add_argument(
        "--user",
        help=f"whom a minted token is for (valid {MINTED_TTL_SECONDS} s, this scene only); default: {DEFAULT_USER}",
    )

    versions = commands.add_parser(
        "versions", help="list, create or restore a scene's versions", epilog=ACCESS_NOTE
    )
    actions = versions.add_subparsers(required=True, metavar="action")
    listing = actions.add_parser(
        "list", parents=[scene, http, as_json], help="the scene's versions, newest first", epilog=ACCESS_NOTE
    )
    listing.set_defaults(run=run_list)
    create = actions.add_parser(
        "create",
        parents=[scene, http],
        help="save the scene's state now as a version; prints its id (owner, editor)",
        epilog=ACCESS_NOTE,
    )
    create.add_argument("--label", help="a name for it (at most 200 characters)")
    create.set_defaults(run=run_create)
    restore = actions.add_parser(
        "restore",
        parents=[scene, http],
        help="make the scene's content the version's; prints the id of the version saved just before "
        "(owner, editor)",
        epilog=ACCESS_NOTE,
    )
    restore.add_argument("--version", required=True, help="a version id, as `versions list` prints")
    restore.set_defaults(run=run_restore)

    export = commands.add_parser(
        "export",
        parents=[scene, http],
        help="a Y.Text's content to stdout, or the whole scene as a Yjs update file",
        epilog=ACCESS_NOTE,
    )
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--text", metavar="NAME", help="the Y.Text root NAME, to stdout exactly (no newline added)"
    )
    what.add_argument(
        "--out", metavar="FILE", type=Path, help="write the scene as one Yjs update (v1) to FILE"
    )
    export.add_argument("--version", help="export this version instead of the scene now")
    export.set_defaults(run=run_export)

    imported = commands.add_parser(
        "import",
        parents=[scene, http],
        help="apply a Yjs update (v1) file to the scene, as one update (owner, editor)",
        epilog=ACCESS_NOTE,
    )
    imported.add_argument(
        "--file", required=True, type=Path, help="the update, e.g. Y.encodeStateAsUpdate(doc)"
    )
    imported.set_defaults(run=run_import)


def _api(args: argparse.Namespace) -> HttpApi:
    return connect(args.target, args.scene, args.http_url, args.token, args.user)


def run_list(args: argparse.Namespace) -> int:
    answer = _api(args).json("GET", "/versions")
    versions = answer.get("versions") if isinstance(answer, dict) else None
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        raise CommandError(f'GET /versions: expected {{"versions": [...]}}, got {json.dumps(answer)[:200]}')
    if args.json:
        print(json.dumps(versions))
        return 0
    if not versions:
        print(f"{args.scene} has no versions", file=sys.stderr)  # stdout stays empty for scripts
        return 0
    print_table([TABLE_COLUMNS, *(_row(v) for v in versions)])
    return 0


def _row(version: dict[str, Any]) -> tuple[str, ...]:
    fields = ("versionId", "createdAt", "createdBy", "bytes")
    auto = "yes" if version.get("auto") else "no"
    return (*(_cell(version.get(f, "")) for f in fields), auto, _cell(version.get("label", "")))


def _cell(value: Any) -> str:
    # A label is whatever a user typed: a newline or a tab in it must not break the table,
    # and a control character (an escape sequence) must not reach the terminal. The server
    # refuses such labels now; versions saved before, or by another server, may hold them.
    text = " ".join(str(value).split())
    return "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last (the label) is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip())


def run_create(args: argparse.Namespace) -> int:
    body = {"label": args.label} if args.label is not None else {}
    print(_version_id(_api(args).json("POST", "/versions", body), "POST /versions"))
    return 0


def run_restore(args: argparse.Namespace) -> int:
    path = f"/versions/{_quoted(args.version)}/restore"
    print(_version_id(_api(args).json("POST", path), f"POST {path}"))
    return 0


def _version_id(answer: Any, what: str) -> str:
    version_id = answer.get("versionId") if isinstance(answer, dict) else None
    if not isinstance(version_id, str) or not version_id:
        raise CommandError(f"{what}: the answer has no versionId: {json.dumps(answer)[:200]}")
    return version_id


def run_export(args: argparse.Namespace) -> int:
    path = "" if args.version is None else f"/versions/{_quoted(args.version)}"
    api = _api(args)
    if args.text is not None:
        sys.stdout.flush()
        try:
            api.download(path, {"text": args.text}, sys.stdout.buffer)  # the API's UTF-8, byte for byte
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader stopped (`| head`): nothing to report; stdout goes nowhere so that
            # the interpreter's last flush does not fail again (as the Python docs advise).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return 0
    size = download_to_file(api, path, args.out)
    at = "" if args.version is None else f" at version {args.version}"
    print(f"wrote {size} bytes to {args.out}: scene {args.scene}{at} as one Yjs update")
    return 0


def download_to_file(api: HttpApi, path: str, out: Path) -> int:
    """Into a file beside `out`, renamed over it once complete: a refused or broken-off
    download leaves an existing file as it was, and never half a scene."""
    try:
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as partial:
            try:
                size = api.download(path, None, partial)
            except BaseException:
                partial.close()
                os.unlink(partial.name)
                raise
        os.replace(partial.name, out)
    except OSError as error:
        raise CommandError(f"cannot write {out}: {error.strerror or error}") from None
    return size


def run_import(args: argparse.Namespace) -> int:
    update = read_update_file(args.file)
    _api(args).call("POST", "/updates", body=update, content_type=OCTETS)
    print(f"imported {len(update)} bytes into {args.scene}")
    return 0


def read_update_file(path: Path) -> bytes:
    """The file's bytes; one byte over what the API accepts is as far as it is read."""
    try:
        with path.open("rb") as source:
            data = source.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise CommandError(f"{path} is over {MAX_IMPORT_BYTES} bytes, the most an HTTP API request can carry")
    if not data:
        raise CommandError(f"{path} is empty: an update file holds one Yjs update (v1)")
    return data


def _quoted(version_id: str) -> str:
    return quote(version_id, safe="")
