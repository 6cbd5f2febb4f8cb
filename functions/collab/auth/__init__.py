"""Authentication of WebSocket connections: token verification (tokens), where keys come
from (keys), configuration (config), the $connect request (handshake), the authorizer's
decision (authorizer) and the identity later events carry (context)."""
