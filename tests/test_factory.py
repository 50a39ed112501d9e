"""The wiring: the bot's session to Telegram (bot.factory.create_bot) and the scheduler
(bot.factory.create_scheduler)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.config import Settings
from bot.factory import create_bot, create_scheduler
from tests.fake_proxy import FakeProxy
from tests.fake_telegram import FakeTelegram


async def test_with_telegram_proxy_set_every_call_goes_through_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    with FakeTelegram() as telegram, FakeProxy("ops", "pr0xy-pa55") as proxy:
        settings = Settings(
            bot_token="42:TEST", telegram_api_url=telegram.url, telegram_proxy=proxy.url
        )
        bot = create_bot(settings)
        try:
            assert (await bot.get_me()).is_bot
        finally:
            await bot.session.close()
    assert proxy.tunnels == [telegram.url.removeprefix("http://")]


# The bot's own logging (bot.logs) takes the exception off each record as it is made.
LOGGING = pytest.mark.parametrize("masked", [False, True], ids=["plain logging", "bot.logs"])


@LOGGING
async def test_a_job_under_way_at_shutdown_ends_without_a_traceback(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest, masked: bool
) -> None:
    if masked:
        request.getfixturevalue("installed")
    started = asyncio.Event()

    async def minute_job() -> None:
        started.set()
        await asyncio.sleep(30)

    scheduler = create_scheduler()
    scheduler.add_job(minute_job, id="minute")  # no trigger: runs once, now
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.INFO, logger="apscheduler"):
        scheduler.shutdown(wait=False)
        for _ in range(3):  # the cancelled job's callbacks run
            await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_text]


@LOGGING
async def test_a_job_that_fails_is_still_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest, masked: bool
) -> None:
    if masked:
        request.getfixturevalue("installed")
    done = asyncio.Event()

    async def broken_job() -> None:
        done.set()
        raise RuntimeError("boom")

    scheduler = create_scheduler()
    scheduler.add_job(broken_job, id="broken")
    with caplog.at_level(logging.INFO, logger="apscheduler"):
        scheduler.start()
        await asyncio.wait_for(done.wait(), 5)
        for _ in range(3):
            await asyncio.sleep(0)
        scheduler.shutdown(wait=False)
    assert any("RuntimeError: boom" in (r.exc_text or "") for r in caplog.records)
