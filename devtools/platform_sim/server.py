"""``PlatformSim``: a stand-in for the national 12315 platform, for tests, the demo and the
benchmark.

It serves the contract (``../shared/national-platform/openapi.yaml``) under ``base_path``
(``/api`` unless told otherwise, ``""`` for none) with the very rules our own code uses
(:mod:`national.signing`, :mod:`national.contract`), so that a case our side calls valid is
one the stand-in accepts. As the contract says, signatures cover the operation's path
relative to the server URL, whatever the base path. Outside the contract, for
the people and processes that drive it:

- ``GET /sim/stats``: counters (stored, replayed, conflicts, rejections, faults ...);
- ``GET /sim/cases``, ``GET /sim/call-records``: what was stored;
- ``GET /sim/faults``: the fault configuration and the outage, if any;
- ``PUT /sim/faults``: replace the fault configuration (a JSON object of
  :class:`~devtools.platform_sim.faults.Faults` fields; those left out take their defaults), and with
  ``"outage_s": N`` start an outage of N platform seconds (``0`` ends it).

Everything is in memory and lost when the stand-in stops.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from devtools.platform_sim.api import MAX_BODY_BYTES, ContractApi, Observer, json_response, problem
from devtools.platform_sim.faults import FaultInjector, Faults
from devtools.platform_sim.ratelimit import TokenBucket
from devtools.platform_sim.stats import SimStats
from devtools.platform_sim.store import PlatformStore
from national.signing import ORG_CODE_RE

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/sim"
_BASE_PATH_RE = re.compile(r"(/[A-Za-z0-9._~-]+)*")


class PlatformSim:
    def __init__(self, *, orgs: dict[str, str], base_path: str = "/api", faults: Faults | None = None,
                 clock: Callable[[], float] = time.time, rate_limit_per_s: float | None = None,
                 observer: Observer | None = None, record_arrivals: bool = False) -> None:
        """``orgs`` maps each organisation code to its shared secret. ``clock`` is the
        platform's clock (timestamps, nonces, receipts, outages, the rate limit); tests
        inject one to move time without sleeping. ``observer`` sees every exchange on the
        contract's paths (the tests check each against the contract)."""
        if not orgs:
            raise ValueError("the platform needs at least one organisation (code -> secret)")
        for code, secret in orgs.items():
            if not ORG_CODE_RE.fullmatch(code):
                raise ValueError(f"organisation code {code!r} must be 6 to 32 of [0-9A-Z]")
            if not secret:
                raise ValueError(f"organisation {code} has an empty secret")
        if not _BASE_PATH_RE.fullmatch(base_path):
            # Unreserved characters only: the base path is then the same text on the request
            # line as in the routes, and taking it off the raw path leaves the signed PATH.
            raise ValueError(f"base_path must be empty or /like/this (letters, digits, . _ ~ -), got {base_path!r}")
        if base_path == CONTROL_PREFIX or base_path.startswith(CONTROL_PREFIX + "/"):
            raise ValueError(f"base_path may not be under {CONTROL_PREFIX}, the stand-in's control API")
        self.base_path = base_path
        self.stats = SimStats()
        self.store = PlatformStore()
        self._clock = clock
        self.injector = FaultInjector(faults, clock)
        limiter = TokenBucket(rate_limit_per_s, clock) if rate_limit_per_s is not None else None
        if record_arrivals:
            self.stats.arrivals = []
        # Kept, so that an organisation's secret can be (re)issued while serving: set_secret.
        self._secrets = {code: secret.encode("utf-8") for code, secret in orgs.items()}
        self._api = ContractApi(orgs=self._secrets,
                                store=self.store, stats=self.stats, injector=self.injector, clock=clock,
                                limiter=limiter, base_path=base_path, observer=observer)
        self._runner: web.AppRunner | None = None
        self._root = ""

    # ----------------------------------------------------------------- life cycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        for method, path, handler in self._api.routes():
            app.router.add_route(method, path, handler)
        for method, path, handler in self._control_routes():
            app.router.add_route(method, path, handler)
        # Anything else, under the base path or not, is a 404 with a Problem body.
        app.router.add_route("*", "/{tail:.*}", _not_found)
        # A short shutdown: a test's stand-in must not wait a minute for a client that went away.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # The runner's one site: its address tells the port picked when port 0 was asked for.
        bound = self._runner.addresses[0]
        self._root = f"http://{bound[0]}:{bound[1]}"
        log.info("national platform stand-in at %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The base URL a client is given, e.g. ``http://127.0.0.1:PORT/api``."""
        if not self._root:
            raise RuntimeError("the stand-in is not started")
        return self._root + self.base_path

    @property
    def root_url(self) -> str:
        """Where the control API (``/sim/...``) is."""
        if not self._root:
            raise RuntimeError("the stand-in is not started")
        return self._root

    # ----------------------------------------------------------------- inspection and control

    def cases(self) -> list[dict[str, Any]]:
        return self.store.cases()

    def call_records(self) -> list[dict[str, Any]]:
        return self.store.call_records()

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    def set_faults(self, faults: Faults) -> None:
        self.injector.configure(faults)

    def start_outage(self, duration_s: float) -> None:
        """Down for ``duration_s`` platform seconds (``duration_s * time_scale`` real ones)."""
        self.injector.start_outage(duration_s)

    def end_outage(self) -> None:
        self.injector.end_outage()

    def set_secret(self, org_code: str, secret: str) -> None:
        """The platform issues ``org_code`` this secret (a new organisation, or a new secret):
        from the next request on, only signatures with it are accepted."""
        if not ORG_CODE_RE.fullmatch(org_code) or not secret:
            raise ValueError("an organisation code of 6 to 32 of [0-9A-Z] and a non-empty secret")
        self._secrets[org_code] = secret.encode("utf-8")

    def _control_routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        return [
            ("GET", f"{CONTROL_PREFIX}/stats", self._get_stats),
            ("GET", f"{CONTROL_PREFIX}/cases", self._get_cases),
            ("GET", f"{CONTROL_PREFIX}/call-records", self._get_call_records),
            ("GET", f"{CONTROL_PREFIX}/faults", self._get_faults),
            ("PUT", f"{CONTROL_PREFIX}/faults", self._put_faults),
        ]

    async def _get_stats(self, request: web.Request) -> web.Response:
        return json_response(200, {**self.stats.to_json(), "cases": len(self.store),
                                   "outage_remaining_s": self.injector.outage_remaining_real_s()})

    async def _get_cases(self, request: web.Request) -> web.Response:
        return json_response(200, self.cases())

    async def _get_call_records(self, request: web.Request) -> web.Response:
        return json_response(200, self.call_records())

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(200, self._faults_view())

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            doc = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            return problem(400, "malformed", f"the body is not JSON: {exc}")
        if not isinstance(doc, dict):
            return problem(400, "malformed", "the body must be a JSON object of fault settings")
        outage_s = doc.pop("outage_s", None)
        try:
            faults = Faults.from_json(doc)
            if outage_s is not None and (isinstance(outage_s, bool) or not isinstance(outage_s, (int, float))
                                         or not 0 <= outage_s < math.inf):
                raise ValueError("outage_s must be a number of seconds (0 ends the outage)")
        except (TypeError, ValueError) as exc:
            return problem(400, "invalid", str(exc))
        self.set_faults(faults)
        if outage_s:
            self.start_outage(float(outage_s))
        elif outage_s is not None:
            self.end_outage()
        log.info("faults now %s (outage %.1f s left)", faults.to_json(), self.injector.outage_remaining_real_s())
        return json_response(200, self._faults_view())

    def _faults_view(self) -> Mapping[str, Any]:
        return {"faults": self.faults.to_json(), "outage_remaining_s": self.injector.outage_remaining_real_s()}


async def _not_found(request: web.Request) -> web.Response:
    return problem(404, "not_found", f"there is no {request.path} on this platform")
