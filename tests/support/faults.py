"""Faults the real services cannot be asked for: a DynamoDB write that happened but whose
response was lost. The request really reaches moto's server; the client is then told the
read timed out, so botocore's own retry policy sends it again, as it would in AWS."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session


class LoseResponses:
    """On `client`, the next `times` calls of `operation` (e.g. "PutItem") are sent, then
    their responses lost. `lost` counts the ones that were."""

    def __init__(self, client: Any, operation: str, times: int = 1) -> None:
        self.remaining = times
        self.lost = 0
        self._http = URLLib3Session()
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}.{operation}", self._send_then_lose)

    def _send_then_lose(self, request: Any, **_: Any) -> Any:
        if self.remaining <= 0:
            return None  # botocore sends it as usual
        self.remaining -= 1
        response = self._http.send(request)
        assert response.status_code < 500, response.content
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)
