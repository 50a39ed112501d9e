"""/lang, /remind, /margin, /anomaly, /digest and /tz: how the chat as a whole is told things."""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from html import escape
from zoneinfo import available_timezones

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from bot.alerting.chats import ChatService
from bot.storage.models import Chat
from bot.telegram import texts
from bot.telegram.filters import Command
from bot.telegram.formatting import format_amount, parse_amount, parse_count, quoted
from bot.telegram.handlers.add import topic_of
from bot.telegram.handlers.manage import OFF_WORDS

router = Router(name=__name__)
DIGEST_TIME = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9]")  # ASCII digits: int() takes others
# Names the zone database answers to that are no place a chat is in: "Factory", the placeholder
# of machines not yet set up (its clock reads "-00"), and "localtime", the server's own zone
# under whatever name, which a move of the server would change. (Python already leaves out
# "posixrules", and "posix/" and "right/".)
NOT_PLACES = frozenset({"Factory", "localtime"})


@router.message(Command("lang"))
async def language(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService, i18n: I18n
) -> None:
    choice = (command.args or "").strip().lower()
    try:
        await chats.set_language(chat_record, choice)
    except ValueError:
        await message.answer(_("Usage: /lang &lt;ru|en&gt;"))
        return
    with i18n.use_locale(choice):
        await message.answer(_("This chat now speaks English."))


@router.message(Command("remind"))
async def remind(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    value = (command.args or "").strip().lower()
    try:
        hours = 0 if value in OFF_WORDS else parse_count(value, 168)
    except ValueError:
        await message.answer(
            _("Usage: /remind &lt;hours|off&gt; — first reminder while a balance stays low")
        )
        return
    await chats.set_reminders(chat_record, hours)
    if hours:
        text = _(
            "While a balance stays low I will remind after {hours} h, then twice as long each time."
        ).format(hours=hours)
    else:
        text = _("No reminders: one alert per low balance.")
    await message.answer(text)


@router.message(Command("margin"))
async def margin(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    try:
        percent = parse_amount((command.args or "").replace("%", ""))
        await chats.set_margin(chat_record, percent)
    except ValueError:
        await message.answer(_("Usage: /margin &lt;percent&gt; (0 to 50), e.g. /margin 2"))
        return
    shown = exact(percent, texts.locale())
    if not percent:
        await message.answer(
            _("A low balance counts as restored {percent}% above its threshold.").format(
                percent=shown
            )
        )
        return
    await message.answer(
        _(
            "A low balance counts as restored {percent}% above its threshold, and at least "
            "1 above it."
        ).format(percent=shown)
    )


@router.message(Command("anomaly"))
async def anomaly(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    text = (command.args or "").strip()
    if text.lower() in OFF_WORDS:
        await chats.stop_anomalies(chat_record)
        await message.answer(_("No spending anomaly alerts in this chat."))
        return
    factor_text, _space, minimum_text = text.partition(" ")  # the minimum may be "1 000"
    try:
        factor, minimum = parse_amount(factor_text), parse_amount(minimum_text)
        await chats.set_anomaly(chat_record, factor, minimum)
    except ValueError:
        await message.answer(
            _(
                "Usage: /anomaly &lt;factor&gt; &lt;minimum&gt; or /anomaly off — warn when a day "
                "costs factor × the week's daily average and at least the minimum, e.g. "
                "/anomaly 3 500"
            )
        )
        return
    lang = texts.locale()
    await message.answer(
        _(
            "I will warn when a day costs {factor}× the week's average and at least {minimum}."
        ).format(factor=exact(factor, lang), minimum=format_amount(minimum, lang))
    )


def exact(value: Decimal, locale: str) -> str:
    """Every decimal typed (parse_amount takes a few): at babel's default three, a saved
    margin of 0.000001% read back as "0%", an anomaly factor of 1.0001 as "1"."""
    return format_decimal(value, locale=locale, decimal_quantization=False)


@router.message(Command("digest"))
async def digest(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    value = (command.args or "").strip().lower()
    if value in OFF_WORDS:
        await chats.set_digest(chat_record, None)
        await message.answer(_("No daily digest in this chat."))
        return
    if not DIGEST_TIME.fullmatch(value):
        await message.answer(_("Usage: /digest &lt;HH:MM|off&gt;, e.g. /digest 09:30"))
        return
    hour, minute = value.split(":")
    await chats.set_digest(chat_record, f"{int(hour):02d}:{minute}", topic_of(message))
    await message.answer(
        _("Every day at {time} ({zone}) I will post a digest of all accounts.").format(
            time=chat_record.digest_time, zone=chat_record.timezone
        )
    )


@router.message(Command("tz"))
async def timezone(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    zone = await time_zone(message, (command.args or "").strip())
    if zone is None:
        return
    await chats.set_timezone(chat_record, zone)
    await message.answer(_("Time zone of this chat: {zone}.").format(zone=zone))


@functools.cache
def known_zones() -> dict[str, str]:
    """The zone database's names by their lower case, so that "europe/moscow" is understood.
    Only these reach ZoneInfo: other text may name a folder of the database or a file path."""
    return {name.lower(): name for name in available_timezones() - NOT_PLACES}


async def time_zone(message: Message, text: str) -> str | None:
    """The zone named, or None after an answer saying what is wrong."""
    zones = known_zones()
    if text.lower() in zones:
        return zones[text.lower()]
    region = text.lower().strip("/") + "/"
    cities = sorted(name for lower, name in zones.items() if lower.startswith(region))
    if text and cities:
        answer = _("{region} is a region: name a city in it, e.g. /tz {example}").format(
            region=escape(quoted(text)), example=cities[0]
        )
    elif text:
        answer = _("I don't know the time zone {zone}. Use a name such as Europe/Moscow.").format(
            zone=escape(quoted(text))
        )
    else:
        answer = _("Usage: /tz &lt;zone&gt;, e.g. /tz Europe/Moscow")
    await message.answer(answer)
    return None
