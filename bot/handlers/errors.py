"""One place where a failed update ends: logged for the operator, a short apology for the user."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

log = logging.getLogger(__name__)
router = Router(name=__name__)


@router.error()
async def on_error(event: ErrorEvent) -> bool:
    update = event.update
    # Only the exception's type and position: its text or the update may carry a password.
    log.error(
        "update failed update_id=%s type=%s error=%s",
        update.update_id,
        update.event_type,
        type(event.exception).__name__,
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )
    message = update.message or (update.callback_query and update.callback_query.message)
    if message is not None:
        try:
            await message.answer(_("Something went wrong on my side. Please try again."))
        except Exception:  # the apology is best effort: Telegram may be what failed
            log.warning("apology not sent update_id=%s", update.update_id)
    return True
