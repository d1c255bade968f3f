"""The demo's people: the simulated agents (their phones answer by themselves; three of them in
Hangzhou beside the newcomer), one agent for the newcomer (whose phone is answered from the
browser desktop), a supervisor of Zhejiang
and an administrator. Created once; a second demo run finds them there."""

from __future__ import annotations

import webbrowser

from accounts.services import AccountService
from hotline.app import Application

#: The demo's password for every account. Printed, never used outside the demo.
DEMO_PASSWORD = "hotline-demo-12315"
LINES = ["general", "quality", "food_drug", "price", "intellectual_property"]

#: (username, role, jurisdiction, display name, agent id)
PEOPLE = [
    ("agent1001", "agent", "330200", "宁波 话务员 1001", "1001"),
    ("agent1002", "agent", "110100", "北京 话务员 1002", "1002"),
    ("agent1003", "agent", "440300", "深圳 话务员 1003", "1003"),
    ("agent1004", "agent", "000000", "全国 话务员 1004", "1004"),
    ("agent1005", "agent", "330100", "杭州 话务员 1005 (you)", "1005"),
    ("agent1006", "agent", "330100", "杭州 话务员 1006", "1006"),
    ("agent1007", "agent", "330100", "杭州 话务员 1007", "1007"),
    ("agent1008", "agent", "330100", "杭州 话务员 1008", "1008"),
    ("agent1009", "agent", "000000", "全国 话务员 1009", "1009"),
    ("zhejiang", "supervisor", "330000", "浙江 值班长", None),
    ("admin", "admin", "000000", "管理员", None),
]
#: The newcomer's agent: the phone rings until answered on the desktop.
HUMAN_AGENT = "1005"


async def create_people(accounts: AccountService) -> None:
    for username, role, home, name, agent_id in PEOPLE:
        if await accounts.by_username(username) is not None:
            continue
        await accounts.add_user(
            username=username, password=DEMO_PASSWORD, role=role, jurisdiction=home, display_name=name,
            agent_id=agent_id, sip_endpoint=f"PJSIP/{agent_id}" if agent_id else None,
            sip_password=f"demo-sip-{agent_id}" if agent_id else None, lines=LINES if agent_id else None,
        )


def welcome(app: Application, open_browser: bool) -> None:
    url = app.web_url or "(the HTTP API is off)"
    print(f"[demo] desktop and wallboard at {url}/  — password for every account: {DEMO_PASSWORD}", flush=True)
    print(f"[demo]   agent desktop: log in as agent{HUMAN_AGENT}, press 'log in to queues' and 'available';"
          " calls ring there and you answer them in the browser", flush=True)
    print("[demo]   wallboard: log in as zhejiang (Zhejiang supervisor) or admin (national)", flush=True)
    if open_browser and app.web_url:
        try:
            webbrowser.open(f"{app.web_url}/")
            webbrowser.open(f"{app.web_url}/wallboard/")
        except Exception as exc:  # noqa: BLE001 - no browser on a server is fine: the URL is printed
            print(f"[demo] could not open a browser ({exc}); open {url}/ yourself", flush=True)
