"""The real bot at the per-chat account limit, against the fake Bot API that refuses texts over
4,096 characters and captions over 1,024 as Telegram does: every list still arrives."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.alerting.accounts import MAX_ACCOUNTS_PER_CHAT
from bot.smsc.sites import site_url
from bot.storage.crypto import SecretBox
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from bot.storage.models import Account, AccountState, Chat

USER, GROUP, ADMIN = 901, -100901, 902


def names(stem: str) -> list[str]:
    return [f"{stem}{i:02d}".ljust(32, "x") for i in range(MAX_ACCOUNTS_PER_CHAT)]


@pytest.fixture
def running(bot_process, fake_smsc, telegram):
    """The chats already at the limit: the database filled before the bot starts, as 100
    /add commands would take minutes at Telegram's pace of messages a chat."""
    telegram.set_member_status(GROUP, ADMIN, "administrator")
    asyncio.run(fill(bot_process.env, fake_smsc))
    return bot_process.start()


async def fill(env, fake_smsc):
    box, site = SecretBox(env["SECRET_KEY"]), site_url(fake_smsc.url)
    now = datetime.now(UTC)
    engine = create_engine(env["DATABASE_URL"])
    await migrate(engine)
    async with create_sessionmaker(engine)() as session:
        for chat_id, stem, lang in (
            (USER, "a_very_long_account_name_", "en"),
            (GROUP, "очень_длинное_имя_аккаунта", "ru"),
        ):
            kind = "private" if chat_id > 0 else "supergroup"
            session.add(Chat(id=chat_id, type=kind, title="Ops", language=lang))
            for name in names(stem):
                fake_smsc.add_account(name, "pw", balance="1234567.89", credit="100000.50")
                session.add(
                    Account(
                        chat_id=chat_id,
                        name=name,
                        site=site,
                        login=name,
                        secret=box.encrypt("pw"),
                        credentials_key=box.keyed_hash(site, name, "pw"),
                        threshold=Decimal(99999999),
                        check_interval=900,
                        # Already known low, and not due: no alerts mixed with the answers.
                        state=AccountState.LOW,
                        low_since=now,
                        last_balance=Decimal("1234567.89"),
                        last_credit=Decimal("100000.50"),
                        currency="RUB",
                        last_checked_at=now,
                        next_check_at=now + timedelta(seconds=900),
                        spend_rate=Decimal("1234.56"),
                    )
                )
        await session.commit()
    await engine.dispose()


def ask(telegram, bot, chat_id, text, done, **kwargs):
    """The bot's messages in answer to `text`, once `done(messages)`. Waited for by what they
    hold, not by a quiet moment: the pieces of a list go out at the chat's pace, and on a busy
    machine one came more than a second after the one before. Not coming, the bot's log says
    what it did meanwhile."""
    before = len(telegram.sent(chat_id))
    telegram.message(chat_id, text, **kwargs)
    try:
        telegram.wait_for(lambda: done(telegram.sent(chat_id)[before:]), timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}\nbot log:\n{bot.log()[-4000:]}") from None
    return telegram.sent(chat_id)[before:]


def every_name(stem):
    return lambda replies: all(
        any(name in reply.get("text", "") for reply in replies) for name in names(stem)
    )


def a_photo(replies):
    return any("photo_bytes" in reply for reply in replies)


def test_fifty_accounts_listed_in_pieces_in_both_languages(running, telegram):
    group_admin = {"user_id": ADMIN, "chat_type": "supergroup", "language_code": "ru"}
    for chat_id, stem, who in (
        (USER, "a_very_long_account_name_", {}),
        (GROUP, "очень_длинное_имя_аккаунта", group_admin),
    ):
        for command in ("/accounts", "/balance"):
            replies = ask(telegram, running, chat_id, command, every_name(stem), **who)
            assert len(replies) > 1, command
            joined = "\n".join(reply["text"] for reply in replies)
            assert all(joined.count(name) == 1 for name in names(stem)), command
        ask(telegram, running, chat_id, "/history 365", a_photo, **who)
        [photo] = [m for m in telegram.sent(chat_id) if "photo_bytes" in m]
        assert photo["caption"].count("\n") < MAX_ACCOUNTS_PER_CHAT  # cut: "… and N more"
        refused = [c for c in telegram.calls_of("sendMessage", chat_id) if c.error]
        refused += [c for c in telegram.calls_of("sendPhoto", chat_id) if c.error]
        assert refused == []
