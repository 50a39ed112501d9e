"""/threshold, /interval, /remove and /lang: changing what the chat watches, and how."""

from __future__ import annotations

import functools
import re
from html import escape
from zoneinfo import available_timezones

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.numbers import format_decimal
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.accounts import AccountService
from bot.chats import LANGUAGES
from bot.digest import Digests
from bot.formatting import format_amount, parse_amount, parse_count
from bot.handlers.alerts import button_account
from bot.models import Account, Chat

router = Router(name=__name__)
DIGEST_TIME = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")

OFF_WORDS = {"off", "выкл"}


class RemoveChoice(CallbackData, prefix="remove"):
    account_id: int
    confirmed: bool


async def target(
    message: Message, accounts: AccountService, command: CommandObject, usage: str, *, value: bool
) -> tuple[Account, str] | None:
    """The account named first (or the chat's only account when the name is left out) and
    the rest of the arguments, which must be there when `value` is set; None after telling
    the user what is wrong."""
    found = await _target(accounts, message.chat.id, command, usage, value=value)
    if isinstance(found, str):
        await message.answer(found)
        return None
    return found


async def _target(
    accounts: AccountService, chat_id: int, command: CommandObject, usage: str, *, value: bool
) -> tuple[Account, str] | str:
    text = (command.args or "").strip()
    name, _space, rest = text.partition(" ")
    chosen = await accounts.list(chat_id)
    account = next((a for a in chosen if a.name.lower() == name.lower()), None)
    # A value where a name should be ("/threshold 500") means the chat's only account.
    looks_like_value = name[:1].isdigit() or name.lower() in OFF_WORDS
    if account is None and len(chosen) == 1 and (looks_like_value if value else not text):
        return chosen[0], text
    if account is None:
        return texts.unknown_account(name) if name and (rest or not value) else usage
    if bool(rest.strip()) != value:
        return usage
    return account, rest.strip()


