"""Identifiers shaped like API Gateway's: connection, request and message ids are 16
characters of base64 ending in '=' (11 random bytes), e.g. "L0SM9cOFvHcCIhw="."""

from __future__ import annotations

import base64
import os


def gateway_id() -> str:
    while True:
        candidate = base64.b64encode(os.urandom(11)).decode("ascii")
        # '+' and '/' are legal base64 but would need escaping in @connections paths;
        # API Gateway's ids are used unescaped in URLs, so keep to the URL-safe subset.
        if "+" not in candidate and "/" not in candidate:
            return candidate
