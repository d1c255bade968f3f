"""Delivery workers: claim due outbox rows, send them to the national platform, settle the
answers. Several workers (in one process or many) may run at once; each row is leased to one
of them at a time, and the platform's idempotency makes any second send a replay."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import aiohttp

from core.settings import PlatformSettings
from core.tasks import cancel_and_wait
from core.vocabulary import utcnow
from delivery.gate import NOT_ABOUT_THE_DOCUMENT, Halt, LocalGate, SenderGate, Turn, advice, fingerprint
from delivery.models import Kind, State
from delivery.outbox import Claimed, Outbox, Settled
from national.client import Backoff, DeliveryResult, LookupOutcome, Outcome, PlatformClient

log = logging.getLogger(__name__)

#: The longest a worker waits, while the platform fails, before trying one row early.
PROBE_CAP_S = 5.0


def worker_name(index: int) -> str:
    """Unique across hosts, processes and restarts: a lease names who holds it."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{index}:{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    """One claim-send-settle loop."""

    def __init__(self, outbox: Outbox, client: PlatformClient, backoff: Backoff, settings: PlatformSettings,
                 *, name: str, gate: SenderGate, clock: Callable[[], datetime] = utcnow) -> None:
        self.outbox, self.client, self.backoff, self.settings = outbox, client, backoff, settings
        self.name = name
        self.gate = gate
        self._config = fingerprint(settings)
        self.clock = clock
        self._sending = asyncio.Semaphore(settings.concurrency)
        self.sent = 0
        #: Batches in a row that got no answer ending a row (the platform is down).
        self._failures = 0
        self._probe_at = clock()
        #: The latest time a Retry-After asked us to stay away until.
        self._told_until = clock()
        self._next_stale_check = clock()

    async def run(self) -> None:
        while True:
            try:
                worked = await self._round()
                if not worked:
                    await self._release_stale()
            except Exception:
                log.exception("delivery worker %s: a round failed; trying again shortly", self.name)
                await asyncio.sleep(min(self.settings.poll_s, 1.0))
                continue
            if not worked:
                await self._idle()

    async def _round(self) -> int:
        """One turn of the loop: nothing is claimed while the platform asked every sender to
        wait, and while delivery is halted only a probe goes out now and then."""
        left, halt = await self.gate.state()
        if left > 0:
            await asyncio.sleep(left)
            return 1
        if halt is not None:
            # Another configuration (a process started after the fix) tries at once.
            every = self.settings.probe_s if halt.config == self._config else 0.001
            if await self.gate.take_probe(self._config, every):
                return await self.run_once(probe=True, halted=True)
            return 0
        return await self.run_once() or await self._probe()

    async def run_once(self, *, probe: bool = False, halted: bool = False) -> int:
        """Claim one batch, send it, settle it; how many rows were handled. ``halted``: the
        batch is a probe of whether the platform accepts us again."""
        limit = 1 if probe else self.settings.claim_batch
        batch = await self.outbox.claim(self.name, limit, self.settings.lease_s, early=probe)
        if not batch:
            return 0
        results = await asyncio.gather(*(self._attempt(row, probe=halted) for row in batch))
        lifted = await self._lift(results) if halted else None
        await self.outbox.settle(self.name, results)
        self.sent += len(batch)
        await self._note_health(results)
        if lifted is not None:
            hastened = await self.outbox.hasten()
            self.outbox.wakeup.set()
            log.warning("delivery to the national platform resumed: the platform accepts our requests again "
                        "(halted since %s for %s); %d waiting row(s) sent now", lifted.since, lifted.status,
                        hastened)
        return len(batch)

    async def _lift(self, results: list[Settled]) -> Halt | None:
        """A probe the platform answered about its document (delivered, or refused for the
        document's own sake) shows that our credentials and URL are good again."""
        # A refusal not about the document leaves its row pending; one about it (dead) counts.
        if not any(r.status is not None and r.status < 500 and r.status not in (408, 429)
                   and (r.status not in NOT_ABOUT_THE_DOCUMENT or r.state is State.DEAD) for r in results):
            return None
        return await self.gate.resume()

    async def _note_health(self, results: list[Settled]) -> None:
        """After a batch that failed entirely, the first success means the platform is back:
        everything that was backing off is sent now rather than at its own retry time."""
        answered = any(r.state is not State.PENDING for r in results)
        if answered and self._failures:
            hastened = await self.outbox.hasten()
            if hastened:
                log.info("the platform answers again: %d waiting row(s) sent now", hastened)
        if answered:
            self._failures = 0
            return
        self._failures += 1
        # While the platform fails, one row is tried early now and then, so that its return is
        # noticed within seconds, not at the end of every row's backoff (up to the cap).
        # A Retry-After is the platform's own word on when to come back: never earlier.
        wait = min(PROBE_CAP_S, self.backoff.ceiling_s(min(self._failures, 30)))
        self._probe_at = max(self._told_until, self.clock() + timedelta(seconds=wait))

    async def _release_stale(self) -> None:
        # Cheap (one UPDATE on an index), and only when idle: a stuck hold never waits longer
        # than the setting, whichever worker notices.
        if self.clock() >= self._next_stale_check:
            self._next_stale_check = self.clock() + timedelta(seconds=min(60.0, self.settings.hold_for_recording_s))
            await self.outbox.release_stale(self.settings.hold_for_recording_s)

    async def _probe(self) -> int:
        if not self._failures or self.clock() < self._probe_at:
            return 0
        return await self.run_once(probe=True)

    async def _idle(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives
        # as the wait ends, and this loop would then never stop.
        try:
            async with asyncio.timeout(self.settings.poll_s):
                await self.outbox.wakeup.wait()
        except TimeoutError:
            return
        self.outbox.wakeup.clear()

    async def release(self) -> None:
        """Give back this worker's leases (at a clean stop) so another worker need not wait
        for them to run out; a row whose send was cut short is resent, as a replay."""
        await self.outbox.release(self.name)

    # ----------------------------------------------------------------- one row

    async def _attempt(self, row: Claimed, *, probe: bool = False) -> Settled:
        async with self._sending:
            try:
                # At most half the lease: a row waiting longer goes back unsent rather than
                # be claimed by another worker while this one still holds it.
                turn, left = await self.gate.turn(max_wait_s=self.settings.lease_s / 2, probe=probe)
            except Exception as exc:  # noqa: BLE001 - without the gate nothing is sent; the row waits
                log.warning("delivery gate unreadable (%s); row %d waits", exc, row.id)
                turn, left = Turn.LATER, self.settings.poll_s
            if turn is not Turn.GO:
                why = "delivery halted" if turn is Turn.HALTED else "waiting out the platform's Retry-After"
                return Settled(row, State.PENDING, error=why, retry_at=self.clock() + timedelta(seconds=left),
                               refund=True)
            result = await self._send(row)
            lost = await self._case_lost(row, result, probe=probe)
            await self._tell_gate(row, result, probe=probe, lost=lost)
        return self._settled(row, result, lost=lost)

    async def _case_lost(self, row: Claimed, result: DeliveryResult | str, *, probe: bool) -> bool:
        """A ``404`` to a progress step is the contract's "no such case for this organisation",
        but a wrong URL looks the same. It is about the step's case when the platform reads
        back another case of ours, or when it refused this step so before, outside a probe
        (the halt that first refusal set was lifted since: the platform took other requests)."""
        if (isinstance(result, str) or row.kind is not Kind.PROGRESS or result.outcome is not Outcome.REJECTED
                or result.status != 404):
            return False
        if row.last_status == 404 and not probe:
            return True
        try:
            other = await self.outbox.delivered_case_number(other_than=row.platform_case_no)
            if other is None:
                return False
            turn, _ = await self.gate.turn(max_wait_s=self.settings.lease_s / 4, probe=True)
            return turn is Turn.GO and (await self.client.get_case(other)).outcome is LookupOutcome.FOUND
        except Exception as exc:  # noqa: BLE001 - undecided: it halts like any 404, and is probed
            log.warning("could not read a case back to judge a 404 to step %s: %s", row.key, exc)
            return False

    async def _tell_gate(self, row: Claimed, result: DeliveryResult | str, *, probe: bool, lost: bool) -> None:
        """What holds for every request of ours, whoever got it: a Retry-After, or a refusal
        of our credentials or URL."""
        if isinstance(result, str):
            return
        try:
            if result.retry_after_s is not None and result.status in (429, 503):
                await self.gate.pause(result.retry_after_s)
            if _not_about_the_document(result) and not lost:
                await self._halt(row, result, probe=probe)
        except Exception as exc:  # noqa: BLE001 - the row's own result still settles
            log.warning("could not tell the delivery gate about %s %s: %s", row.kind, row.key, exc)

    async def _halt(self, row: Claimed, result: DeliveryResult, *, probe: bool) -> None:
        status = result.status or 0
        halt = Halt(status=status, reason=result.reason or f"HTTP {status}",
                    fix=advice(status, self.settings, _operation(row)),
                    since=self.clock().isoformat(timespec="seconds"), config=self._config,
                    document=f"{row.kind} {row.key}")
        before = await self.gate.halt(halt)
        if before is not None and before.same_fault(halt):
            await self.gate.halt(replace(halt, since=before.since))
            # Still refused: the operators are reminded at each probe (every probe_s), not per row.
            if probe:
                log.error("delivery to the national platform still HALTED since %s: %s %s. To fix: %s",
                          before.since, status, halt.reason, halt.fix)
            return
        log.error("delivery to the national platform HALTED for every document: the platform answered %s %s "
                  "to %s. Nothing is lost, every row waits; delivery resumes by itself once this is fixed "
                  "(a row is tried every %.0f s). To fix: %s", status, halt.reason, halt.document,
                  self.settings.probe_s, halt.fix)

    async def _send(self, row: Claimed) -> DeliveryResult | str:
        body = json.loads(row.body)
        if row.kind is Kind.CASE:
            return await self.client.submit_case(body, row.key)
        if row.kind is Kind.CALL_RECORD:
            return await self.client.submit_call_record(body, row.key)
        if not row.platform_case_no:
            # Claimed only after its case was delivered, so the receipt must have said it.
            return "the case this step belongs to has no platform case number"
        return await self.client.report_progress(row.platform_case_no, body)

    def _settled(self, row: Claimed, result: DeliveryResult | str, *, lost: bool = False) -> Settled:
        if isinstance(result, str):
            log.error("outbox row %d (%s %s) dead: %s", row.id, row.kind, row.key, result)
            return Settled(row, State.DEAD, error=result)
        if result.ok:
            receipt = result.body if isinstance(result.body, dict) else None
            return Settled(row, State.DELIVERED, result.status, receipt=receipt)
        error = result.reason or (f"HTTP {result.status}" if result.status else "no answer")
        if _not_about_the_document(result) and not lost:
            # Not the document's fault: it waits, uncounted, for the halt to end. Behind the
            # others, so that the probes try other rows than the one that may be at fault.
            return Settled(row, State.PENDING, result.status, f"delivery halted: {error}",
                           retry_at=self.clock() + timedelta(seconds=self.settings.probe_s), refund=True)
        if lost:
            error = (f"the platform has no case {row.platform_case_no} for us (404), although it takes our other "
                     f"requests: it lost the case, or it was never ours; {error}")
        if result.outcome is Outcome.REJECTED:
            log.warning("outbox row %d (%s %s) refused by the platform: %s %s", row.id, row.kind, row.key,
                        result.status, error)
            return Settled(row, State.DEAD, result.status, error, problems=list(map(dict, result.errors)))
        if row.attempts >= self.settings.max_attempts:
            log.error("outbox row %d (%s %s) dead after %d attempts: %s", row.id, row.kind, row.key,
                      row.attempts, error)
            return Settled(row, State.DEAD, result.status, f"gave up after {row.attempts} attempts: {error}")
        if result.retry_after_s is not None:
            told = self.clock() + timedelta(seconds=result.retry_after_s)
            self._told_until = max(self._told_until, told)
        delay = self.backoff.delay_s(row.attempts - 1, result.retry_after_s)
        return Settled(row, State.PENDING, result.status, error,
                       retry_at=self.clock() + timedelta(seconds=delay))


class DeliveryService:
    """The workers of one process, started and stopped together."""

    def __init__(self, outbox: Outbox, client: PlatformClient, settings: PlatformSettings, *,
                 backoff: Backoff | None = None, gate: SenderGate | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        backoff = backoff or Backoff(settings.backoff_base_s, settings.backoff_cap_s)
        gate = gate or LocalGate()
        self.workers = [DeliveryWorker(outbox, client, backoff, settings, name=worker_name(i), gate=gate,
                                       clock=clock)
                        for i in range(settings.workers)]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(w.run(), name=f"delivery:{w.name}") for w in self.workers]
        log.info("delivery to the national platform: %d worker(s)", len(self.workers))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, what="the delivery workers")
        self._tasks = []
        for worker in self.workers:
            try:
                await worker.release()
            except Exception as exc:  # noqa: BLE001 - leases run out on their own anyway
                log.warning("could not release the leases of %s: %s", worker.name, exc)

    @property
    def sent(self) -> int:
        return sum(w.sent for w in self.workers)



class PlatformDelivery:
    """The platform client and this process's workers, with the HTTP session they share:
    what the application (and ``hotline outbox work``) start and stop as one."""

    def __init__(self, outbox: Outbox, settings: PlatformSettings, *, backoff: Backoff | None = None,
                 gate: SenderGate | None = None) -> None:
        """``gate``: shared with every other process that delivers for this sender (a
        :class:`~delivery.gate.RedisGate`); by default one for this instance's workers only."""
        self.outbox, self.settings, self._backoff = outbox, settings, backoff
        self.gate = gate or LocalGate()
        self._session: aiohttp.ClientSession | None = None
        self.service: DeliveryService | None = None

    async def start(self) -> None:
        s = self.settings
        # One connection per request in flight: keep-alive carries the throughput.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=s.concurrency * s.workers))
        client = PlatformClient(s.url, s.org_code, s.secret, self._session, timeout_s=s.timeout_s)
        self.service = DeliveryService(self.outbox, client, s, backoff=self._backoff, gate=self.gate)
        self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self._session is not None:
            await self._session.close()


def _not_about_the_document(result: DeliveryResult) -> bool:
    """Whether a refusal is about our credentials or URL rather than the document sent (but
    see :meth:`DeliveryWorker._case_lost` for a progress step's 404)."""
    return result.outcome is Outcome.REJECTED and result.status in NOT_ABOUT_THE_DOCUMENT


def _operation(row: Claimed) -> str:
    return {Kind.CASE: "/v1/cases", Kind.CALL_RECORD: "/v1/call-records"}.get(row.kind, "/v1/cases/{no}/progress")
