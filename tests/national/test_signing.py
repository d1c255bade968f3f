"""Request signing as the contract's Authentication section describes it, both sides."""

from __future__ import annotations

import pytest

from national.signing import (
    NONCE_TTL_S,
    AuthError,
    NonceCache,
    new_nonce,
    operation_path,
    sign,
    signed_headers,
    string_to_sign,
    verify_request,
)
from tests.support.documents import ORG, SECRET
from tests.support.national import contract_signature

NOW = 1_795_000_000.0
BODY = '{"summary":"牛奶过期"}'.encode()
NONCE = "n0nce-0123456789abcdef"


def headers(**overrides: str | None) -> dict[str, str]:
    h = signed_headers(ORG, SECRET, "POST", "/v1/cases", BODY, now=NOW, nonce=NONCE)
    h.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in h.items() if v is not None}


def verify(hdrs: dict[str, str], *, body: bytes = BODY, path: str = "/v1/cases", method: str = "POST",
           now: float = NOW, nonces: NonceCache | None = None, secrets: dict[str, str] | None = None) -> str:
    known = {ORG: SECRET} if secrets is None else secrets
    return verify_request(method=method, path=path, headers=hdrs, body=body, secret_of=known.get, now=now,
                          nonces=nonces)


def refusal(hdrs: dict[str, str], **kwargs: object) -> tuple[str, str]:
    with pytest.raises(AuthError) as caught:
        verify(hdrs, **kwargs)  # type: ignore[arg-type]
    return caught.value.field, caught.value.code


# --------------------------------------------------------------------------- signing


def test_the_signature_is_the_contracts_hmac_of_method_path_timestamp_nonce_and_body_digest() -> None:
    expected = contract_signature(SECRET, "POST", "/v1/cases", str(int(NOW)), NONCE, BODY)
    assert sign(SECRET, "post", "/v1/cases", str(int(NOW)), NONCE, BODY) == expected
    assert headers()["X-Signature"] == expected


@pytest.mark.parametrize(("request_path", "base_path", "signed"), [
    ("/api/v1/cases", "/api", "/v1/cases"),
    ("/api/v1/cases/1231520261123000123/progress", "/api", "/v1/cases/1231520261123000123/progress"),
    ("/gateway/12315/api/v1/call-records", "/gateway/12315/api", "/v1/call-records"),
    ("/api/v1/cases", "/api/", "/v1/cases"),      # a base URL written with a trailing slash
    ("/v1/cases", "", "/v1/cases"),               # a platform at the root of its host
])
def test_the_signed_path_is_relative_to_the_server_url(request_path: str, base_path: str, signed: str) -> None:
    assert operation_path(request_path, base_path) == signed


@pytest.mark.parametrize(("request_path", "base_path"), [
    ("/apiv1/cases", "/api"),            # the base path is a whole segment, not a prefix of one
    ("/other/v1/cases", "/api"),
    ("/api", "/api"),
])
def test_a_request_path_outside_the_base_path_is_verified_as_it_came(request_path: str, base_path: str) -> None:
    assert operation_path(request_path, base_path) == request_path


def test_a_request_signed_over_the_base_path_too_is_refused() -> None:
    """What our client signed before contract 1.0.1: the whole request path at https://host/api."""
    old_way = signed_headers(ORG, SECRET, "POST", "/api/v1/cases", BODY, now=NOW, nonce=NONCE)
    path = operation_path("/api/v1/cases", "/api")
    assert refusal(old_way, path=path) == ("X-Signature", "bad_signature")
    assert verify(headers(), path=path) == ORG


def test_a_get_signs_the_digest_of_an_empty_body() -> None:
    text = string_to_sign("GET", "/v1/cases/1231520261123000001", "1795000000", NONCE, b"")
    assert text.decode().split("\n") == [
        "GET", "/v1/cases/1231520261123000001", "1795000000", NONCE,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ]


def test_the_signed_headers_have_the_shapes_the_contract_declares() -> None:
    h = signed_headers(ORG, SECRET, "POST", "/v1/cases", BODY, now=NOW)
    assert h["X-Org-Code"] == ORG
    assert h["X-Timestamp"] == "1795000000"
    assert 16 <= len(h["X-Nonce"]) <= 64 and h["X-Nonce"].isalnum()
    assert len(h["X-Signature"]) == 64 and h["X-Signature"] == h["X-Signature"].lower()


def test_every_request_gets_a_fresh_nonce() -> None:
    assert len({new_nonce() for _ in range(1000)}) == 1000


def test_a_path_with_a_query_or_a_host_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="path only"):
        string_to_sign("GET", "/v1/cases/1?x=1", "1795000000", NONCE, b"")
    with pytest.raises(ValueError, match="path only"):
        string_to_sign("GET", "https://platform.example/api/v1/cases/1", "1795000000", NONCE, b"")


