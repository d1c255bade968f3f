"""The queue engine's tests' vocabulary: jurisdictions and lines, agents and waiting calls
(the engine itself is the ``engine`` fixture of ``tests/queues/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from queues.engine import Agent, AgentState, Offer, QueueEngine, WaitingCall

COUNTY, OTHER_COUNTY, CITY, PROVINCE = "330106", "330108", "330100", "330000"
LINE, QUALITY = "12315", "12365"


def agent(agent_id: str, home: str = COUNTY, lines: Iterable[str] = (LINE,),
          languages: Iterable[str] = ("zh-CN",)) -> Agent:
    return Agent(agent_id, home, frozenset(lines), frozenset(languages), f"PJSIP/{agent_id}")


def call(call_id: str, jurisdiction: str = COUNTY, line: str = LINE, **kw: object) -> WaitingCall:
    return WaitingCall(call_id, f"ch-{call_id}", jurisdiction, line, **kw)  # type: ignore[arg-type]


async def ready(engine: QueueEngine, *agents: Agent) -> list[Offer | None]:
    """Each agent logged in and made available; what each was offered at once."""
    offers = []
    for a in agents:
        await engine.login(a)
        offers.append(await engine.set_available(a.agent_id))
    return offers


async def state(engine: QueueEngine, agent_id: str) -> AgentState:
    info = await engine.agent(agent_id)
    assert info is not None
    return info["state"]
