"""What the desktop's API says to an agent reads as words in the agent's language: the platform's
problems with a ticket (checked, submitted, fields that cannot be stored) and the refusals of
actions that make no sense now, in Chinese and in English, carry no identifiers, codes of values,
patterns or programming words (``tests.support.wording.developer_text``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.desktop import Browser, Desk, answered_call, ready_agent
from tests.support.wording import developer_text

pytestmark = pytest.mark.slow

LANGUAGES = {"zh-CN": "message_zh", "en-US": "message_en"}


async def said(agent: Browser, language: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": agent.csrf, "Accept-Language": language}
    async with agent.http.request(method, agent.url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def words_of(answer: Any, language: str) -> list[str]:
    """Every sentence of an answer a page may show in ``language``."""
    texts = []
    if isinstance(answer, dict):
        if isinstance(answer.get("message"), str):
            texts.append(answer["message"])
        for item in answer.get("errors") or answer.get("problems") or answer.get("delivery_problems") or []:
            texts += [item["message"], item[LANGUAGES[language]]]
    return texts


def developer_words(answer: Any, language: str, allow: tuple[str, ...] = ()) -> dict[str, list[str]]:
    return {text: found for text in words_of(answer, language)
            if (found := developer_text(text, language, allow=allow))}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_problems_of_a_ticket_read_as_words(desk: Desk, language: str) -> None:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)
    ticket = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "case_type": "report", "business_line": "general",
        "caller": {"phone": "123", "anonymous": True},
        "respondent": {"name": "杭州某某电器有限公司", "credit_code": "91330106MA2B3C4D5X", "region": "33010"},
        "subject": {"kind": "goods", "amount": "199.00", "purchased_on": "2026-11-02"},
        "summary": "漏电", "handling": {"region": "330100", "level": "station"}}}, status=201)
    path = f"/api/desktop/tickets/{ticket['id']}"

    status, checked = await said(agent, language, "POST", f"{path}/validate")
    assert status == 200 and len(checked["problems"]) >= 5, checked
    assert {p["code"] for p in checked["problems"]} >= {"bad_check_digit", "bad_format", "too_short", "mismatch"}
    assert not developer_words(checked, language)

    status, refused = await said(agent, language, "POST", f"{path}/complete", {"version": ticket["version"]})
    assert status == 422 and refused["errors"]
    assert not developer_words(refused, language)

    # Values the ticket cannot even store: each named on its field, in words.
    status, unstorable = await said(agent, language, "PATCH", path, {"version": ticket["version"], "fields": {
        "subject": {"amount": "a lot", "purchased_on": "2026-02-30"}, "respondent": {"address": "长" * 3000}}})
    assert status == 422 and {p["field"] for p in unstorable["errors"]} == {
        "subject.amount", "subject.purchased_on", "respondent.address"}
    assert not developer_words(unstorable, language)

    # A value out of the form's lists (a page of another version) and a line the number does not take.
    status, listed = await said(agent, language, "PATCH", path, {"version": ticket["version"], "fields": {
        "handling": {"level": "village"}, "demand": "everything"}})
    assert status == 200
    status, checked = await said(agent, language, "POST", f"{path}/validate")
    assert {p["code"] for p in checked["problems"]} >= {"not_allowed"}
    assert not developer_words(checked, language)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_refusals_of_actions_read_as_words(desk: Desk, language: str) -> None:
    await desk.users.agent(agent_id="1001")
    idle = await desk.browser_for("agent1001")
    answers = [
        await said(idle, language, "POST", "/api/desktop/state", {"state": "available"}),  # not in the queues
        await said(idle, language, "POST", "/api/desktop/call/hold", {"on": True}),  # no call
    ]
    agent = await ready_agent(desk, "1002")
    call_id = await answered_call(desk, agent)
    answers.append(await said(agent, language, "POST", "/api/desktop/state", {"state": "break", "reason": "lunch"}))
    answers.append(await said(agent, language, "POST", "/api/desktop/call/transfer",
                              {"queue": {"jurisdiction": "110000", "line": "price"}}))  # nobody there
    answers.append(await said(agent, language, "POST", "/api/desktop/tickets",
                              {"call_id": call_id, "fields": {"agent_id": "9999"}}))  # set by the desktop
    status, ticket = await said(agent, language, "POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "respondent": {"name": "杭州示例电器有限公司", "credit_code": "91330106MA2B3C4D5D", "region": "330106"},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。"}})
    assert status == 201
    path = f"/api/desktop/tickets/{ticket['id']}"
    await agent.ok("PATCH", path, {"version": ticket["version"], "fields": {"demand": "refund"}})
    answers.append(await said(agent, language, "PATCH", path, {"version": ticket["version"], "fields": {}}))  # stale
    await agent.ok("POST", f"{path}/complete", {"version": ticket["version"] + 1})
    answers.append(await said(agent, language, "PATCH", path, {"version": ticket["version"] + 2, "fields": {}}))
    missing = "00000000-0000-4000-8000-000000000000"
    answers.append(await said(agent, language, "GET", f"/api/desktop/tickets/{missing}"))
    assert [status for status, _ in answers] == [409, 409, 409, 409, 422, 409, 409, 404]
    for _status, answer in answers:
        assert answer["message"], answer
        assert not developer_words(answer, language, allow=(missing,)), answer
