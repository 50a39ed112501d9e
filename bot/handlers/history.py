"""/history: a chart of the balance over time, with top-ups, threshold and forecast."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import forecast, texts
from bot.accounts import AccountService
from bot.formatting import format_money, parse_count
from bot.handlers.balance import no_accounts
from bot.history import samples_since
from bot.models import Chat

router = Router(name=__name__)

DEFAULT_DAYS, MAX_DAYS = 30, 365


def usage() -> str:
    return _("Usage: /history [name] [days], e.g. /history mylogin 30")


@router.message(Command("history"))
async def history(
    message: Message,
    command: CommandObject,
    accounts: AccountService,
    session: AsyncSession,
    chat_record: Chat,
) -> None:
    args = (command.args or "").split()
    days = DEFAULT_DAYS
    if args and args[-1][:1].isdigit():  # the days, well written or not ("²", "0", "1e9")
        try:
            days = parse_count(args.pop(), MAX_DAYS)
        except ValueError:
            days = 0
    if len(args) > 1 or not days:
        await message.answer(usage())
        return
    chosen = await accounts.list(message.chat.id)
    if args:
        chosen = [a for a in chosen if a.name.lower() == args[0].lower()]
        if not chosen:
            await message.answer(texts.unknown_account(args[0]))
            return
    if not chosen:
        await message.answer(no_accounts())
        return
    # matplotlib and numpy cost ~40 MB and half a second to import: only once a chart is asked.
    from bot.charts import ChartLabels, Series, render_history

    now = datetime.now(UTC)
    series, caption = [], []
    lang = texts.locale()
    for account in chosen:
        samples = await samples_since(session, account.id, now - timedelta(days=days))
        runway = (
            forecast.runway(account.last_balance, account.spend_rate, now)
            if account.last_balance is not None
            else None
        )
        series.append(
            Series(
                name=account.name,
                currency=account.currency,
                samples=samples,
                threshold=account.threshold,
                top_ups=forecast.top_ups(samples),
                runway=runway,
            )
        )
        spend = (
            format_money(account.spend_rate, account.currency, lang)
            if account.spend_rate is not None
            else "—"
        )
        runway_text = texts.runway_text(account, now, chat_record.timezone)
        caption.append(
            _("{name}: spends {spend} a day, {runway}").format(
                name=texts.bold(account.name), spend=spend, runway=runway_text
            )
        )
    labels = ChartLabels(
        balance=_("Balance"),
        threshold=_("Threshold"),
        top_up=_("Top-up"),
        forecast=_("Forecast"),
        no_history=_("No history yet"),
    )
    title = _("Balance over {days} days").format(days=days)
    # Drawing takes a CPU-bound moment: off the event loop, so other chats are not kept waiting.
    png = await asyncio.to_thread(render_history, series, locale=lang, title=title, labels=labels)
    await message.answer_photo(
        BufferedInputFile(png, filename="history.png"), caption="\n".join(caption)[:1024]
    )
