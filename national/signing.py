"""Request signing of the national 12315 platform, for both sides.

Every request carries ``X-Org-Code``, ``X-Timestamp`` (Unix seconds), ``X-Nonce`` and
``X-Signature`` = lowercase hex HMAC-SHA256, keyed with the organisation's shared secret, of::

    METHOD "\\n" PATH "\\n" X-Timestamp "\\n" X-Nonce "\\n" hex(SHA-256(body))

The sender signs the exact bytes it sends; the receiver verifies against the exact bytes it
received, checks the timestamp window (300 s) and refuses a nonce seen in the last 10 minutes.

PATH is the operation's path relative to the server URL (contract 1.0.1): without scheme,
host, the server URL's base path or query, so ``/v1/cases`` whether the platform is reached
at ``https://platform.example/api`` or at ``https://gateway.example/12315/api``, and
``/v1/cases/1231520261123000123/progress`` as sent (percent-encoded, as on the request line).
A centre's base URL is its own configuration, not part of what it signs: the platform may be
reached through any gateway. The sender signs the path it appends to its base URL; the
receiver takes its own base path off the request path (:func:`operation_path`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence

ORG_CODE_RE = re.compile(r"[0-9A-Z]{6,32}")
TIMESTAMP_RE = re.compile(r"[0-9]{10}")
NONCE_RE = re.compile(r"[A-Za-z0-9-]{16,64}")
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")

#: How far ``X-Timestamp`` may be from the receiver's clock.
TIMESTAMP_WINDOW_S = 300
#: How long a nonce may not be used again.
NONCE_TTL_S = 600

ORG_CODE, TIMESTAMP, NONCE, SIGNATURE = "X-Org-Code", "X-Timestamp", "X-Nonce", "X-Signature"


def operation_path(request_path: str, base_path: str) -> str:
    """The PATH to verify for a request that arrived at ``request_path`` (raw, as on the
    request line) on a server whose URL has ``base_path`` (``""`` or ``/like/this``).

    A path that does not start with the base path as written is returned whole: no
    operation lives there, and its signature cannot match one made over an operation path.
    """
    base = base_path.rstrip("/")
    if base and request_path.startswith(base + "/"):
        return request_path[len(base):]
    return request_path


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The canonical string; ``path`` is the operation's path, relative to the server URL."""
    if "?" in path or "://" in path:
        raise ValueError(f"sign the path only, without host or query: {path!r}")
    return "\n".join((method.upper(), path, timestamp, nonce, body_digest(body))).encode("utf-8")


def sign(secret: str | bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """32 random hex characters: inside ``[A-Za-z0-9-]{16,64}`` and never guessable."""
    return secrets.token_hex(16)


def signed_headers(org_code: str, secret: str | bytes, method: str, path: str, body: bytes, *,
                   now: float, nonce: str | None = None) -> dict[str, str]:
    """The four authentication headers for one request sent at ``now`` (Unix seconds)."""
    if not ORG_CODE_RE.fullmatch(org_code):
        raise ValueError(f"organisation code {org_code!r} must be 6 to 32 of [0-9A-Z]")
    nonce = nonce or new_nonce()
    if not NONCE_RE.fullmatch(nonce):
        raise ValueError(f"nonce {nonce!r} must be 16 to 64 of [A-Za-z0-9-]")
    timestamp = str(int(now))
    return {
        ORG_CODE: org_code,
        TIMESTAMP: timestamp,
        NONCE: nonce,
        SIGNATURE: sign(secret, method, path, timestamp, nonce, body),
    }


class NonceCache:
    """Nonces seen in the last ``ttl_s`` seconds, per organisation.

    Entries expire in insertion order (the TTL is constant), so pruning is a pop from the left.
    """

    def __init__(self, ttl_s: float = NONCE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._expiry: dict[tuple[str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def _prune(self, now: float) -> None:
        while self._order and self._order[0][0] <= now:
            expires, key = self._order.popleft()
            if self._expiry.get(key) == expires:
                del self._expiry[key]

    def seen(self, org_code: str, nonce: str, now: float) -> bool:
        self._prune(now)
        return (org_code, nonce) in self._expiry

    def remember(self, org_code: str, nonce: str, now: float) -> None:
        self._prune(now)
        expires = now + self.ttl_s
        self._expiry[(org_code, nonce)] = expires
        self._order.append((expires, (org_code, nonce)))

    def __len__(self) -> int:
        return len(self._expiry)

    def dump(self) -> list[list[str | float]]:
        """Live entries as JSON-friendly ``[org, nonce, expires]`` (for the stand-in's state file)."""
        return [[org, nonce, expires] for (org, nonce), expires in self._expiry.items()]

    def load(self, entries: Sequence[Sequence[str | float]], now: float) -> None:
        # Read back from JSON, so each item is converted to what it stands for.
        for org, nonce, expires in sorted(entries, key=lambda e: float(e[2])):
            if float(expires) > now:
                self._expiry[(str(org), str(nonce))] = float(expires)
                self._order.append((float(expires), (str(org), str(nonce))))


class AuthError(Exception):
    """Why a request is not authenticated (the receiver answers ``401``)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def verify_request(*, method: str, path: str, headers: Mapping[str, str], body: bytes,
                   secret_of: Callable[[str], str | bytes | None], now: float,
                   nonces: NonceCache | None = None,
                   window_s: float = TIMESTAMP_WINDOW_S) -> str:
    """Check a received request's signature, timestamp and nonce; return its organisation.

    Raises :class:`AuthError` naming the header at fault. The nonce is remembered only once
    the signature is proven, so that forged requests cannot burn a sender's nonces.
    """
    values = {}
    for name in (ORG_CODE, TIMESTAMP, NONCE, SIGNATURE):
        value = headers.get(name)
        if not value:
            raise AuthError(name, "required", f"header {name} is missing")
        values[name] = value
    org, timestamp, nonce, signature = (values[n] for n in (ORG_CODE, TIMESTAMP, NONCE, SIGNATURE))
    for name, pattern, shape in (
        (ORG_CODE, ORG_CODE_RE, "6 to 32 of [0-9A-Z]"),
        (TIMESTAMP, TIMESTAMP_RE, "Unix time in 10 digits"),
        (NONCE, NONCE_RE, "16 to 64 of [A-Za-z0-9-]"),
        (SIGNATURE, SIGNATURE_RE, "64 lowercase hex digits"),
    ):
        if not pattern.fullmatch(values[name]):
            raise AuthError(name, "bad_format", f"header {name} must be {shape}")
    secret = secret_of(org)
    if secret is None:
        raise AuthError(ORG_CODE, "unknown_org", f"organisation {org} is not known to the platform")
    skew = int(timestamp) - now
    if abs(skew) > window_s:
        raise AuthError(TIMESTAMP, "stale_timestamp",
                        f"timestamp is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} "
                        f"the platform's clock (at most {window_s:.0f} s allowed)")
    expected = sign(secret, method, path, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise AuthError(SIGNATURE, "bad_signature",
                        "signature does not match METHOD, path, timestamp, nonce and body")
    if nonces is not None:
        if nonces.seen(org, nonce, now):
            raise AuthError(NONCE, "reused_nonce", "nonce was already used in the last 10 minutes")
        nonces.remember(org, nonce, now)
    return org
