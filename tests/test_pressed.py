"""The alert a button was pressed on, from the outbox's records (bot.alerting.pressed): what a
message Telegram withholds from the bot shows now."""

from datetime import UTC, datetime

from bot.alerting.pressed import Shown, pressed, shown
from bot.storage.models import Account, Notification
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

SENT = datetime(2026, 1, 2, tzinfo=UTC)


def note(account_id, text, *, message_id=None, sent=True, edit_of=None, markup=None):
    return Notification(
        chat_id=-100,
        account_id=account_id,
        kind="low",
        text=text,
        reply_markup=markup,
        message_id=message_id,
        sent_at=SENT if sent else None,
        edit_of=edit_of,
    )


async def test_an_alert_shows_its_last_edit_sent(sessionmaker, account):
    async with sessionmaker() as session:
        shop = await session.get(Account, account)
        alert = note(account, "low", message_id=5, markup='{"inline_keyboard":[]}')
        session.add(alert)
        await session.flush()
        session.add(note(account, "low + acked", edit_of=alert.id, markup="{}"))
        session.add(note(account, "low + resolved", edit_of=alert.id, sent=False))  # not yet
        session.add(note(account, "another alert + acked", edit_of=alert.id + 10))
        await session.commit()
        assert await pressed(session, shop, 5) == alert.id
        assert await shown(session, shop, 5) == Shown("low + acked", "{}")


async def test_only_a_sent_alert_of_the_account_is_found(sessionmaker, account):
    async with sessionmaker() as session:
        shop = await session.get(Account, account)
        session.add(note(account, "not sent yet", message_id=6, sent=False))
        session.add(note(None, "the alert of an account removed", message_id=7))
        await session.commit()
        assert [await shown(session, shop, message) for message in (5, 6, 7)] == [None] * 3
