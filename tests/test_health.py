"""Each condition of /healthz on its own, with injected clocks and short thresholds."""

import asyncio
import contextlib
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramServerError
from aiogram.methods import GetUpdates, GetWebhookInfo, SendMessage
from aiogram.types import WebhookInfo
from cryptography.fernet import Fernet

from bot.observability import ObservabilitySettings
from bot.ops import health as health_module
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.storage.crypto import SecretBox
from bot.storage.models import Chat, Notification
from bot.telegram.observe import TelegramWatch, WebhookWatch
from tests.alerting_fixtures import START, Clock, add
from tests.web_helpers import Frozen, Ticks, healthy_but, served


async def answered(bot, method):
    return "ok"


async def refused(bot, method):
    raise TelegramServerError(method, "Bad Gateway")


async def bad_request(bot, method):
    raise TelegramBadRequest(method, "Bad Request: chat not found")


async def test_a_long_poll_is_owed_an_answer_only_after_its_timeout():
    ticks, metrics = Ticks(), Metrics()
    watch = TelegramWatch(metrics, clock=ticks)
    await watch(answered, None, GetUpdates(timeout=10))
    ticks.now += 3
    assert watch.silence() == 3

    async def hanging(bot, method):
        ticks.now += 12  # answered 2 s after the poll's own timeout
        assert watch.silence() == 2
        return "ok"

    await watch(hanging, None, GetUpdates(timeout=10))
    assert watch.silence() == 0


async def test_failed_polls_count_as_silence_and_as_errors():
    ticks, metrics = Ticks(), Metrics()
    watch = TelegramWatch(metrics, clock=ticks)
    for _ in range(3):
        ticks.now += 2
        with pytest.raises(TelegramServerError):
            await watch(refused, None, GetUpdates(timeout=10))
    assert watch.silence() == 6
    with pytest.raises(TelegramServerError):
        await watch(refused, None, SendMessage(chat_id=1, text="x"))
    errors = metrics.telegram_errors
    assert errors.labels("GetUpdates", "5xx")._value.get() == 3
    assert errors.labels("SendMessage", "5xx")._value.get() == 1
    assert metrics.last_telegram_failure.what == "SendMessage: Bad Gateway"


@pytest.fixture
def world(sessionmaker):
    clock = Clock()
    checks = SimpleNamespace(last_dispatch_at=START, last_completed_at=START)
    scheduler = SimpleNamespace(running=True)
    watch = TelegramWatch(Metrics(), clock=Ticks())
    settings = ObservabilitySettings(
        health_scheduler_seconds=5, health_outbox_seconds=60, health_checks_factor=2
    )
    health = Health(
        settings,
        sessionmaker=sessionmaker,
        telegram=watch,
        scheduler=scheduler,
        checks=checks,
        now=clock,
    )
    return SimpleNamespace(health=health, clock=clock, checks=checks, scheduler=scheduler)


async def test_scheduler_stopped_or_idle(world):
    assert await world.health.problems() == []
    world.clock.advance(seconds=6)
    assert await world.health.problems() == ["scheduler: no look for due accounts for 6 s"]
    world.scheduler.running = False
    assert await world.health.problems() == [
        "scheduler: not running (it starts once Telegram answers)"
    ]


async def test_checks_late_only_while_accounts_are_due(world, sessionmaker):
    box = SecretBox(Fernet.generate_key())
    await add(sessionmaker, box, -1, "shop", interval=60)  # due at START
    world.clock.advance(seconds=120)
    world.checks.last_dispatch_at = world.clock()
    assert await world.health.problems() == []  # twice the interval: not yet late
    world.clock.advance(seconds=1)
    world.checks.last_dispatch_at = world.clock()
    assert await world.health.problems() == ["checks: none completed for 121 s"]
    world.checks.last_completed_at = world.clock()
    assert await world.health.problems() == []


async def test_outbox_stuck(world, sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=5, type="private"))
        session.add(Notification(chat_id=5, kind="low", text="x", created_at=START))
        await session.commit()
    world.clock.advance(seconds=61)
    world.checks.last_dispatch_at = world.clock()
    assert await world.health.problems() == ["outbox: a notification undelivered for 61 s"]
    async with sessionmaker() as session:
        notification = await session.get(Notification, 1)
        notification.sent_at = START + timedelta(seconds=61)
        await session.commit()
    assert await world.health.problems() == []


async def test_a_database_that_fails_is_a_problem():
    def unreachable():
        raise OSError("disk gone")

    assert await healthy_but(unreachable).problems() == ["database: OSError"]


