"""Every answer fits in Telegram: at the per-chat account limit, with long names, credit, runway
and errors, lists come in several messages cut between accounts, and captions stay whole."""

from decimal import Decimal

import pytest
from aiogram.methods import SendPhoto
from sqlalchemy import select

from bot.alerting.accounts import MAX_ACCOUNTS_PER_CHAT
from bot.alerting.digest import Digests
from bot.storage.models import Account, AccountState, Chat
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.formatting import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    fit_lines,
    split_blocks,
    telegram_length,
)
from bot.telegram.i18n import create_i18n
from tests.handler_fixtures import say

CHATS = {"en": 1, "ru": 2}


def long_names(lang: str) -> list[str]:
    stem = "очень_длинное_имя_аккаунта" if lang == "ru" else "a_very_long_account_name_"
    return [f"{stem}{i:02d}".ljust(32, "x") for i in range(MAX_ACCOUNTS_PER_CHAT)]


@pytest.fixture
async def full_chat(dp, bot, smsc, sessionmaker, request):
    lang = request.param
    chat_id, names = CHATS[lang], long_names(lang)
    for name in names:
        smsc.accounts[name] = ("pw", Decimal("1234567.89"))
        smsc.credits[name] = Decimal("100000.50")
        replies = await say(dp, bot, chat_id, f"/add {name} pw 99999999", language=lang)
        assert name in replies[-1].text
    async with sessionmaker() as session:
        accounts = (await session.scalars(select(Account).order_by(Account.name))).all()
        for i, account in enumerate(accounts):
            account.spend_rate = Decimal("1234.56")
            if i % 3 == 0:  # a third can't be checked: the longest lines there are
                account.state, account.last_error = AccountState.CANT_CHECK, "auth"
        await session.commit()
    return lang, chat_id, names


def assert_cut_between_accounts(replies, names):
    texts = [reply.text for reply in replies]
    assert len(texts) > 1, "the test needs a list longer than one message"
    assert all(telegram_length(text) <= TEXT_LIMIT for text in texts)
    assert all(text.startswith("<b>") for text in texts), "each message starts with an account"
    joined = "\n".join(texts)
    assert [joined.index(f"<b>{name}</b>") for name in names] == sorted(
        joined.index(f"<b>{name}</b>") for name in names
    )
    assert all(joined.count(f"<b>{name}</b>") == 1 for name in names)


@pytest.mark.parametrize("full_chat", ["en", "ru"], indirect=True)
async def test_accounts_and_balance_of_fifty_come_in_pieces(dp, bot, full_chat):
    lang, chat_id, names = full_chat
    assert_cut_between_accounts(await say(dp, bot, chat_id, "/accounts", language=lang), names)
    replies = await say(dp, bot, chat_id, "/balance", language=lang)
    assert_cut_between_accounts(replies, names)
    joined = "\n".join(reply.text for reply in replies)
    assert ("login or password" if lang == "en" else "логин или пароль") in joined
    assert ("100,000.50" if lang == "en" else "100\xa0000,50") in joined  # the credit


@pytest.mark.parametrize("full_chat", ["en", "ru"], indirect=True)
async def test_history_caption_of_fifty_keeps_whole_lines(dp, bot, full_chat, caplog):
    lang, chat_id, names = full_chat
    assert await say(dp, bot, chat_id, "/history 365", language=lang) == []
    assert "update failed" not in caplog.text
    [photo] = bot.calls(SendPhoto)
    caption = photo.caption
    assert telegram_length(caption) <= CAPTION_LIMIT
    *lines, more = caption.split("\n")
    assert more.startswith("…") and str(len(names) - len(lines)) in more
    assert all(line.startswith(f"<b>{names[i]}</b>") for i, line in enumerate(lines))
    assert caption.count("<b>") == caption.count("</b>")


@pytest.mark.parametrize("full_chat", ["en", "ru"], indirect=True)
async def test_digest_of_fifty_is_several_messages_in_order(full_chat, sessionmaker):
    _lang, chat_id, names = full_chat
    digests = Digests(sessionmaker, TelegramRenderer(create_i18n()), None)
    async with sessionmaker() as session:
        chat = await session.get(Chat, chat_id)
        texts = await digests.compose(session, chat)
    assert len(texts) > 1
    assert all(telegram_length(text) <= TEXT_LIMIT for text in texts)
    assert texts[0].startswith("📋")
    assert all(text.startswith("<b>") for text in texts[1:])
    joined = "\n".join(texts)
    positions = [joined.index(f"<b>{name}</b>") for name in names]
    assert positions == sorted(positions)


def test_split_counts_as_telegram_does_and_cuts_huge_blocks_between_lines():
    emoji_block = "⚠️" * 1000  # 2,000 UTF-16 code units that Python counts as 2,000 characters
    assert telegram_length("😀") == 2
    assert split_blocks([emoji_block] * 3) == [emoji_block + "\n\n" + emoji_block, emoji_block]
    lines = [f"line {i} " + "x" * 90 for i in range(100)]  # one block of ~10,000 characters
    pieces = split_blocks(["\n".join(lines)])
    assert len(pieces) == 3 and all(telegram_length(p) <= TEXT_LIMIT for p in pieces)
    assert "\n".join(pieces).split("\n") == lines


def test_fit_lines_keeps_all_that_fits():
    def more(count):
        return f"… and {count} more"

    assert fit_lines(["a", "b"], more) == "a\nb"
    lines = [f"<b>{i}</b> " + "y" * 100 for i in range(20)]
    text = fit_lines(lines, more)
    assert telegram_length(text) <= CAPTION_LIMIT and text.endswith("… and 11 more")
