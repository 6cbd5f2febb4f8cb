"""Authentication of WebSocket connections: token verification (tokens), where keys come
from (keys), configuration (config), the $connect request (handshake) and the authorizer's
decision (authorizer). Later events read its context with collab.caller."""
