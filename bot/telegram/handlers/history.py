"""/history: a chart of the balance over time, with top-ups, threshold and forecast."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.alerting import forecast
from bot.alerting.accounts import AccountService
from bot.alerting.names import named
from bot.storage.engine import Session
from bot.storage.history import samples_since
from bot.storage.models import Account, Chat
from bot.telegram import texts
from bot.telegram.filters import Command
from bot.telegram.formatting import fit_lines, format_money, parse_count
from bot.telegram.handlers.balance import no_accounts
from bot.telegram.ratelimit import WorkBudget

router = Router(name=__name__)

DEFAULT_DAYS, MAX_DAYS = 30, 365
# Past four panels a chart is unreadable on a phone, and each panel costs CPU time to draw.
MAX_CHARTED = 4


def usage() -> str:
    return _("Usage: /history [name] [days], e.g. /history mylogin 30")


@router.message(Command("history"))
async def history(
    message: Message,
    command: CommandObject,
    accounts: AccountService,
    session: Session,
    chat_record: Chat,
    history_budget: WorkBudget,
) -> None:
    args = (command.args or "").split()
    chosen = await accounts.list(message.chat.id)
    days = DEFAULT_DAYS
    # The days, well written or not ("²", "0", "1e9"), unless the one word names an account:
    # a name may begin with a digit too ("2gis").
    if args and args[-1][:1].isdigit() and not (len(args) == 1 and named(chosen, args[0])):
        try:
            days = parse_count(args.pop(), MAX_DAYS)
        except ValueError:
            days = 0
    if len(args) > 1 or not days:
        await message.answer(usage())
        return
    if args:
        account = named(chosen, args[0])
        if account is None:
            await message.answer(texts.unknown_account(args[0]))
            return
        chosen = [account]
    if not chosen:
        await message.answer(no_accounts())
        return
    now = datetime.now(UTC)
    runways = {account.id: texts.account_runway(account, now) for account in chosen}
    # Soonest to run out first; the chart has room for a few panels, the caption for more.
    never = forecast.MAX_RUNWAY_DAYS + 1
    chosen = sorted(chosen, key=lambda a: runways[a.id].days if runways[a.id] else never)
    charted = chosen[:MAX_CHARTED]
    wait = history_budget.spend(message.chat.id, len(charted) * months(days))
    if wait:
        await message.answer(texts.busy(wait))
        return
    # matplotlib and numpy cost ~40 MB and half a second to import: only once a chart is asked.
    from bot.telegram.charts import ChartLabels, Series, render_history

    series = []
    lang = texts.locale()
    for account in charted:
        samples = await samples_since(session, account.id, now - timedelta(days=days))
        series.append(
            Series(
                name=account.name,
                currency=account.currency,
                samples=samples,
                threshold=account.threshold,
                top_ups=forecast.top_ups(samples),
                runway=runways[account.id],
            )
        )
    labels = ChartLabels(
        balance=_("Balance"),
        threshold=_("Threshold"),
        top_up=_("Top-up"),
        forecast=_("Forecast"),
        no_history=_("No history yet"),
    )
    title = ngettext("Balance over {days} day", "Balance over {days} days", days).format(days=days)
    tz = chat_record.timezone
    # Drawing takes a CPU-bound moment: off the event loop, so other chats are not kept waiting.
    png = await asyncio.to_thread(
        render_history, series, locale=lang, tz=tz, title=title, now=now, labels=labels
    )
    caption = [caption_line(account, runways[account.id], now, tz) for account in chosen]
    more = _("… and {count} more").format
    await message.answer_photo(
        BufferedInputFile(png, filename="history.png"),
        caption=fit_lines(caption, lambda count: more(count=count)),
    )


def months(days: int) -> int:
    return math.ceil(days / 30)


def history_budget() -> WorkBudget:
    """Per chat: the largest chart at once, then a month's panel back every 3 seconds, so
    the largest chart again after about two and a half minutes."""
    return WorkBudget(burst=MAX_CHARTED * months(MAX_DAYS), refill_seconds=3)


def caption_line(
    account: Account, runway: forecast.Runway | None, now: datetime, timezone: str
) -> str:
    name = texts.bold(account.name)
    if runway is None:
        # A sentence of its own: put in the spend-and-runway line it read as broken text.
        return f"{name}: {texts.no_forecast(account)}"
    return _("{name}: spends {spend} a day, {runway}").format(
        name=name,
        spend=format_money(account.spend_rate, account.currency, texts.locale()),
        runway=texts.runway_text(account, now, timezone),
    )
