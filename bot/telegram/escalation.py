"""Escalation: an incident nobody took ("I'm on it") within the chat's escalate_minutes brings
one follow-up that mentions the people the chat named, or its administrators.

A job every minute on the shared scheduler asks bot.alerting.escalation for the due incidents
(one query) and has it claim and queue each (once per incident, fleet-safe). The job lives
here because the administrators and their mentions are Telegram's.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.alerting.escalation import Due, EscalationStore
from bot.alerting.outbox import Outbox
from bot.storage.models import Chat
from bot.telegram import texts
from bot.telegram.alerts import alert_buttons
from bot.telegram.formatting import quoted

log = logging.getLogger(__name__)

ADMINS = "admins"  # escalate_to: ["admins"], the chat's administrators when it escalates


def escalate_to(chat: Chat) -> list[str]:
    """The chat's escalation targets: "@username"s, or [ADMINS]."""
    return json.loads(chat.escalate_to) if chat.escalate_to else []


class Escalations:
    def __init__(self, store: EscalationStore, bot: Bot, i18n: I18n, outbox: Outbox | None) -> None:
        self._store = store
        self._bot = bot
        self._i18n = i18n
        self._outbox = outbox

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self.tick,
            CronTrigger(minute="*", timezone=UTC),
            id="escalations",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    async def tick(self) -> int:
        """Escalate every incident that is due; how many were."""
        escalated = 0
        for due in await self._store.due():
            text, markup = await self._message(due)
            if await self._store.escalate(due, text, markup):
                escalated += 1
        if escalated and self._outbox is not None:
            self._outbox.wake()
        return escalated

    async def _message(self, due: Due) -> tuple[str, str]:
        mentions = await self._mentions(due.chat)
        with self._i18n.context(), self._i18n.use_locale(due.chat.language):
            text = "🚨 " + _(
                "Nobody has taken the alert on {name} for {minutes} min. {people}, please look."
            ).format(
                name=texts.bold(due.account.name),
                minutes=due.chat.escalate_minutes,
                people=", ".join(mentions) or _("Administrators"),
            )
            markup = alert_buttons(due.account).model_dump_json(exclude_none=True)
        return text, markup

    async def _mentions(self, chat: Chat) -> list[str]:
        """@usernames as they are (Telegram notifies them), administrators as text mentions
        (by id: they notify even those without a username, even in a muted group)."""
        targets = escalate_to(chat)
        if ADMINS not in targets:
            return [escape(target) for target in targets]
        try:
            admins = await self._bot.get_chat_administrators(chat.id)
        except TelegramAPIError as error:
            log.info("escalation: administrators unknown chat_id=%s error=%s", chat.id, error)
            return []
        return [
            # Names cut short: a chat's 50 administrators named at length would not fit a message.
            f'<a href="tg://user?id={member.user.id}">{escape(quoted(member.user.full_name))}</a>'
            for member in admins
            if not member.user.is_bot
        ]
