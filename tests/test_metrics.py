"""Metrics as Prometheus reads them: parsed with prometheus_client's own parser."""

import contextlib
import logging
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import GetUpdates
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, update

from bot import logs
from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import Checks
from bot.ops import health
from bot.ops.metrics import LastHour, Metrics
from bot.ops.smsc_watch import CountingFetcher, ObservedGuard
from bot.smsc.client import Credentials
from bot.smsc.errors import SmscProtocolError, SmscUnavailable
from bot.smsc.guard import BalanceGuard
from bot.storage.engine import create_engine, create_sessionmaker
from bot.storage.models import Account, AccountState, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from bot.telegram.observe import TelegramWatch
from tests.alerting_fixtures import START, Clock, NoOutbox, Smsc, add, run
from tests.web_helpers import Frozen, served

SHOP = {"account": "shop", "login": "shop", "site": "smsc.ru", "chat_id": "-1"}


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


async def scraped(get) -> dict[tuple[str, tuple], float]:
    """GET /metrics of the bot's server (tests.web_helpers.served), parsed."""
    status, body = await get("/metrics")
    assert status == 200
    return samples(body)


async def test_checks_fill_balances_counts_and_alerts_and_a_removed_account_vanishes(
    sessionmaker, box
):
    clock, metrics, smsc = Clock(), Metrics(now=Clock()), Smsc()
    guard = ObservedGuard(
        CountingFetcher(smsc, metrics), metrics=metrics, cache_seconds=0, now=clock
    )
    checks = Checks(
        sessionmaker,
        guard,
        box,
        Monitor(TelegramRenderer(create_i18n()), now=clock),
        NoOutbox(),
        now=clock,
        rng=random.Random(1),
        metrics=metrics,
    )
    await add(sessionmaker, box, -1, "shop")
    await add(sessionmaker, box, -2, "other")
    await add(sessionmaker, box, -2, "gone", password="wrong")
    await run(checks)

    found = samples(await metrics.render(sessionmaker))
    assert value(found, "smsc_bot_account_balance", **SHOP) == 1500
    assert value(found, "smsc_bot_account_credit", **SHOP) == 0
    assert value(found, "smsc_bot_accounts") == 3
    assert value(found, "smsc_bot_active_chats") == 2
    assert value(found, "smsc_bot_checks_total", outcome="ok") == 2
    assert value(found, "smsc_bot_checks_total", outcome="auth") == 1
    assert value(found, "smsc_bot_smsc_requests_total", site="smsc.ru", result="ok") == 2
    assert value(found, "smsc_bot_smsc_requests_total", site="smsc.ru", result="2") == 1
    assert value(found, "smsc_bot_guard_decisions_total", decision="fetched") == 3
    # "other" (700) is under its threshold of 1000, and "gone" cannot be checked.
    assert value(found, "smsc_bot_alerts_total", kind="low") == 1
    assert value(found, "smsc_bot_alerts_total", kind="cant_check") == 1
    assert value(found, "smsc_bot_outbox_backlog") == 2

    async with sessionmaker() as session:
        await session.execute(delete(Account).where(Account.name == "shop"))
        await session.commit()
    found = samples(await metrics.render(sessionmaker))
    assert value(found, "smsc_bot_account_balance", **SHOP) is None
    assert value(found, "smsc_bot_accounts") == 2


async def test_runway_delivery_latency_and_last_hour(sessionmaker, box):
    clock = Clock()
    metrics = Metrics(now=clock)
    await add(sessionmaker, box, -1, "shop")
    async with sessionmaker() as session:
        await session.execute(
            update(Account).values(last_balance=Decimal(100), spend_rate=Decimal(10))
        )
        session.add(Notification(chat_id=-1, kind="low", text="x", created_at=START))
        await session.commit()
    clock.advance(seconds=90)
    found = samples(await metrics.render(sessionmaker))
    assert value(found, "smsc_bot_account_runway_seconds", **SHOP) == 10 * 86400
    assert value(found, "smsc_bot_outbox_oldest_age_seconds") == 90

    async with sessionmaker() as session:
        await session.execute(update(Notification).values(sent_at=START + timedelta(seconds=95)))
        await session.commit()
    found = samples(await metrics.render(sessionmaker))
    assert value(found, "smsc_bot_notification_delivery_seconds_count") == 1
    assert value(found, "smsc_bot_notification_delivery_seconds_bucket", le="120.0") == 1
    assert value(found, "smsc_bot_notification_delivery_seconds_bucket", le="60.0") == 0
    found = samples(await metrics.render(sessionmaker))  # each delivery is observed once
    assert value(found, "smsc_bot_notification_delivery_seconds_count") == 1
    assert value(found, "smsc_bot_outbox_backlog") == 0


