"""The demo's callers: who calls, when, how long they will wait, and how long they talk.

The shapes are those call-centre data show (Brown, Gans, Mandelbaum, Sakov, Shen, Zeltyn and
Zhao, "Statistical Analysis of a Telephone Call Center: A Queueing-Science Perspective", JASA
100(469), 2005): arrivals over a short stretch of a day form a Poisson process (independent,
exponential gaps between calls); conversations last a log-normal time; each caller brings a
patience, the time they are willing to wait, and hangs up while waiting once it runs out (the
Erlang-A model). Patience is drawn log-normal here rather than exponential as in Erlang-A: an
exponential patience with a two-minute mean has one caller in sixty give up within two seconds,
while a free agent's phone is still ringing, which shows as abandoned calls with agents free
(what issue 14 saw of the old demo) rather than as a centre's behaviour. The *means* are the
demo's own (see ``CallerModel``), chosen for a ten-minute look at the system, and all can be
changed from the command line.

A caller's patience counts from the moment they have chosen in the menu (queued, asked for
their city, or put through): that is where waiting begins. They give up only while waiting;
once an agent answers they talk for their drawn time and then hang up, as a person does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.privacy import mask_phone

if TYPE_CHECKING:
    from devtools.pbx_sim.callers import SimCall
    from devtools.pbx_sim.server import PbxSim
    from ivr.prompts.catalogue import PromptCatalogue

#: The hotline numbers the callers dial (12315 and its sister lines).
NUMBERS = ("12315", "12365", "12331", "12358", "12330")
#: Where callers dial from, by the area code they dial, with the share of calls: the demo's
#: agents sit where the calls are (see DEMO_AGENTS in devtools.demo). A caller dialling the
#: bare number is placed by their mobile number, mostly somewhere nobody is staffed, so their
#: call climbs at once to the national centre; one whose number places nowhere is asked for
#: their city and keys Hangzhou's code.
AREA_CODES: tuple[tuple[str, float], ...] = (
    ("0571", 0.5),  # Hangzhou: the newcomer's city
    ("0574", 0.1),  # Ningbo
    ("010", 0.1),  # Beijing
    ("0755", 0.1),  # Shenzhen
    ("", 0.2),  # the bare number: placed by the caller's own number
)
#: What callers do in the menu, with weights: most key their choice, some key a wrong digit
#: first, some say nothing (the menu gives up and puts them through), some hang up at once.
BEHAVIOURS: tuple[tuple[str, int], ...] = (("press", 6), ("wrong-then-press", 2), ("silent", 1), ("hang-up-early", 1))
#: Log-normal conversations: sigma of the underlying normal (a spread like the one Brown et
#: al. report: most calls near the median, a long tail of long ones).
TALK_SIGMA = 0.6
#: Log-normal patience, wider: with a 120 s mean, one caller in forty gives up within 10 s of
#: waiting, one in ten within 20 s, and some would wait ten minutes.
PATIENCE_SIGMA = 1.0


@dataclass(frozen=True)
class CallerModel:
    """The population the callers are drawn from. Times in seconds, rate in calls per minute."""

    rate_per_min: float = 2.5
    patience_mean_s: float = 120.0
    talk_mean_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("rate_per_min", "patience_mean_s", "talk_mean_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Caller:
    """One simulated caller, drawn before the call: what they dial and do, and their times."""

    number: str
    caller_id: str
    behaviour: str  # one of BEHAVIOURS
    digit: str
    #: Seconds after the previous caller that this one dials.
    gap_s: float
    patience_s: float
    talk_s: float


def draw_callers(model: CallerModel, seed: int = 12315) -> Iterator[Caller]:
    """An endless, reproducible stream of callers (the same seed gives the same callers)."""
    rng = random.Random(seed)
    codes, code_weights = zip(*AREA_CODES, strict=True)
    behaviours, behaviour_weights = zip(*BEHAVIOURS, strict=True)
    # mean of a log-normal = exp(mu + sigma^2 / 2): mu from the wanted mean.
    talk_mu = math.log(model.talk_mean_s) - TALK_SIGMA**2 / 2
    patience_mu = math.log(model.patience_mean_s) - PATIENCE_SIGMA**2 / 2
    while True:
        yield Caller(
            number=rng.choices(codes, code_weights)[0] + rng.choice(NUMBERS),
            caller_id=f"1{rng.choice('35789')}{rng.randrange(10**9):09d}",
            behaviour=rng.choices(behaviours, behaviour_weights)[0],
            digit=rng.choice("1230"),
            # A Poisson process: exponential gaps with mean 60 / rate seconds.
            gap_s=rng.expovariate(model.rate_per_min / 60),
            patience_s=rng.lognormvariate(patience_mu, PATIENCE_SIGMA),
            talk_s=rng.lognormvariate(talk_mu, TALK_SIGMA),
        )


@dataclass(frozen=True)
class Outcome:
    """How a call went, as the caller lived it."""

    #: "answered", "gave up waiting", "hung up in the menu", "ended by the hotline".
    result: str
    agent: str | None = None
    #: Seconds from the choice in the menu to the answer (or to giving up).
    waited_s: float = 0.0
    talked_s: float = 0.0


async def play_caller(sim: PbxSim, prompts: PromptCatalogue, caller: Caller, *, time_scale: float = 1.0,
                      prompt_timeout_s: float = 120.0) -> Outcome:
    """Place ``caller``'s call and live it to its end; the caller's times are scaled by ``time_scale``."""
    call = await sim.place_call(caller.number, caller_id=caller.caller_id)
    try:
        if caller.behaviour == "hang-up-early":
            await call.wait_for_playback(prefix="sound:hotline/welcome", timeout=prompt_timeout_s)
            await asyncio.sleep(1.0 * time_scale)
            return Outcome("hung up in the menu")
        await _choose(call, prompts, caller, prompt_timeout_s)
        return await _wait_and_talk(call, caller, time_scale)
    finally:
        if not call.ended:
            await call.hangup()


async def _choose(call: SimCall, prompts: PromptCatalogue, caller: Caller, timeout: float) -> None:
    """The menu: key the choice (after a wrong key, or not at all) until the call is queued or
    put through; a caller asked for their city keys Hangzhou's code."""
    await call.wait_for_playback(prefix=prompts.media("main_menu"), timeout=timeout)
    if caller.behaviour == "wrong-then-press":
        call.send_dtmf("9")
        await call.wait_for_playback(prefix=prompts.media("no_match"), timeout=timeout)
    if caller.behaviour != "silent":
        call.send_dtmf(caller.digit)
    through = {prompts.media("queued"), prompts.media("transfer_operator"), prompts.media("connecting_agent")}
    ask_city = prompts.media("ask_city")
    await call.wait_for(lambda: (through | {ask_city}) & set(call.played) or call.talking_to or call.ended,
                        timeout=timeout,
                        what="the queue, an agent or the city question")
    if ask_city in call.played and call.talking_to is None:
        call.send_dtmf("0571#")


async def _wait_and_talk(call: SimCall, caller: Caller, time_scale: float) -> Outcome:
    loop = asyncio.get_running_loop()
    began = loop.time()
    agent = await call.wait_answered(timeout=caller.patience_s * time_scale)
    waited = (loop.time() - began) / time_scale
    if agent is None:
        return Outcome("ended by the hotline" if call.ended else "gave up waiting", waited_s=waited)
    # The conversation ends when the caller has said everything, or earlier if the line drops.
    with contextlib.suppress(AssertionError):
        await call.wait_ended(timeout=caller.talk_s * time_scale)
    return Outcome("answered", agent=agent, waited_s=waited, talked_s=(loop.time() - began) / time_scale - waited)


def describe(n: int, caller: Caller) -> str:
    """A caller's line in the demo's output (the number masked)."""
    return (f"call {n:>4}: {mask_phone(caller.caller_id)} dials {caller.number} ({caller.behaviour}; "
            f"patience {caller.patience_s:.0f} s, would talk {caller.talk_s:.0f} s)")
