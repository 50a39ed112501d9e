"""One place where a failed update ends: logged for the operator, a short apology for the user."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.storage.engine import StatementTimeout
from bot.storage.outage import unreachable

log = logging.getLogger(__name__)
router = Router(name=__name__)


class StateUnavailable(Exception):
    """Redis, where the replicas keep dialogs and the one-update-at-a-time of each chat, did
    not answer before the update was acted on (bot.factory), or in webhook mode the database
    could not be reached: the update was not handled. It is answered 503 (bot.webhook), so
    Telegram delivers it again, where answered as handled it was lost: a dialog's step, a
    button pressed, a /balance asked during a database restart."""


@router.error()
async def on_error(event: ErrorEvent, settings: Settings) -> bool:
    update, error = event.update, event.exception
    if isinstance(error, StateUnavailable):
        log.warning("update not handled update_id=%s: %s", update.update_id, error)
        raise error
    if isinstance(error, TelegramAPIError):
        # Telegram refused or could not be reached: an operational event, not a bug; and
        # the apology would most likely fail the same way.
        log.warning("update failed update_id=%s telegram_error=%s", update.update_id, error)
        return True
    if unreachable(error):
        # An outage, not a bug: one line, no traceback (each update of a restart would be one).
        unavailable = StateUnavailable(f"database unreachable: {type(error).__name__}")
        if settings.webhook_url is not None:  # answered 503, Telegram delivers it again
            log.warning("update not handled update_id=%s: %s", update.update_id, unavailable)
            raise unavailable from None
        # By polling getUpdates has moved past it: the user is told.
        log.warning("update failed update_id=%s: %s", update.update_id, unavailable)
    elif isinstance(error, StatementTimeout):
        # The database held up (a lock held elsewhere, the server unreachable): an operational
        # event, one line each, not a bug's stack; its text is the engine's own, no input's.
        log.warning("update failed update_id=%s: %s", update.update_id, error)
    else:
        # The exception's type and stack only: its text or the update may carry a password.
        log.error(
            "update failed update_id=%s type=%s error=%s",
            update.update_id,
            update.event_type,
            type(error).__name__,
            exc_info=(type(error), error, error.__traceback__),
        )
    message = update.message or (update.callback_query and update.callback_query.message)
    if message is not None:
        try:
            await message.answer(_("Something went wrong on my side. Please try again."))
        except TelegramAPIError:
            log.warning("apology not sent update_id=%s", update.update_id)
    return True