async def test_an_account_no_longer_checked_keeps_its_balance_and_shows_its_age(
    sessionmaker, box, checks, smsc, clock
):
    await add(sessionmaker, box, -1, "shop", password="right")
    await run(checks)
    smsc.accounts["shop"] = ("changed", Decimal(150))  # refused from now on: never asked again
    clock.advance(hours=2)
    await run(checks)
    async with sessionmaker() as session:
        assert (await session.get(Account, 1)).state == AccountState.CANT_CHECK
    found = samples(await Metrics(now=clock).render(sessionmaker))
    assert value(found, "smsc_bot_account_balance", **SHOP) == 150
    # What a rule like `time() - smsc_bot_account_balance_timestamp_seconds > 3600` reads.
    assert value(found, "smsc_bot_account_balance_timestamp_seconds", **SHOP) == START.timestamp()


async def test_a_database_down_costs_its_own_gauges_only_logged_once(
    sessionmaker, box, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="bot.ops.metrics")
    await add(sessionmaker, box, -1, "shop")
    async with sessionmaker() as session:
        await session.execute(update(Account).values(last_balance=Decimal(1500)))
        await session.commit()
    metrics = Metrics()
    metrics.check_done("ok")
    # SQLite cannot open a file in a folder that is not there: every read fails.
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'bot.db'}")
    database = [sessionmaker]
    async with served(None, metrics, lambda: database[0]()) as get:
        found = await scraped(get)
        assert value(found, "smsc_bot_database_up") == 1
        assert value(found, "smsc_bot_accounts") == 1
        database[0] = create_sessionmaker(broken)
        for _ in range(3):
            found = await scraped(get)
            assert value(found, "smsc_bot_database_up") == 0
            assert value(found, "smsc_bot_checks_total", outcome="ok") == 1
            # Left out, not zero: "no accounts" would be a lie.
            assert value(found, "smsc_bot_accounts") is None
            assert value(found, "smsc_bot_account_balance", **SHOP) is None
        database[0] = sessionmaker
        found = await scraped(get)
        assert value(found, "smsc_bot_database_up") == 1
        assert value(found, "smsc_bot_account_balance", **SHOP) == 1500
    await broken.dispose()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [
        (
            logging.WARNING,
            "metrics: database read failed, its gauges left out error=OperationalError",
        ),
        (logging.INFO, "metrics: database read again"),
    ]
    assert not any(record.exc_info for record in caplog.records)


async def test_a_database_that_never_answers_is_given_up_on(monkeypatch, caplog):
    monkeypatch.setattr(health, "ANSWER_TIMEOUT", 0.05)
    metrics = Metrics()
    metrics.check_done("ok")
    async with served(None, metrics, Frozen) as get:
        found = await scraped(get)
    assert value(found, "smsc_bot_database_up") == 0
    assert value(found, "smsc_bot_checks_total", outcome="ok") == 1
    assert "error=timeout" in caplog.text


async def test_smsc_network_failures_are_counted_and_kept_for_status():
    metrics = Metrics()

    class Down:
        async def fetch_balance(self, creds):
            raise SmscUnavailable("SMSC unreachable: smsc.ru: ConnectTimeout")

    guard = BalanceGuard(CountingFetcher(Down(), metrics))
    creds = Credentials("smsc.kz", "shop", "pw")
    for _ in range(2):
        with contextlib.suppress(SmscUnavailable):
            await guard.balance(creds)
    found = samples(metrics.render_registry())
    assert value(found, "smsc_bot_smsc_requests_total", site="smsc.kz", result="network") == 2
    assert metrics.smsc_errors_last_hour.counts() == {"network": 2}
    assert "ConnectTimeout" in metrics.last_smsc_failure.what


async def test_failures_kept_for_status_show_no_secret():
    token, password = "424242:status-token-e9f1", "status-password-3b7c"
    logs.remember(token, password)
    metrics = Metrics()
    url = f"http://127.0.0.1/bot{token}/getUpdates"

    async def redirected(bot, method):
        raise TelegramNetworkError(method, f"HTTP Client says - TooManyRedirects: url={url}")

    with pytest.raises(TelegramNetworkError):
        await TelegramWatch(metrics)(redirected, None, GetUpdates(timeout=10))

    class Echoing:
        async def fetch_balance(self, creds):
            raise SmscProtocolError(f"odd reply quoting psw={creds.secret}")

    with pytest.raises(SmscProtocolError):
        await CountingFetcher(Echoing(), metrics).fetch_balance(
            Credentials("smsc.ru", "shop", password)
        )
    assert "bot***/getUpdates" in metrics.last_telegram_failure.what
    assert metrics.last_smsc_failure.what == "odd reply quoting psw=***"


def test_last_hour_forgets_what_is_older():
    now = [0.0]
    hour = LastHour(lambda: now[0])
    hour.add("ok")
    now[0] = 1800
    hour.add("ok")
    hour.add("auth")
    assert hour.counts() == {"ok": 2, "auth": 1}
    now[0] = 3700
    assert hour.counts() == {"ok": 1, "auth": 1}
    now[0] = 7300
    assert hour.counts() == {}
