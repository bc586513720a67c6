"""Personal data at rest: AES-256-GCM (cryptography) when ORDERGATE_PII_KEY is set.

What is sealed: an order's delivery block (name, address, phone, e-mail, window, handling) and
the raw submitted document. Sealing happens in the repositories as rows are written and opened
as they are read, so services and the API never see the difference. The cipher travels with the
database connection (`open_database(..., pii_key=...)` puts it in each pooled connection's
`info`), not in a global.

Each sealed value is bound to where it lives (table and column as associated data), so a sealed
value copied into another column does not open. Values written before a key was set stay
readable as they are; a sealed value read without the key is an error, never garbage.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

_INFO_KEY = "ordergate_pii_cipher"
_MAGIC = b"ogpii1:"  # version 1: AES-256-GCM, 12-byte random nonce
_NONCE_BYTES = 12


class PiiKeyMissing(RuntimeError):
    """Sealed personal data was read by a process without ORDERGATE_PII_KEY."""


class PiiCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("ORDERGATE_PII_KEY must be 32 bytes, base64-encoded (44 characters)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, text: str) -> PiiCipher:
        """The cipher for a base64 key as ORDERGATE_PII_KEY holds it."""
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise ValueError("ORDERGATE_PII_KEY is not base64") from None
        return cls(key)

    @staticmethod
    def new_key() -> str:
        """A fresh random key, base64-encoded, for ORDERGATE_PII_KEY."""
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def seal(self, data: bytes, where: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _MAGIC + nonce + self._aead.encrypt(nonce, data, where.encode())

    def open(self, sealed: bytes, where: str) -> bytes:
        body = sealed[len(_MAGIC) :]
        try:
            return self._aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], where.encode())
        except InvalidTag:
            raise PiiKeyMissing(
                f"personal data in {where} does not open with this ORDERGATE_PII_KEY"
            ) from None


def attach(info: dict[Any, Any], cipher: PiiCipher) -> None:
    """Make `cipher` the one a pooled connection (its `info`) seals and opens with."""
    info[_INFO_KEY] = cipher


def _cipher(conn: Connection) -> PiiCipher | None:
    cipher = conn.info.get(_INFO_KEY)
    return cipher if isinstance(cipher, PiiCipher) else None


def is_sealed(data: bytes) -> bool:
    return data.startswith(_MAGIC)


def seal_bytes(conn: Connection, data: bytes, where: str) -> bytes:
    cipher = _cipher(conn)
    return cipher.seal(data, where) if cipher else data


def open_bytes(conn: Connection, data: bytes, where: str) -> bytes:
    if not is_sealed(data):
        return data
    cipher = _cipher(conn)
    if cipher is None:
        raise PiiKeyMissing(f"personal data in {where} is encrypted; set ORDERGATE_PII_KEY")
    return cipher.open(data, where)


def seal_json(conn: Connection, value: dict[str, Any], where: str) -> dict[str, Any]:
    cipher = _cipher(conn)
    if cipher is None:
        return value
    sealed = cipher.seal(json.dumps(value, separators=(",", ":")).encode(), where)
    return {"sealed": base64.b64encode(sealed).decode()}


def open_json(conn: Connection, value: dict[str, Any], where: str) -> dict[str, Any]:
    if "sealed" not in value:
        return value
    opened = open_bytes(conn, base64.b64decode(value["sealed"]), where)
    data = json.loads(opened)
    assert isinstance(data, dict)
    return data


def seal_text(conn: Connection, value: str, where: str) -> str:
    """`value` sealed (as `sealed:` and base64) when a key is set; as it is otherwise."""
    cipher = _cipher(conn)
    if cipher is None:
        return value
    return "sealed:" + base64.b64encode(cipher.seal(value.encode(), where)).decode()


def open_text(conn: Connection, value: str, where: str) -> str:
    if not value.startswith("sealed:"):
        return value
    return open_bytes(conn, base64.b64decode(value.removeprefix("sealed:")), where).decode()
