"""Secrets kept in the database, sealed with AES-256-GCM under a key from the settings.

A sealed value is ``v1:<base64url(nonce || ciphertext || tag)>``: a fresh 96-bit nonce per
value, and as associated data the purpose the caller names (``users.sip_password``), so that
a sealed value copied into another column does not open there. The ``v1`` leaves room for
another scheme or key later without guessing which a row uses.

The key is ``[accounts] secret_key`` (32 bytes, base64) or, when not given,
``<var_dir>/secret.key``, made the first time it is needed with mode 0600 (created
exclusively, so two processes starting together end up with the same key).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Settings

KEY_FILE = "secret.key"
_VERSION = "v1:"
_NONCE = 12


class SealingError(ValueError):
    """A key that is not one, or a sealed value that does not open with it."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SealingError(f"the secret key must be 32 bytes (AES-256), got {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plain: str, purpose: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), purpose.encode("utf-8"))
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, purpose: str) -> str:
        if not sealed.startswith(_VERSION):
            raise SealingError("not a sealed value (it does not start with v1:)")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_VERSION):].encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode("utf-8"))
        except (InvalidTag, ValueError, binascii.Error) as exc:
            # Never the value itself in the message: it is a secret, sealed or not.
            raise SealingError(f"a sealed {purpose} does not open with this key (another key, or damaged)") from exc
        return plain.decode("utf-8")


def parse_key(text: str) -> bytes:
    """A key as written in the settings or the key file: 32 bytes in base64 (either alphabet)."""
    cleaned = text.strip()
    try:
        key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SealingError("the secret key is not base64 (make one with: python -c \"import secrets,base64;"
                           "print(base64.b64encode(secrets.token_bytes(32)).decode())\")") from None
    if len(key) != 32:
        raise SealingError(f"the secret key must be 32 bytes in base64, got {len(key)} bytes")
    return key


def secret_key(settings: Settings) -> bytes:
    """The settings' key, or the key file's (made now when there is none)."""
    given = settings.accounts.secret_key
    if given is not None:
        return parse_key(given.get_secret_value())
    return _key_file(settings.var_dir / KEY_FILE)


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(secret_key(settings))


def _key_file(path: Path) -> bytes:
    try:
        return parse_key(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    text = base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n"
    try:
        # O_EXCL: of two processes making it at once, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return parse_key(text)


def _read_when_written(path: Path) -> bytes:
    # The other process created it a moment ago and may not have written it yet.
    for _ in range(50):
        text = path.read_text(encoding="ascii")
        if text.strip():
            return parse_key(text)
        time.sleep(0.02)
    raise SealingError(f"the key file {path} is empty: delete it (if no secret was sealed with it) or fill it")
