"""``python -m devtools pbx-sim``: run the Asterisk 22 stand-in on its own.

Point ``hotline serve`` at it (``HOTLINE_ARI__URL``) and place calls through its control
API (see :mod:`devtools.pbx_sim.control`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from core.tasks import until_signalled
from devtools.pbx_sim.server import DEFAULT_DIALPLAN, PbxSim

DESCRIPTION = """\
Run the Asterisk 22 stand-in on its own: the ARI (REST and events WebSocket) of Asterisk 22,
running the real dialplan (dialplans/extensions.conf), with simulated callers placed through
its control API. Point the hotline at it with HOTLINE_ARI__URL. Ctrl-C or SIGTERM stops it."""

EXAMPLES = """\
examples:
  python -m devtools pbx-sim
  python -m devtools pbx-sim --port 18088 --sounds var/sounds
  HOTLINE_ARI__URL=http://127.0.0.1:8088 hotline serve          # in another terminal
  curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls?number=057112315&caller_id=13800138000'
  curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls/<channel id>/dtmf?digits=1'"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devtools pbx-sim", description=DESCRIPTION, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8088, help="ARI port (Asterisk's default is 8088)")
    p.add_argument("--username", default="hotline", help="ARI user (ari.conf; default %(default)s)")
    p.add_argument("--password", default="hotline", help="ARI password (default %(default)s)")
    p.add_argument("--dialplan", type=Path, default=DEFAULT_DIALPLAN, help="extensions.conf to run")
    p.add_argument("--sounds", type=Path, default=None,
                   help="sounds directory (var/sounds): prompts play for their real length, missing ones fail")
    p.add_argument("--recordings", type=Path, default=Path("var/spool/recording"),
                   help="the spool of recordings (Asterisk: /var/spool/asterisk/recording)")
    p.add_argument("--playback-s", type=float, default=1.0, help="length of every media without --sounds")
    return p


async def _serve(args: argparse.Namespace) -> int:
    sim = PbxSim(username=args.username, password=args.password, dialplan_path=args.dialplan,
                 sounds_dir=args.sounds, recordings_dir=args.recordings, default_playback_s=args.playback_s)
    await sim.start(args.host, args.port)
    print(f"Asterisk 22 stand-in: ARI at {sim.url}/ari, calls at {sim.url}/sim/calls (Ctrl-C stops)", flush=True)
    await until_signalled()
    await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"hotline pbx-sim: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