async def test_a_database_and_redis_that_never_answer_are_problems_within_seconds(
    monkeypatch, caplog
):
    monkeypatch.setattr(health_module, "ANSWER_TIMEOUT", 0.05)

    class FrozenRedis:
        async def ping(self):
            await asyncio.Event().wait()

    async with served(healthy_but(Frozen, FrozenRedis()), Metrics(), Frozen) as get:
        status, body = await get("/healthz")
    assert status == 503
    assert json.loads(body) == {
        "status": "unhealthy",
        "problems": ["redis: timeout", "database: timeout"],
    }
    assert not any(record.exc_info for record in caplog.records)


async def test_webhook_mode_counts_any_answer_and_no_poll():
    ticks, metrics = Ticks(), Metrics()
    watch = TelegramWatch(metrics, webhook=True, clock=ticks)
    ticks.now += 50
    await watch(answered, None, GetWebhookInfo())
    ticks.now += 3
    with pytest.raises(TelegramBadRequest):  # refused, yet an answer
        await watch(bad_request, None, SendMessage(chat_id=1, text="x"))
    ticks.now += 4
    with pytest.raises(TelegramServerError):  # no answer of the Bot API
        await watch(refused, None, GetWebhookInfo())
    assert watch.silence() == 4


def webhook_info(**fields) -> WebhookInfo:
    return WebhookInfo(url=HOOK, has_custom_certificate=False, **fields)


HOOK = "https://bot.example.com/tg/hook"


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        (None, None),
        (webhook_info(pending_update_count=0), None),
        (
            webhook_info(
                pending_update_count=3,
                last_error_date=START - timedelta(seconds=30),
                last_error_message="Connection refused",
            ),
            "telegram: webhook: Telegram cannot deliver updates (Connection refused), 3 waiting",
        ),
        # Delivered since (nothing waits), or too long ago: over.
        (
            webhook_info(
                pending_update_count=0,
                last_error_date=START - timedelta(seconds=30),
                last_error_message="Connection refused",
            ),
            None,
        ),
        (
            webhook_info(
                pending_update_count=3,
                last_error_date=START - timedelta(seconds=121),
                last_error_message="Connection refused",
            ),
            None,
        ),
        (
            WebhookInfo(url="", has_custom_certificate=False, pending_update_count=3),
            "telegram: webhook: Telegram has another URL or none; was this token used elsewhere?",
        ),
    ],
)
async def test_webhook_delivery_problems_as_get_webhook_info_tells_them(info, problem):
    webhook = WebhookWatch(HOOK, every=60)

    class Answers:
        async def get_webhook_info(self):
            if info is None:
                raise TelegramServerError(GetWebhookInfo(), "Bad Gateway")
            return info

    running = asyncio.create_task(webhook.run(Answers()))
    await asyncio.sleep(0)  # its first look
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    health = Health(
        ObservabilitySettings(health_telegram_seconds=120),
        sessionmaker=lambda: None,
        telegram=TelegramWatch(Metrics(), webhook=True, clock=Ticks()),
        scheduler=SimpleNamespace(running=True),
        checks=SimpleNamespace(last_dispatch_at=START, last_completed_at=START),
        webhook=webhook,
        now=Clock(),
    )
    problems = await health.problems()
    telegram = [p for p in problems if p.startswith("telegram")]
    assert telegram == ([problem] if problem else [])


async def test_a_delivery_error_is_over_once_updates_arrive_again():
    # Telegram reported a refused delivery while this replica started; then it delivered.
    webhook = WebhookWatch(HOOK, every=60)
    info = webhook_info(
        pending_update_count=1,
        last_error_date=START - timedelta(seconds=5),
        last_error_message="Wrong response from the webhook: 503 Service Unavailable",
    )

    class Answers:
        async def get_webhook_info(self):
            return info

    running = asyncio.create_task(webhook.run(Answers()))
    await asyncio.sleep(0)  # its first look
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert webhook.problem(START, within=120) is not None
    webhook.delivered()
    assert webhook.problem(START, within=120) is None


async def test_replicas_are_unhealthy_while_redis_is_unreachable(sessionmaker, redis_url):
    from bot.fleet.connection import connect

    up, down = connect(redis_url), connect("redis://127.0.0.1:1/0")
    try:
        assert await healthy_but(sessionmaker, up).problems() == []
        assert await healthy_but(sessionmaker, down).problems() == ["redis: ConnectionError"]
    finally:
        await up.aclose()
        await down.aclose()
