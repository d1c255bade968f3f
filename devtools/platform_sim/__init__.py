"""A stand-in for the national 12315 platform: the whole contract, plus faults on purpose."""

from devtools.platform_sim.api import Exchange
from devtools.platform_sim.faults import Faults, OutageMode
from devtools.platform_sim.server import PlatformSim
from devtools.platform_sim.stats import SimStats

__all__ = ["Exchange", "Faults", "OutageMode", "PlatformSim", "SimStats"]