@router.message(Command("threshold"))
async def threshold(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /threshold &lt;name&gt; &lt;amount|off&gt;, e.g. /threshold mylogin 500")
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    if value.lower() in OFF_WORDS:
        await accounts.set_threshold(account, None)
        await message.answer(
            _("No low-balance alerts for {name} any more.").format(name=texts.bold(account.name))
        )
        return
    try:
        amount = parse_amount(value)
    except ValueError:
        await message.answer(usage)
        return
    await accounts.set_threshold(account, amount)
    await message.answer(
        _("I will warn when {name} falls below {amount}.").format(
            name=texts.bold(account.name), amount=format_amount(amount, texts.locale())
        )
    )


@router.message(Command("interval"))
async def interval(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _(
        "Usage: /interval &lt;name&gt; &lt;minutes&gt; (at least 1), e.g. /interval mylogin 15"
    )
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    try:
        minutes = parse_count(value, 7 * 24 * 60)
    except ValueError:
        await message.answer(usage)
        return
    await accounts.set_interval(account, minutes * 60)
    await message.answer(
        _("{name} will be checked {interval}.").format(
            name=texts.bold(account.name), interval=texts.interval_label(minutes * 60)
        )
    )


@router.message(Command("remove"))
async def remove(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /remove &lt;name&gt;")
    found = await target(message, accounts, command, usage, value=False)
    if found is None:
        return
    account, _rest = found
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("Yes, remove"), callback_data=RemoveChoice(account_id=account.id, confirmed=True)
    )
    builder.button(
        text=_("No, keep it"), callback_data=RemoveChoice(account_id=account.id, confirmed=False)
    )
    await message.answer(
        _("Stop watching {name} and forget its credentials?").format(name=texts.bold(account.name)),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(RemoveChoice.filter())
async def confirm_remove(
    query: CallbackQuery,
    callback_data: RemoveChoice,
    accounts: AccountService,
) -> None:
    account = await button_account(query, accounts, callback_data.account_id)
    if account is None:
        await query.answer(texts.button_out_of_date())
        return
    await query.answer()
    if not callback_data.confirmed:
        await query.message.edit_text(_("Kept {name}.").format(name=texts.bold(account.name)))
        return
    name = account.name
    await accounts.remove(account)
    await query.message.edit_text(_("Removed {name}.").format(name=texts.bold(name)))


@router.message(Command("lang"))
async def language(
    message: Message, command: CommandObject, chat_record: Chat, session: AsyncSession, i18n: I18n
) -> None:
    choice = (command.args or "").strip().lower()
    if choice not in LANGUAGES:
        await message.answer(_("Usage: /lang &lt;ru|en&gt;"))
        return
    chat_record.language = choice
    await session.commit()
    with i18n.use_locale(choice):
        await message.answer(_("This chat now speaks English."))


@router.message(Command("remind"))
async def remind(
    message: Message, command: CommandObject, chat_record: Chat, session: AsyncSession
) -> None:
    value = (command.args or "").strip().lower()
    usage = _("Usage: /remind &lt;hours|off&gt; — first reminder while a balance stays low")
    try:
        chat_record.reminder_hours = 0 if value in OFF_WORDS else parse_count(value, 168)
    except ValueError:
        await message.answer(usage)
        return
    await session.commit()
    if chat_record.reminder_hours:
        text = _(
            "While a balance stays low I will remind after {hours} h, then twice as long each time."
        ).format(hours=chat_record.reminder_hours)
    else:
        text = _("No reminders: one alert per low balance.")
    await message.answer(text)


@router.message(Command("margin"))
async def margin(
    message: Message, command: CommandObject, chat_record: Chat, session: AsyncSession
) -> None:
    try:
        percent = parse_amount((command.args or "").replace("%", ""))
    except ValueError:
        percent = None
    if percent is None or percent > 50:
        await message.answer(_("Usage: /margin &lt;percent&gt; (0 to 50), e.g. /margin 2"))
        return
    chat_record.hysteresis_percent = percent
    await session.commit()
    await message.answer(
        _("A low balance counts as restored {percent}% above its threshold.").format(
            percent=format_decimal(percent, locale=texts.locale())
        )
    )


@router.message(Command("runway"))
async def runway(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /runway &lt;name&gt; &lt;days|off&gt; — warn when the money lasts fewer days")
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    try:
        days = None if value.lower() in OFF_WORDS else parse_count(value, 365)
    except ValueError:
        await message.answer(usage)
        return
    await accounts.set_runway_threshold(account, days)
    if days is None:
        text = _("No runway alerts for {name} any more.").format(name=texts.bold(account.name))
    else:
        text = _("I will warn when {name} has money for fewer than {days} days.").format(
            name=texts.bold(account.name), days=days
        )
    await message.answer(text)


@router.message(Command("anomaly"))
async def anomaly(
    message: Message, command: CommandObject, chat_record: Chat, session: AsyncSession
) -> None:
    text = (command.args or "").strip()
    usage = _(
        "Usage: /anomaly &lt;factor&gt; &lt;minimum&gt; or /anomaly off — warn when a day costs "
        "factor × the week's daily average and at least the minimum, e.g. /anomaly 3 500"
    )
    if text.lower() in OFF_WORDS:
        chat_record.anomaly_minimum = None
        await session.commit()
        await message.answer(_("No spending anomaly alerts in this chat."))
        return
    factor_text, _space, minimum_text = text.partition(" ")  # the minimum may be "1 000"
    try:
        factor, minimum = parse_amount(factor_text), parse_amount(minimum_text)
    except ValueError:
        factor = minimum = None
    if factor is None or not 1 < factor <= 100:
        await message.answer(usage)
        return
    chat_record.anomaly_factor, chat_record.anomaly_minimum = factor, minimum
    await session.commit()
    lang = texts.locale()
    await message.answer(
        _(
            "I will warn when a day costs {factor}× the week's average and at least {minimum}."
        ).format(factor=format_decimal(factor, locale=lang), minimum=format_amount(minimum, lang))
    )


@router.message(Command("digest"))
async def digest(
    message: Message,
    command: CommandObject,
    chat_record: Chat,
    session: AsyncSession,
    digests: Digests,
) -> None:
    value = (command.args or "").strip().lower()
    if value in OFF_WORDS:
        chat_record.digest_time = None
    elif DIGEST_TIME.fullmatch(value):
        hour, minute = value.split(":")
        chat_record.digest_time = f"{int(hour):02d}:{minute}"
    else:
        await message.answer(_("Usage: /digest &lt;HH:MM|off&gt;, e.g. /digest 09:30"))
        return
    await session.commit()
    digests.schedule(chat_record)
    if chat_record.digest_time is None:
        await message.answer(_("No daily digest in this chat."))
        return
    await message.answer(
        _("Every day at {time} ({zone}) I will post a digest of all accounts.").format(
            time=chat_record.digest_time, zone=chat_record.timezone
        )
    )


@router.message(Command("tz"))
async def timezone(
    message: Message,
    command: CommandObject,
    chat_record: Chat,
    session: AsyncSession,
    digests: Digests,
) -> None:
    zone = await time_zone(message, (command.args or "").strip())
    if zone is None:
        return
    chat_record.timezone = zone
    await session.commit()
    digests.schedule(chat_record)
    await message.answer(_("Time zone of this chat: {zone}.").format(zone=zone))


@functools.cache
def known_zones() -> dict[str, str]:
    """The zone database's names by their lower case, so that "europe/moscow" is understood.
    Only these reach ZoneInfo: other text may name a folder of the database or a file path."""
    return {name.lower(): name for name in available_timezones()}


async def time_zone(message: Message, text: str) -> str | None:
    """The zone named, or None after an answer saying what is wrong."""
    zones = known_zones()
    if text.lower() in zones:
        return zones[text.lower()]
    region = text.lower().strip("/") + "/"
    cities = sorted(name for lower, name in zones.items() if lower.startswith(region))
    if text and cities:
        answer = _("{region} is a region: name a city in it, e.g. /tz {example}").format(
            region=escape(text), example=cities[0]
        )
    elif text:
        answer = _("I don't know the time zone {zone}. Use a name such as Europe/Moscow.").format(
            zone=escape(text)
        )
    else:
        answer = _("Usage: /tz &lt;zone&gt;, e.g. /tz Europe/Moscow")
    await message.answer(answer)
    return None
