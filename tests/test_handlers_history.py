"""/history through the real Dispatcher: the chart's title and time zone, and the caption under
it, in the chat's language."""

from datetime import timedelta
from decimal import Decimal

from aiogram.methods import SendPhoto
from sqlalchemy import select

from bot.storage.models import Account
from bot.telegram import charts
from tests.handler_fixtures import say


async def spending(sessionmaker, per_day: str) -> None:
    async with sessionmaker() as session:
        for account in await session.scalars(select(Account)):
            account.spend_rate = Decimal(per_day)
        await session.commit()


async def captions(dp, bot, *chats: tuple[int, str]) -> list[str]:
    for chat_id, language in chats:
        await say(dp, bot, chat_id, "/history", language=language)
    return [call.caption for call in bot.calls(SendPhoto)[-len(chats) :]]


async def test_caption_without_a_forecast_says_why_in_a_sentence(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right", language="en")
    await say(dp, bot, 2, "/add shop right", language="ru")
    assert await captions(dp, bot, (1, "en"), (2, "ru")) == [
        "<b>shop</b>: too little history to forecast",
        "<b>shop</b>: пока мало данных для прогноза",
    ]
    await spending(sessionmaker, "0.00")
    assert await captions(dp, bot, (1, "en"), (2, "ru")) == [
        "<b>shop</b>: no spending lately",
        "<b>shop</b>: трат в последнее время нет",
    ]
    # 150.00 lasts 15 days from its reading at /add, a moment ago: 14 days and hours from now.
    await spending(sessionmaker, "10.00")
    en, ru = await captions(dp, bot, (1, "en"), (2, "ru"))
    assert en.startswith("<b>shop</b>: spends 10.00 RUB a day, enough for ~14 days (until ")
    assert ru.startswith("<b>shop</b>: тратит 10,00 RUB в день, запас: примерно на 14 дней (до ")


async def test_the_runway_runs_from_when_the_balance_was_read(dp, bot, sessionmaker, monkeypatch):
    drawn = []
    monkeypatch.setattr(charts, "render_history", lambda series, **_chart: drawn.extend(series))
    await say(dp, bot, 1, "/add shop right", language="en")
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        account.spend_rate = Decimal(10)  # 150.00 lasts 15 days from when it was read
        account.last_checked_at -= timedelta(days=5)
        checked = account.last_checked_at
        await session.commit()
    [caption] = await captions(dp, bot, (1, "en"))
    # 5 days and a moment ago: 9 days and hours to go, not 15.
    assert caption.startswith("<b>shop</b>: spends 10.00 RUB a day, enough for ~9 days (until ")
    [series] = drawn
    assert series.runway.until == checked + timedelta(days=15)


async def test_chart_title_counts_the_days_and_dates_are_the_chats(dp, bot, monkeypatch):
    drawn = []

    def render(_series, **chart) -> bytes:
        drawn.append(chart)
        return b"PNG"

    monkeypatch.setattr(charts, "render_history", render)
    await say(dp, bot, 1, "/add shop right", language="en")
    await say(dp, bot, 1, "/tz America/Los_Angeles", language="en")
    await say(dp, bot, 2, "/add shop right", language="ru")
    for chat_id, language, command in [
        (1, "en", "/history 1"),
        (1, "en", "/history"),
        (2, "ru", "/history 1"),
        (2, "ru", "/history 3"),
        (2, "ru", "/history 21"),
        (2, "ru", "/history"),
    ]:
        await say(dp, bot, chat_id, command, language=language)
    assert [(chart["title"], chart["tz"]) for chart in drawn] == [
        ("Balance over 1 day", "America/Los_Angeles"),
        ("Balance over 30 days", "America/Los_Angeles"),
        ("Баланс за 1 день", "UTC"),
        ("Баланс за 3 дня", "UTC"),
        ("Баланс за 21 день", "UTC"),
        ("Баланс за 30 дней", "UTC"),
    ]
