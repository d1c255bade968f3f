"""`hotline serve` answers on its HTTP port: the intake API for web, WeChat and app
complaints, and its own OpenAPI description."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from core.settings import Settings
from hotline.app import Application
from tests.fixtures.app import running
from tests.support.documents import channel_complaint

WECHAT_KEY = "wechat-key-for-tests-0123456789"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    key_sha256 = hashlib.sha256(WECHAT_KEY.encode()).hexdigest()
    intake = settings.intake.model_copy(update={"api_key_sha256": {"wechat": key_sha256}})
    async with running(settings.model_copy(update={"intake": intake})) as app:
        yield app


async def test_a_wechat_complaint_sent_to_the_running_service_becomes_a_ticket_owed_to_the_platform(
    app: Application,
) -> None:
    key = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{app.web_url}/api/v1/intake/cases", json=channel_complaint(),
                             headers={"X-Api-Key": WECHAT_KEY, "Idempotency-Key": key}) as resp:
            assert resp.status == 201, await resp.text()
        async with http.get(f"{app.web_url}/api/openapi.yaml") as resp:
            assert resp.status == 200 and "openapi: 3.1" in await resp.text()
        async with http.post(f"{app.web_url}/api/v1/intake/cases", json=channel_complaint(),
                             headers={"X-Api-Key": "wrong", "Idempotency-Key": str(uuid.uuid4())}) as resp:
            assert resp.status == 401 and (await resp.json())["code"]
    ticket = await app.tickets.get(key)
    assert ticket.status == "completed" and ticket.channel == "wechat"
    [row] = await app.outbox.rows(kind="case")
    assert row.key == key and row.state == "pending"  # no platform in this test: it waits
