"""/status for the bot's operators (ADMIN_IDS, in a private chat): is the bot doing its job?

Anyone else falls through to the ordinary unknown-command answer: the command is not
advertised, and nothing tells a stranger that it exists."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from html import escape
from importlib.metadata import PackageNotFoundError, version

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter, Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_timedelta

from bot.config import Settings
from bot.ops.health import Health
from bot.ops.metrics import DatabaseView, Failure, Metrics
from bot.storage.engine import Sessions
from bot.telegram.formatting import format_age, quoted
from bot.telegram.texts import locale

router = Router(name=__name__)
# Characters of a failure's text shown: what Telegram or SMSC said may be of any length, and
# the answer must fit in a message (4096), or the operator gets an apology instead.
FAILURE_LIMIT = 200


def bot_version() -> str:
    try:
        return version("smsc-balance-bot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Operator(BaseFilter):
    """A private chat with one of ADMIN_IDS."""

    async def __call__(self, message: Message, settings: Settings) -> bool:
        user = message.from_user
        return (
            message.chat.type == ChatType.PRIVATE
            and user is not None
            and user.id in settings.admin_ids
        )


@router.message(Command("status"), Operator())
async def status(
    message: Message,
    metrics: Metrics,
    health: Health,
    sessionmaker: Sessions,
) -> None:
    await message.answer(await status_text(metrics, health, sessionmaker))


async def status_text(metrics: Metrics, health: Health, sessionmaker: Sessions) -> str:
    now = datetime.now(UTC)
    # Side by side: each waits for the database at most its bound (a frozen one: both do).
    view, problems = await asyncio.gather(
        metrics.read_database_within(sessionmaker), health.problems()
    )
    uptime = format_timedelta(now - metrics.started_at, threshold=1.0, locale=locale())
    lines = [
        _("<b>Status</b>: version {version}, up {uptime}").format(
            version=escape(bot_version()), uptime=uptime
        ),
        _("Health: ok")
        if not problems
        else _("Health: {problems}").format(problems=escape("; ".join(problems))),
        _("Accounts and outbox: not known, the database did not answer")
        if view is None
        else _("Accounts: {accounts}, active chats: {chats}").format(
            accounts=view.accounts, chats=view.active_chats
        ),
        _("Checks in the last hour: {tally}").format(
            tally=_tally(metrics.checks_last_hour.counts())
        ),
        _("SMSC errors in the last hour: {tally}").format(
            tally=_tally(metrics.smsc_errors_last_hour.counts())
        ),
        *_outbox(view),
        _("Last Telegram failure: {failure}").format(
            failure=_failure(metrics.last_telegram_failure, now)
        ),
        _("Last SMSC failure: {failure}").format(failure=_failure(metrics.last_smsc_failure, now)),
    ]
    return "\n".join(lines)


def _outbox(view: DatabaseView | None) -> list[str]:
    if view is None:
        return []
    if not view.backlog:
        return [_("Outbox: {backlog} waiting").format(backlog=view.backlog)]
    age = format_timedelta(view.oldest_pending_age, threshold=1.0, locale=locale())
    waiting = ngettext(
        "Outbox: {backlog} waiting, the oldest for {age}",
        "Outbox: {backlog} waiting, the oldest for {age}",
        view.backlog,
    )
    return [waiting.format(backlog=view.backlog, age=age)]


def _tally(counts: Counter[str]) -> str:
    if not counts:
        return _("none")
    return ", ".join(f"{escape(label)} × {count}" for label, count in counts.most_common())


def _failure(failure: Failure | None, now: datetime) -> str:
    if failure is None:
        return _("none")
    when = format_age((now - failure.at).total_seconds(), locale())
    return f"{when}, {escape(quoted(failure.what, FAILURE_LIMIT))}"
