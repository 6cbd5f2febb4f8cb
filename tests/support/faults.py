"""Faults the real services cannot be asked for, on either kind of client the handlers use
(botocore's, through its event hooks; collab.aws_json's, through its `intercept` seam):

- `before_send`: a hook sees each attempt's operation and JSON body before it is sent and
  may raise (a timeout, a Lambda dying there);
- `SendThenLose`: the request really reaches moto's server, then the client is told the
  read timed out, so the client's own retry policy sends it again, as it would in AWS;
- `on_call`: a hook sees each call (once, its retries not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from botocore.exceptions import ReadTimeoutError

from collab.aws_json import Exchange, JsonClient

# (operation, body of the attempt) -> None, or raises
SendHook = Callable[[str, bytes], None]


def before_send(client: Any, hook: SendHook, operation: str | None = None) -> Callable[[], None]:
    """Runs `hook` before every attempt (of `operation` only, if given); returns its removal."""
    if isinstance(client, JsonClient):
        previous = client.intercept

        def intercept(name: str, body: bytes, send: Callable[[], Exchange]) -> Exchange:
            if operation is None or name == operation:
                hook(name, body)
            return previous(name, body, send) if previous is not None else send()

        client.intercept = intercept
        return lambda: setattr(client, "intercept", previous)
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-send.{service}" + (f".{operation}" if operation else "")

    def botocore_hook(request: Any, event_name: str, **_: Any) -> None:
        hook(event_name.rsplit(".", 1)[1], request.body or b"")

    client.meta.events.register(event, botocore_hook)
    return lambda: client.meta.events.unregister(event, botocore_hook)


class SendThenLose:
    """The next `times` attempts of `operation` whose body `matches` are sent and applied,
    then their responses lost; `meanwhile` runs between the applied write and the retry."""

    def __init__(
        self,
        client: Any,
        operation: str,
        matches: Callable[[bytes], bool] = lambda _: True,
        times: int = 1,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self.remaining = times
        self.lost = 0
        self._matches = matches
        self._meanwhile = meanwhile
        if isinstance(client, JsonClient):
            previous = client.intercept

            def intercept(name: str, body: bytes, send: Callable[[], Exchange]) -> Exchange:
                deliver = (lambda: previous(name, body, send)) if previous is not None else send
                if name != operation or not self._due(body):
                    return deliver()
                answer = deliver()
                assert answer.status < 500, answer.body
                self._lose(client.endpoint_url)

            client.intercept = intercept
            return
        from botocore.httpsession import URLLib3Session

        http = URLLib3Session()
        service = client.meta.service_model.service_id.hyphenize()

        def botocore_hook(request: Any, **_: Any) -> Any:
            if not self._due(request.body or b""):
                return None  # botocore sends it as usual
            response = http.send(request)
            assert response.status_code < 500, response.content
            self._lose(request.url)

        client.meta.events.register(f"before-send.{service}.{operation}", botocore_hook)

    def _due(self, body: bytes) -> bool:
        if self.remaining <= 0 or not self._matches(body):
            return False
        self.remaining -= 1
        return True

    def _lose(self, url: str) -> NoReturn:
        self.lost += 1
        if self._meanwhile is not None:
            self._meanwhile()
        raise ReadTimeoutError(endpoint_url=url)


def LoseResponses(client: Any, operation: str, times: int = 1) -> SendThenLose:
    """On `client`, the next `times` calls of `operation` (e.g. "PutItem") are sent, then
    their responses lost. `lost` counts the ones that were."""
    return SendThenLose(client, operation, times=times)


def on_call(client: Any, hook: Callable[[str], None], operation: str | None = None) -> None:
    """Runs `hook(operation)` once per call (of `operation` only, if given)."""
    if isinstance(client, JsonClient):
        call = client.call

        def observed(name: str, params: dict[str, Any]) -> dict[str, Any]:
            if operation is None or name == operation:
                hook(name)
            return call(name, params)

        client.call = observed  # type: ignore[method-assign]
        return
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}" + (f".{operation}" if operation else "")
    client.meta.events.register(event, lambda model, **_: hook(model.name))
