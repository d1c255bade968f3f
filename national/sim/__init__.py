"""A stand-in for the national 12315 platform: the whole contract, plus faults on purpose."""

from national.sim.api import Exchange
from national.sim.faults import Faults, OutageMode
from national.sim.server import PlatformSim
from national.sim.stats import SimStats

__all__ = ["Exchange", "Faults", "OutageMode", "PlatformSim", "SimStats"]
