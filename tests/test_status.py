"""/status for the bot's operators: what it says, also while the database does not answer."""

from sqlalchemy import func, select

from bot.ops import health as health_module
from bot.ops.metrics import Metrics
from bot.storage.models import Chat, Notification
from bot.telegram.formatting import TEXT_LIMIT, telegram_length
from bot.telegram.handlers.status import status_text
from bot.telegram.i18n import create_i18n
from tests.web_helpers import Frozen, healthy_but


async def test_status_while_the_database_does_not_answer(monkeypatch):
    monkeypatch.setattr(health_module, "ANSWER_TIMEOUT", 0.05)
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        text = await status_text(Metrics(), healthy_but(Frozen), Frozen)
    lines = text.splitlines()
    assert lines[1] == "Health: database: timeout"
    assert lines[2] == "Accounts and outbox: not known, the database did not answer"
    assert "Checks in the last hour: none" in lines
    assert not [line for line in lines if line.startswith("Outbox:")]


async def test_status_reads_accounts_and_outbox(sessionmaker):
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        text = await status_text(Metrics(), healthy_but(sessionmaker), sessionmaker)
    assert "Здоровье: в порядке" in text.splitlines()
    assert "Аккаунтов: 0, активных чатов: 0" in text.splitlines()


async def test_status_fits_in_a_message_whatever_the_failures_said(sessionmaker):
    metrics = Metrics()
    metrics.telegram_failed("SendMessage", "400", "Bad Request: " + "y" * 5000)
    metrics.smsc_answered("https://smsc.ru", "3", "SMSC error 3: " + "<" * 5000)
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        text = await status_text(metrics, healthy_but(sessionmaker), sessionmaker)
    assert telegram_length(text) <= TEXT_LIMIT
    telegram, smsc = text.splitlines()[-2:]
    assert telegram.startswith("Last Telegram failure: ") and telegram.endswith("y…")
    assert smsc.startswith("Last SMSC failure: ") and smsc.endswith("&lt;…")


async def test_outbox_backlog_in_russian_agrees_with_its_number(sessionmaker):
    """ "ждут 1" and "ждут 21" read wrong: one notification waits ("ждёт"), as do 21."""
    i18n = create_i18n()
    async with sessionmaker() as session:
        session.add(Chat(id=5, type="private"))
        await session.commit()
    seen = {}
    for total in (1, 2, 5, 21):
        async with sessionmaker() as session:
            waiting = await session.scalar(select(func.count(Notification.id)))
            session.add_all(
                Notification(chat_id=5, kind="low", text="x") for _ in range(total - waiting)
            )
            await session.commit()
        with i18n.context(), i18n.use_locale("ru"):
            text = await status_text(Metrics(), healthy_but(sessionmaker), sessionmaker)
        [line] = [line for line in text.splitlines() if line.startswith("Очередь")]
        seen[total] = line.partition(",")[0]
    assert seen == {
        1: "Очередь уведомлений: ждёт 1",
        2: "Очередь уведомлений: ждут 2",
        5: "Очередь уведомлений: ждут 5",
        21: "Очередь уведомлений: ждёт 21",
    }
