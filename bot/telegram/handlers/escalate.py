"""/escalate: whom to call when nobody takes an alert in time (admins only in groups)."""

from __future__ import annotations

import re
from html import escape

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.alerting.chats import ChatService
from bot.storage.models import Chat
from bot.telegram.escalation import ADMINS
from bot.telegram.filters import Command
from bot.telegram.formatting import parse_count
from bot.telegram.handlers.manage import OFF_WORDS

router = Router(name=__name__)
MAX_ESCALATE_MINUTES = 24 * 60
USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
# People one escalation calls, at most: a call to more fits no message, and is no call at all.
MOST_CALLED = 20
ADMIN_WORDS = {"admins", "админы"}


@router.message(Command("escalate"))
async def escalate(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    words = (command.args or "").split()
    if len(words) == 1 and words[0].lower() in OFF_WORDS:
        await chats.set_escalation(chat_record, None, [])
        await message.answer(_("No escalation in this chat."))
        return
    try:
        minutes = parse_count(words[0] if words else "", MAX_ESCALATE_MINUTES)
        people = words[1:]
        if len(people) == 1 and people[0].lower() in ADMIN_WORDS:
            targets = [ADMINS]
        elif 0 < len(people) <= MOST_CALLED and all(USERNAME.fullmatch(w) for w in people):
            targets = list(dict.fromkeys(people))
        else:
            raise ValueError("whom to call")
    except ValueError:
        await message.answer(
            _(
                "Usage: /escalate &lt;minutes&gt; &lt;@user …|admins&gt; or /escalate off — "
                "call people (up to {most}) when nobody takes an alert in time, e.g. "
                "/escalate 15 admins"
            ).format(most=MOST_CALLED)
        )
        return
    await chats.set_escalation(chat_record, minutes, targets)
    who = _("the administrators") if targets == [ADMINS] else escape(", ".join(targets))
    await message.answer(
        _("If nobody takes an alert within {minutes} min, I will call {who}.").format(
            minutes=minutes, who=who
        )
    )