def test_a_bad_organisation_code_or_nonce_is_refused_before_signing() -> None:
    with pytest.raises(ValueError, match="organisation code"):
        signed_headers("zj-330100", SECRET, "POST", "/v1/cases", b"", now=NOW)
    with pytest.raises(ValueError, match="nonce"):
        signed_headers(ORG, SECRET, "POST", "/v1/cases", b"", now=NOW, nonce="short")


# --------------------------------------------------------------------------- verifying


def test_a_correctly_signed_request_is_accepted_and_names_its_organisation() -> None:
    assert verify(headers()) == ORG


@pytest.mark.parametrize("name", ["X-Org-Code", "X-Timestamp", "X-Nonce", "X-Signature"])
def test_a_missing_authentication_header_is_refused_by_name(name: str) -> None:
    assert refusal(headers(**{name: None})) == (name, "required")


@pytest.mark.parametrize(("name", "value"), [
    ("X-Org-Code", "zj330100"),                   # lower case
    ("X-Org-Code", "ZJ33"),                       # too short
    ("X-Timestamp", "179500000"),                 # 9 digits
    ("X-Timestamp", "1795000000.5"),
    ("X-Nonce", "short-nonce"),                   # 11 characters
    ("X-Nonce", "nonce_with_underscore_0123"),
    ("X-Nonce", "x" * 65),
    ("X-Signature", "A" * 64),                    # upper-case hex
    ("X-Signature", "0" * 63),
])
def test_an_authentication_header_of_the_wrong_shape_is_refused(name: str, value: str) -> None:
    assert refusal(headers(**{name: value})) == (name, "bad_format")


def test_an_unknown_organisation_is_refused() -> None:
    assert refusal(headers(), secrets={"JS320100": "other"}) == ("X-Org-Code", "unknown_org")


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_a_timestamp_more_than_300_s_from_the_platforms_clock_is_stale(skew: float) -> None:
    assert refusal(headers(), now=NOW - skew) == ("X-Timestamp", "stale_timestamp")


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_a_timestamp_within_300_s_is_accepted(skew: float) -> None:
    assert verify(headers(), now=NOW - skew) == ORG


@pytest.mark.parametrize("tamper", ["body", "path", "method", "timestamp", "nonce", "secret"])
def test_a_signature_over_anything_else_is_refused(tamper: str) -> None:
    hdrs = headers()
    kwargs: dict[str, object] = {}
    if tamper == "body":
        kwargs["body"] = BODY.replace("过期".encode(), "变质".encode())
    elif tamper == "path":
        kwargs["path"] = "/v1/call-records"
    elif tamper == "method":
        kwargs["method"] = "PUT"
    elif tamper == "timestamp":
        hdrs["X-Timestamp"] = str(int(NOW) + 1)
    elif tamper == "nonce":
        hdrs["X-Nonce"] = NONCE + "0"
    else:
        kwargs["secrets"] = {ORG: SECRET + "x"}
    assert refusal(hdrs, **kwargs) == ("X-Signature", "bad_signature")


def test_a_nonce_used_again_within_10_minutes_is_refused_and_accepted_after() -> None:
    nonces = NonceCache()
    assert verify(headers(), nonces=nonces) == ORG
    assert refusal(headers(), nonces=nonces) == ("X-Nonce", "reused_nonce")
    # Ten minutes on, the nonce may come back (with a fresh timestamp, so a new signature).
    later = NOW + NONCE_TTL_S
    fresh = signed_headers(ORG, SECRET, "POST", "/v1/cases", BODY, now=later, nonce=NONCE)
    assert verify(fresh, now=later, nonces=nonces) == ORG


def test_nonces_are_per_organisation() -> None:
    nonces = NonceCache()
    other = signed_headers("JS320100", "other", "POST", "/v1/cases", BODY, now=NOW, nonce=NONCE)
    both = {ORG: SECRET, "JS320100": "other"}
    assert verify(headers(), nonces=nonces, secrets=both) == ORG
    assert verify(other, nonces=nonces, secrets=both) == "JS320100"


def test_a_forged_request_does_not_burn_the_senders_nonce() -> None:
    nonces = NonceCache()
    assert refusal(headers(**{"X-Signature": "0" * 64}), nonces=nonces) == ("X-Signature", "bad_signature")
    assert verify(headers(), nonces=nonces) == ORG


def test_the_nonce_cache_forgets_expired_entries_and_survives_a_dump_and_load() -> None:
    cache = NonceCache(ttl_s=600)
    cache.remember(ORG, "a" * 16, now=0)
    cache.remember(ORG, "b" * 16, now=300)
    assert cache.seen(ORG, "a" * 16, now=599) and len(cache) == 2
    assert not cache.seen(ORG, "a" * 16, now=600) and len(cache) == 1
    restored = NonceCache(ttl_s=600)
    restored.load(cache.dump(), now=650)
    assert restored.seen(ORG, "b" * 16, now=650)
    assert not restored.seen(ORG, "b" * 16, now=900)
