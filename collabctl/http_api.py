"""The stage's HTTP API (docs/http-api.md) as collabctl calls it: which URL, which token,
and refusals turned into one line the user can act on.

The URL: --http-url, else HTTP_URL, else the running local stack's (the `ready` lines of
its state file, collabctl/local_state.py). On AWS it is the stack's `HttpUrl` output.

The token: --token, else COLLAB_TOKEN, else one minted here for --user (short-lived and
restricted to the scene) when collabctl holds the stage's HS256 secret: the local stack's
when the URL is the local stack's, or JWT_SECRET from the environment (what `collabctl
token` signs with) when AUTH_MODE is unset or hs256. The local stack's secret is never
used for another URL: a token signed with it proves nothing there.

A token only says who the caller is; the access table says what they may do. collabctl
never grants by itself, not even locally: a command that reads a scene must not write an
access row as a side effect, and one that worked only because of such a row locally would
then fail on AWS for a reason the user never saw. A refusal for want of a role names the
`collabctl grant` that fixes it instead.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from collab import settings
from collabctl.devtoken import mint_dev_token
from collabctl.target import CommandError, Target

HTTP_URL = "HTTP_URL"
COLLAB_TOKEN = "COLLAB_TOKEN"
DEFAULT_USER = "collabctl"
MINTED_TTL_SECONDS = 300  # one command's worth: a leaked minted token is soon useless
TIMEOUT_SECONDS = 60  # a cold start of the local stack's function takes a few seconds
# Bounds on what is read from the API.
MAX_ANSWER_BYTES = 1024 * 1024  # JSON: a listing of 100 versions is a few kB
MAX_ERROR_BYTES = 64 * 1024
# A scene or text: over Lambda's 6 MB it comes from S3, so only the stage bounds it; this
# stops a server that never ends its answer.
MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
SHOWN_ERROR_CHARS = 300


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class Credentials:
    token: str
    minted_for: str | None  # the user a minted token is for; None for one the user gave
    secret_from: str = ""  # where a minted token's secret came from, for error messages


@dataclass(frozen=True)
class HttpApi:
    url: str  # without a trailing slash
    credentials: Credentials
    scene_id: str
    target: Target

    def call(
        self,
        method: str,
        path: str = "",
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> bytes:
        """The body of a 2xx answer (at most MAX_ANSWER_BYTES); a CommandError naming the
        status and the API's {code, message} for anything else."""
        with self._open(method, path, query, body, content_type) as read:
            data = read(MAX_ANSWER_BYTES + 1)
        if len(data) > MAX_ANSWER_BYTES:
            raise CommandError(f"{method} {path or '/'}: the answer is over {MAX_ANSWER_BYTES} bytes")
        return data

    def download(self, path: str, query: dict[str, str] | None, sink: Sink) -> int:
        """Copy a GET's answer into `sink` as it arrives (a scene can be far larger than a
        JSON answer); the number of bytes. Over MAX_DOWNLOAD_BYTES is an error."""
        copied = 0
        with self._open("GET", path, query) as read:
            while chunk := read(CHUNK_BYTES):
                copied += len(chunk)
                if copied > MAX_DOWNLOAD_BYTES:
                    raise CommandError(f"GET {path or '/'}: the answer is over {MAX_DOWNLOAD_BYTES} bytes")
                sink.write(chunk)
        return copied

    @contextmanager
    def _open(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Iterator[Callable[[int], bytes]]:
        """A reader of the 2xx answer's body; a CommandError for anything else."""
        url = f"{self.url}/scenes/{urllib.parse.quote(self.scene_id, safe='')}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"user-agent": "collabctl"}
        if content_type:
            headers["content-type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        # Unredirected: an answer too large for Lambda is a 303 to a presigned S3 URL, which
        # must get neither the token nor a second way of authenticating.
        request.add_unredirected_header("Authorization", f"Bearer {self.credentials.token}")
        try:
            answer = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
        except urllib.error.HTTPError as refused:
            with refused:
                raw = refused.read(MAX_ERROR_BYTES)
            raise CommandError(self._refusal(refused.code, raw)) from None
        except TimeoutError:
            raise CommandError(f"{method} {url}: no answer in {TIMEOUT_SECONDS} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise CommandError(f"{method} {url}: no answer in {TIMEOUT_SECONDS} s") from None
            raise CommandError(f"cannot reach {self.url} ({error.reason}){self._reach_hint()}") from None

        def read(size: int) -> bytes:
            # Only the reading: an error writing what was read (a full disk, a closed pipe)
            # is not the answer's.
            try:
                chunk: bytes = answer.read(size)
            except TimeoutError:
                raise CommandError(f"{method} {url}: the answer stopped for {TIMEOUT_SECONDS} s") from None
            except (OSError, http.client.HTTPException) as error:
                raise CommandError(f"{method} {url}: the answer broke off ({error!r})") from None
            return chunk

        with answer:
            yield read

    def json(self, method: str, path: str = "", body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        raw = self.call(method, path, body=data, content_type="application/json" if data else None)
        try:
            return json.loads(raw)
        except ValueError:
            raise CommandError(f"{method} {path or '/'}: the answer is not JSON: {_shown(raw)}") from None

    def _refusal(self, status: int, raw: bytes) -> str:
        """`HTTP 403 forbidden: no access to scene S`, plus what to do when collabctl can tell."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and "code" in body:
            line = f"HTTP {status} {_one_line(body['code'])}: {_one_line(body.get('message', ''))}"
        elif isinstance(body, dict) and "message" in body:  # API Gateway's own refusals
            line = f"HTTP {status}: {_one_line(body['message'])}"
        else:
            line = f"HTTP {status}: {_shown(raw)}"
        return line + self._refusal_hint(status, body)

    def _refusal_hint(self, status: int, body: Any) -> str:
        user = self.credentials.minted_for
        code = body.get("code") if isinstance(body, dict) else None
        if user is not None and status == 403 and code == "forbidden":
            return (
                f" (the token collabctl minted is for user {user}: give it a role with "
                f"`collabctl grant --scene {self.scene_id} --user {user} --role editor`, or pass --user)"
            )
        if user is not None and status == 401 and code == "unauthorized":
            return f" (collabctl minted the token with {self.credentials.secret_from}: is it this stage's?)"
        if user is None and status == 403 and code == "forbidden":
            return " (the token's user needs a role in the scene: `collabctl grant`)"
        return ""

    def _reach_hint(self) -> str:
        local = self.target.local
        if local is not None and self.url == local_http_url(self.target):
            return f": is `make dev` still running? ({local.where})"
        return f": check --http-url / ${HTTP_URL} (on AWS, the stack's HttpUrl output)"


def connect(
    target: Target, scene_id: str, http_url: str | None, token: str | None, user: str | None
) -> HttpApi:
    url = resolve_url(target, http_url)
    return HttpApi(url, resolve_credentials(target, url, scene_id, token, user), scene_id, target)


def local_http_url(target: Target) -> str:
    return target.local.ready.get(HTTP_URL, "").rstrip("/") if target.local is not None else ""


def resolve_url(target: Target, flag: str | None) -> str:
    url = (flag or target.env.get(HTTP_URL) or local_http_url(target)).strip().rstrip("/")
    if not url:
        raise CommandError(
            f"no HTTP API URL: pass --http-url or set {HTTP_URL} (on AWS, the stack's HttpUrl output), "
            f"or {target.local_hint()}"
        )
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"} or not urllib.parse.urlsplit(url).netloc:
        raise CommandError(f"the HTTP API URL {url!r} is not an http:// or https:// URL")
    return url


def resolve_credentials(
    target: Target, url: str, scene_id: str, flag: str | None, user: str | None
) -> Credentials:
    given = flag or target.env.get(COLLAB_TOKEN, "")
    if given:
        if user:
            # The token says who the caller is; --user would be silently ignored.
            raise CommandError(
                f"--user is for a token collabctl mints; drop it or the token (--token / ${COLLAB_TOKEN})"
            )
        return Credentials(given.strip(), None)
    secret, source = _signing_secret(target, url)
    user = user or DEFAULT_USER
    token = mint_dev_token(
        secret,
        user,
        scene_id,
        name=user,
        ttl=MINTED_TTL_SECONDS,
        issuer=target.get(settings.JWT_ISSUER) or None,
        audience=target.get(settings.JWT_AUDIENCE) or None,
    )
    return Credentials(token, user, source)


def _signing_secret(target: Target, url: str) -> tuple[str, str]:
    """The HS256 secret collabctl may mint with for `url`, and where it came from."""
    local = target.local
    local_secret = local.env.get(settings.JWT_SECRET, "") if local is not None else ""
    if local is not None and local_secret and url == local_http_url(target):
        return local_secret, f"the JWT_SECRET of {local.where}"
    secret = target.env.get(settings.JWT_SECRET, "")
    mode = target.env.get(settings.AUTH_MODE, "").strip().lower()
    # target.env holds the local stack's settings under the process's: its secret is no use
    # for another URL.
    if secret and secret != local_secret and mode in {"", "hs256"}:
        return secret, f"${settings.JWT_SECRET}"
    if mode not in {"", "hs256"}:
        why = f"{settings.AUTH_MODE} is {mode}"
    elif local_secret:
        why = f"the local stack's signs only for its own {HTTP_URL}, {local_http_url(target)}"
    else:
        why = f"{settings.JWT_SECRET} is not set"
    raise CommandError(
        f"no token: pass --token or set {COLLAB_TOKEN} (a JWT the stage accepts); collabctl mints one "
        f"only with the stage's HS256 secret ({why})"
    )


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:SHOWN_ERROR_CHARS]


def _shown(raw: bytes) -> str:
    return _one_line(raw.decode("utf-8", "replace")) or "(no body)"
