"""``hotline asterisk install``: the hotline's configuration, prompts and music into Asterisk."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from accounts.models import Role
from accounts.services import AccountService
from core.arguments import action, command
from core.db import make_engine, sessionmaker
from core.jurisdictions import JurisdictionTree
from core.migrate import create_schema
from core.sealing import secret_box
from core.settings import Settings
from ivr.prompts.build import PromptBuildError
from pbx_config.install import install
from pbx_config.render import AgentPhone, RenderError


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    a = settings.asterisk
    parser = command("hotline asterisk",
                     "Install the hotline's Asterisk configuration (dialplans/), prompts and music on hold.",
                     "hotline asterisk install",
                     "hotline asterisk install --etc /tmp/etc --data /tmp/data --no-prompts")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    inst = action(
        sub, "install",
        "render dialplans/*.conf from the settings and write them, with the prompts and the music on hold, "
        "into an Asterisk tree",
        "Render dialplans/*.conf from the settings ([asterisk], [ari]) and the agents' SIP accounts,\n"
        "and write them into Asterisk's configuration directory, with the prompts and the music\n"
        "on hold into its data directory. Then: asterisk -rx 'core reload'.",
        "hotline asterisk install",
        "HOTLINE_ASTERISK__TRUNK_HOST=198.51.100.10 hotline asterisk install --etc /etc/asterisk",
        "hotline asterisk install --no-prompts      # without espeak-ng and sox")
    inst.add_argument("--etc", type=Path, default=a.etc_dir, help=f"Asterisk's configuration directory "
                                                                   f"(default {a.etc_dir})")
    inst.add_argument("--data", type=Path, default=a.data_dir, help=f"Asterisk's data directory, astdatadir "
                                                                    f"(default {a.data_dir})")
    inst.add_argument("--no-prompts", action="store_true", help="do not build the prompts (espeak-ng, sox)")
    return parser


async def agent_phones(settings: Settings) -> list[AgentPhone]:
    """Every enabled agent with a SIP account, from the accounts database."""
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine, settings)
        accounts = AccountService(sessionmaker(engine), JurisdictionTree.load(settings.queues.stations_file),
                                  box=secret_box(settings))  # pjsip.conf needs the secrets in clear
        users = await accounts.list(role=Role.AGENT.value, include_disabled=False)
    finally:
        await engine.dispose()
    desk = set(settings.asterisk.desk_phones)
    return [AgentPhone.from_account(u.sip_endpoint, u.sip_password, u.display_name or u.username,
                                    desk=u.sip_endpoint in desk)
            for u in users if u.sip_endpoint and u.sip_password]


def main(settings: Settings, argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = build_parser(settings).parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        agents = asyncio.run(agent_phones(settings))
        install(settings, agents, etc_dir=args.etc, data_dir=args.data, prompts=not args.no_prompts,
                progress=lambda line: print(line, file=out, flush=True))
    except (RenderError, PromptBuildError, OSError) as exc:
        print(f"hotline asterisk: {exc}", file=err)
        return 1
    print(f"{len(agents)} agent phone(s). Load it: asterisk -rx 'core reload' "
          f"(or restart Asterisk after a change of ports or modules).", file=out)
    return 0
