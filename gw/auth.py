"""API keys: ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` -> the caller.

Keys are looked up by their SHA-256 digest, computed at compile time for the
configured keys and once per request for the presented one: the lookup never
compares key bytes, so its timing says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac

from blacksheep import Request

from .config.tables import ApiKey, Auth
from .errors import Unauthorized


def presented_key(request: Request) -> bytes | None:
    raw = request.get_first_header(b"authorization")
    if raw:
        scheme, _, token = raw.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    raw = request.get_first_header(b"x-api-key")
    return raw.strip() if raw else None


def authenticate(auth: Auth, request: Request) -> ApiKey | None:
    """The caller's key record; None when auth is disabled (no keys configured)."""
    if not auth.keys_by_digest:
        return None
    key = presented_key(request)
    if not key:
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
            code="missing_api_key",
        )
    caller = auth.keys_by_digest.get(hashlib.sha256(key).digest())
    if caller is None:
        raise Unauthorized("invalid API key")
    return caller


def is_admin(auth: Auth, request: Request) -> bool:
    """Whether the request carries the admin key (always true when none is set)."""
    if auth.admin_key_digest is None:
        return True
    key = presented_key(request)
    return key is not None and hmac.compare_digest(hashlib.sha256(key).digest(), auth.admin_key_digest)
