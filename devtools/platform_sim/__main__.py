"""``python -m devtools platform-sim``: run the national 12315 platform stand-in on its own.

Point the delivery (``HOTLINE_PLATFORM__URL``, ``__ORG_CODE``, ``__SECRET``) at it, and
change its faults while it runs::

    curl -X PUT http://127.0.0.1:8090/sim/faults -d '{"error_rate": 0.3, "drop_rate": 0.1}'
    curl -X PUT http://127.0.0.1:8090/sim/faults -d '{"time_scale": 0.01, "outage_s": 600}'
    curl http://127.0.0.1:8090/sim/stats
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from core.tasks import until_signalled
from devtools.platform_sim.faults import Faults, OutageMode
from devtools.platform_sim.server import PlatformSim

#: The organisation of the default settings (``[platform]`` in ``core/settings.py``).
DEMO_ORG = "DEMO330100=demo-secret"


def _org(text: str) -> tuple[str, str]:
    code, sep, secret = text.partition("=")
    if not sep or not code or not secret:
        raise argparse.ArgumentTypeError(f"expected CODE=SECRET, got {text.split('=')[0]!r}=...")
    return code, secret


def _latency(text: str) -> tuple[float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN,MAX, got {text!r}") from None
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"expected SECONDS or MIN,MAX, got {text!r}")


_EXAMPLES = """\
examples:
  python -m devtools platform-sim                                   # on 127.0.0.1:8090, contract under /api
  python -m devtools platform-sim --port 0 --org 913301000000000001=s3cret
  python -m devtools platform-sim --error-rate 0.3 --drop-rate 0.1  # a platform that fails a third of the time
  python -m devtools platform-sim --rate-limit 5 --retry-after 2    # 429 with Retry-After above 5 requests/s

while it runs, change its faults and read what it stored:
  curl -X PUT http://127.0.0.1:8090/sim/faults -d '{"error_rate": 0.3, "drop_rate": 0.1}'
  curl http://127.0.0.1:8090/sim/stats"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devtools platform-sim", description=__doc__.splitlines()[0],
                                epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--base-path", default="/api",
                   help="where the contract's paths start (default /api, '' for none); signatures cover "
                        "the paths after it, as the contract says")
    p.add_argument("--org", type=_org, action="append", metavar="CODE=SECRET",
                   help=f"an organisation and its shared secret; repeatable (default {DEMO_ORG.split('=')[0]})")
    p.add_argument("--rate-limit", type=float, default=None, metavar="PER_S", help="requests per second, then 429")
    faults = p.add_argument_group("faults (all durations in platform seconds, see --time-scale)")
    faults.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500/502/503/429/408")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="fraction of connections closed unanswered")
    faults.add_argument("--drop-after-store-share", type=float, default=0.5,
                        help="of the drops, the fraction that happens after the request was stored")
    faults.add_argument("--latency", type=_latency, default=(0.0, 0.0), metavar="MIN[,MAX]")
    faults.add_argument("--retry-after", type=float, default=1.0, help="what a random 429/503 asks to wait")
    faults.add_argument("--outage-mode", choices=[m.value for m in OutageMode], default=OutageMode.UNAVAILABLE.value)
    faults.add_argument("--time-scale", type=float, default=1.0, help="real seconds per platform second")
    faults.add_argument("--seed", type=int, default=0)
    return p


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(error_rate=args.error_rate, drop_rate=args.drop_rate,
                  drop_after_store_share=args.drop_after_store_share, latency_s=args.latency,
                  retry_after_s=args.retry_after, outage_mode=OutageMode(args.outage_mode),
                  time_scale=args.time_scale, seed=args.seed)


async def _serve(sim: PlatformSim, host: str, port: int) -> int:
    await sim.start(host, port)
    print(f"national 12315 platform stand-in: contract at {sim.url}, control at {sim.root_url}/sim/stats "
          f"(Ctrl-C stops)", flush=True)
    await until_signalled()
    await sim.stop()
    return 0


def _run(main: Coroutine[Any, Any, int]) -> int:
    # uvloop where installed, as `hotline serve` does: the benchmark drives this process hard.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    orgs = dict(args.org or [_org(DEMO_ORG)])
    try:
        sim = PlatformSim(orgs=orgs, base_path=args.base_path, faults=_faults(args),
                          rate_limit_per_s=args.rate_limit)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return _run(_serve(sim, args.host, args.port))
    except OSError as exc:
        print(f"hotline platform-sim: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
