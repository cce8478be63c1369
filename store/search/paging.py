"""Opaque page tokens: base64 of {"offset": n}, checked on the way back in."""

from __future__ import annotations

import base64

import orjson

from runstream.store.search.lexer import InvalidSearch

MAX_OFFSET = 2**63 - 1


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for; no token (or an empty one) is the first page."""
    if not token:
        return 0
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except ValueError as exc:  # binascii, unicode and JSON errors are all ValueErrors
        raise InvalidSearch("malformed page token") from exc
    offset = decoded.get("offset") if isinstance(decoded, dict) and len(decoded) == 1 else None
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise InvalidSearch("malformed page token")
    return offset
