"""The demo's agents fill in a ticket for each call they answered, and the demo shows the
national platform (its stand-in, with some failures injected) receiving each exactly once."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from callrecords.models import CallRecord
from callrecords.payload import handling_org
from core.settings import Settings
from hotline.app import Application

if TYPE_CHECKING:
    # Only for annotations: start_platform imports the stand-in when the demo starts.
    from devtools.platform_sim.server import PlatformSim

#: What the demo's callers complain about (a Hangzhou shop; the credit code's check
#: character is right, so the platform accepts it).
RESPONDENT = {"name": "杭州示例电器有限公司", "credit_code": "91330106MA2B3C4D5D", "region": "330106",
              "address": "西湖区文三路 100 号"}
SUMMARY = {"complaint": "购买的电水壶使用三天后漏电，商家拒绝退货。",
           "report": "商店出售过期食品，多次看到。",
           "consultation": "网购七天无理由退货的规定是怎样的？"}


async def start_platform(settings: Settings) -> PlatformSim:
    """The platform stand-in where the settings point, failing one request in ten."""
    from devtools.platform_sim.faults import Faults
    from devtools.platform_sim.server import PlatformSim

    url = urlsplit(settings.platform.url)
    sim = PlatformSim(orgs={settings.platform.org_code: settings.platform.secret}, base_path=url.path.rstrip("/"),
                      faults=Faults(error_rate=0.1, retry_after_s=1, seed=12315))
    await sim.start(host=url.hostname or "127.0.0.1", port=url.port or 8090)
    return sim


def draft_for(record: CallRecord) -> dict[str, Any]:
    case_type = record.choice if record.choice in SUMMARY else "consultation"
    draft: dict[str, Any] = {
        "case_type": case_type, "channel": "hotline", "hotline_number": record.hotline_number,
        "business_line": record.business_line, "call_id": record.call_id, "agent_id": record.agent_id,
        "handling": handling_org(record.jurisdiction) or {"region": "000000", "level": "national"},
        "summary": SUMMARY[case_type], "received_at": record.answered_at or record.started_at,
    }
    if record.caller_phone and record.caller_phone.isdigit():
        draft["caller"] = {"phone": record.caller_phone}
    if case_type != "consultation":
        draft["respondent"] = dict(RESPONDENT)
    return draft


async def file_tickets(app: Application, records: list[CallRecord]) -> list[str]:
    """One completed ticket per answered call, as its agent would fill it in."""
    ids = []
    for record in records:
        if record.outcome != "answered" or not record.agent_id:
            continue
        ticket = await app.tickets.create(draft_for(record), by=record.agent_id)
        ticket = await app.tickets.complete(ticket.id, by=record.agent_id, version=ticket.version)
        ids.append(ticket.id)
    return ids


async def print_deliveries(app: Application, platform: PlatformSim, ticket_ids: list[str],
                           timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        tickets = [await app.tickets.get(t) for t in ticket_ids]
        records = await app.outbox.counts()
        if all(t.platform_case_no for t in tickets) and not records.get(("call_record", "pending")):
            break
        await asyncio.sleep(0.2)
    print(f"\n{'ticket':<38} {'type':<13} {'delivery':<10} platform case no.")
    for ticket_id in ticket_ids:
        t = await app.tickets.get(ticket_id)
        print(f"{t.id:<38} {t.case_type:<13} {t.delivery_state:<10} {t.platform_case_no or '-'}")
    stats = platform.stats
    faults = sum(stats.faults_injected.values())
    print(f"national platform: {stats.stored} case(s) and {stats.call_records_stored} call record(s) stored, "
          f"{faults} failure(s) injected and retried, {len(stats.duplicates())} stored twice\n", flush=True)
