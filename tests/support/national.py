"""The national platform from the tests' side: its traffic checked against its own contract,
the OpenAPI document in ``../shared/national-platform/openapi.yaml`` (or
``HOTLINE_PLATFORM_CONTRACT``), and raw signed requests for probing the stand-in where our
client would refuse to go (valid documents are in ``tests/support/documents.py``).

Why: our client, our validators and our stand-in are all written by us, so they can agree
with each other and still disagree with the platform. The contract's JSON Schemas, read at
run time and checked by ``jsonschema`` (not by our own validators), are the neutral referee.
The contract's prose rules (cross-field rules, signatures) have no schema; those are what
``test_contract_rules`` and ``test_signing`` pin down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from yarl import URL

from devtools.platform_sim import Exchange, PlatformSim
from national.signing import signed_headers
from tests.support.clock import EpochClock
from tests.support.documents import ORG, SECRET

ENV_VAR = "HOTLINE_PLATFORM_CONTRACT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_URI = "urn:national-12315-platform"

#: What the contract's Transport, Back-pressure and Validation sections say of every request,
#: although only ``submitCase`` lists some of them: a body that is not JSON is a 400 and one
#: over 256 KiB a 413 wherever there is a body, and rate limiting and maintenance answer any
#: request (they happen before the operation is even known to be valid).
GENERIC_RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"$ref": "#/components/responses/Malformed"},
    "413": {"description": "Body larger than 256 KiB."},
    "429": {"$ref": "#/components/responses/Busy"},
    "503": {"$ref": "#/components/responses/Busy"},
}


def contract_path() -> Path:
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "national-platform" / "openapi.yaml"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: Mapping[str, Any]
    pattern: re.Pattern[str]


class PlatformContract:
    """The OpenAPI document, with a validator for any schema in it (``$ref`` resolved)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(CONTRACT_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self.operations = [
            Operation(method.upper(), template, spec,
                      re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"))
            for template, item in document["paths"].items()
            for method, spec in item.items()
        ]

    @classmethod
    def load(cls, path: Path | None = None) -> PlatformContract:
        path = path or contract_path()
        if not path.is_file():
            raise FileNotFoundError(f"the national platform's contract is not at {path} (set {ENV_VAR})")
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at ``pointer`` (``/components/schemas/Case``)."""
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{CONTRACT_URI}#{pointer}"}, registry=self.registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER)
        return self._validators[pointer]

    def schema_errors(self, pointer: str, instance: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in self.validator(pointer).iter_errors(instance)]

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow a local ``$ref`` (responses and parameters are referenced, not inlined)."""
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def pointer_of(self, node: Mapping[str, Any], base: str) -> str:
        """The JSON pointer of a schema: its ``$ref`` when it has one, else where it sits."""
        ref = node.get("$ref")
        return ref.removeprefix("#") if isinstance(ref, str) else base

    def operation(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    @cached_property
    def operation_ids(self) -> list[str]:
        return [op.spec["operationId"] for op in self.operations]


@dataclass
class TrafficChecker:
    """An observer for :class:`devtools.platform_sim.PlatformSim`: keeps every exchange, and tells
    what in them the contract does not allow."""

    contract: PlatformContract
    base_path: str = "/api"
    #: Statuses a test injects on purpose beyond the contract (random 500/502/408 faults).
    extra_statuses: frozenset[int] = frozenset()
    exchanges: list[Exchange] = field(default_factory=list)

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    # ----------------------------------------------------------------- answers

    def response_violations(self) -> list[str]:
        found: list[str] = []
        for ex in self.exchanges:
            if ex.status is not None:
                found += [f"{ex.method} {ex.path} -> {ex.status}: {v}" for v in self.check_response(ex)]
        return found

    def check_response(self, ex: Exchange) -> list[str]:
        op = self._operation(ex)
        if op is None:
            return [f"no operation {ex.method} {ex.path} in the contract"]
        status = str(ex.status)
        declared = op.spec["responses"].get(status) or GENERIC_RESPONSES.get(status)
        problems: list[str] = []
        body = _json_or_none(ex.response_body)
        if ex.response_body and body is None:
            problems.append("the answer is not JSON")
        if ex.response_body and not ex.response_headers.get("Content-Type", "").startswith("application/json"):
            problems.append(f"Content-Type is {ex.response_headers.get('Content-Type')}")
        if ex.status is not None and ex.status >= 400:
            # Every refusal carries a Problem, whether or not the contract declares a body.
            problems += self.contract.schema_errors("/components/schemas/Problem", body)
        if declared is None:
            if ex.status not in self.extra_statuses:
                problems.append(f"status {status} is not declared for {op.spec['operationId']}")
            return problems
        response = self.contract.resolve(declared)
        problems += self._check_headers(response, ex)
        content = response.get("content", {}).get("application/json")
        if content is not None:
            pointer = self.contract.pointer_of(content["schema"], "")
            if pointer:
                problems += self.contract.schema_errors(pointer, body)
            else:
                problems += _inline_errors(self.contract, content["schema"], body)
        return problems

    def _check_headers(self, response: Mapping[str, Any], ex: Exchange) -> list[str]:
        problems = []
        for name, spec in response.get("headers", {}).items():
            value = ex.response_headers.get(name)
            if value is None:
                problems.append(f"header {name} is missing")
                continue
            schema = spec["schema"]
            if schema.get("type") == "integer":
                if not re.fullmatch(r"[0-9]+", value) or int(value) < schema.get("minimum", 0):
                    problems.append(f"header {name}: {value!r} is not an integer >= {schema.get('minimum', 0)}")
            elif "enum" in schema and value not in schema["enum"]:
                problems.append(f"header {name}: {value!r} is not one of {schema['enum']}")
        return problems

    # ----------------------------------------------------------------- requests

    def request_violations(self) -> list[str]:
        """What the *senders* did wrong (for traffic from our client, which must be clean).

        A body the platform refused with 422 is not held against the sender: tests send
        invalid cases on purpose, and the client sends what it is given."""
        found: list[str] = []
        for ex in self.exchanges:
            found += [f"{ex.method} {ex.path}: {v}" for v in self.check_request(ex)]
        return found

    def check_request(self, ex: Exchange) -> list[str]:
        op = self._operation(ex)
        if op is None:
            return [f"no operation {ex.method} {ex.path} in the contract"]
        problems = []
        headers = {k.lower(): v for k, v in ex.request_headers.items()}
        for parameter in op.spec.get("parameters", []):
            parameter = self.contract.resolve(parameter)
            if parameter["in"] != "header":
                continue
            value = headers.get(parameter["name"].lower())
            if value is None:
                if parameter.get("required"):
                    problems.append(f"header {parameter['name']} is missing")
                continue
            validator = Draft202012Validator(parameter["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER)
            problems += [f"header {parameter['name']}: {e.message}" for e in validator.iter_errors(value)]
        body_spec = op.spec.get("requestBody")
        if ex.request_body is None:
            pass  # answered at the gateway, before the body was read: nothing to check
        elif ex.status == 422:
            pass  # refused for its body, as the test meant: the headers above must still be right
        elif body_spec is not None:
            if not headers.get("content-type", "").startswith("application/json"):
                problems.append(f"Content-Type is {headers.get('content-type')}")
            schema = body_spec["content"]["application/json"]["schema"]
            body = _json_or_none(ex.request_body)
            problems += self.contract.schema_errors(self.contract.pointer_of(schema, ""), body)
        elif ex.request_body:
            problems.append("a GET carries a body")
        return problems

    def _operation(self, ex: Exchange) -> Operation | None:
        if not ex.path.startswith(self.base_path):
            return None
        return self.contract.operation(ex.method, ex.path[len(self.base_path):])

    def statuses(self) -> list[int | None]:
        return [ex.status for ex in self.exchanges]


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _inline_errors(contract: PlatformContract, schema: Mapping[str, Any], instance: Any) -> list[str]:
    """An inline schema (``getCase``'s allOf) with ``$ref`` s into the contract."""
    wrapped = json.loads(json.dumps(schema).replace('"#/', f'"{CONTRACT_URI}#/'))
    validator = Draft202012Validator(wrapped, registry=contract.registry,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(instance)]


def assert_clean(violations: Iterable[str]) -> None:
    found = list(violations)
    assert not found, "traffic the contract does not allow:\n" + "\n".join(found[:20])


# --------------------------------------------------------------------------- signatures and raw requests


def contract_signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The contract's words, written out again independently of national.signing: ``path``
    is the operation's path relative to the server URL."""
    text = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()



def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


async def send(http: aiohttp.ClientSession, base_url: str, method: str, path: str, body: bytes = b"", *,
               clock: EpochClock, org: str = ORG, secret: str = SECRET, key: str | None = None,
               content_type: str | None = "application/json; charset=utf-8",
               headers: Mapping[str, str | None] | None = None, sign_path: str | None = None,
               nonce: str | None = None) -> tuple[int, dict[str, str], Any]:
    """One raw signed request; ``headers`` overrides (``None`` removes a header).

    What is signed is the path relative to ``base_url``, as the contract says, unless
    ``sign_path`` names another (a test of what the platform refuses)."""
    url = base_url + path
    relative = URL(url).raw_path.removeprefix(URL(base_url).raw_path.rstrip("/"))
    all_headers: dict[str, str | None] = dict(signed_headers(org, secret, method, sign_path or relative,
                                                             body, now=clock(), nonce=nonce))
    if key is not None:
        all_headers["Idempotency-Key"] = key
    if content_type is not None and method != "GET":
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    sent = {k: v for k, v in all_headers.items() if v is not None}
    async with http.request(method, url, data=body if body or method != "GET" else None,
                            headers=sent, skip_auto_headers=["Content-Type"]) as resp:
        raw = await resp.read()
        return resp.status, dict(resp.headers), json.loads(raw) if raw else None


async def post_case(http: aiohttp.ClientSession, base_url: str, case: Mapping[str, Any], *,
                    clock: EpochClock, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    kwargs.setdefault("key", case.get("case_id"))
    return await send(http, base_url, "POST", "/v1/cases", encode(case), clock=clock, **kwargs)


@asynccontextmanager
async def platform_under(base_path: str, contract: PlatformContract,
                         clock: EpochClock) -> AsyncIterator[tuple[PlatformSim, TrafficChecker]]:
    """The stand-in served under ``base_path``, its traffic checked against the contract."""
    traffic = TrafficChecker(contract, base_path=base_path)
    sim = PlatformSim(orgs={ORG: SECRET}, base_path=base_path, clock=clock, observer=traffic)
    await sim.start()
    try:
        yield sim, traffic
    finally:
        await sim.stop()
