"""What registering an account takes, in one line or in the dialog: the site choices, deleting
the message with the secret, and checking and saving with an answer either way."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.alerting.accounts import AccountExists, AccountLimitReached, AccountService, NewAccount
from bot.config import Settings
from bot.smsc.check_errors import check_error
from bot.smsc.errors import SmscAuthError, SmscError
from bot.smsc.refusals import AskerPaused, AuthChecksPaused, CredentialsRejected
from bot.smsc.sites import SITES, site_url
from bot.smsc.state import AUTH_WINDOW
from bot.storage.models import Account
from bot.telegram import texts

log = logging.getLogger(__name__)

DELETE_ATTEMPTS = 3
DELETE_PAUSE = 1.0  # seconds before retrying after a network or server error
MAX_RETRY_AFTER = 30  # longer flood waits are not waited out: the sender is told instead


def site_choices(settings: Settings) -> list[str]:
    """The configured SMSC site first, then its sister sites."""
    default = site_url(str(settings.smsc_base_url))
    return [default, *(url for url in SITES.values() if url != default)]


def carries_secret(text: str | None) -> bool:
    """`/add login password ...`: the second argument is a secret."""
    return len((text or "").split()) >= 3


def secret_prompt(apikey: bool, locale: str | None = None) -> str:
    """The dialog's password step asks this; `locale` for another language than the chat's
    (a reply to the prompt is recognised by it, whatever the language it was asked in)."""
    if apikey:
        return _("Send the API key. I will delete your message right away.", locale=locale)
    return _("Send the password. I will delete your message right away.", locale=locale)


async def delete_secret(message: Message) -> None:
    """Delete a message that carries a secret, retrying what may pass (network errors, flood
    control); if it stays, tell the sender to delete it. Never raises."""
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        try:
            await message.delete()
            return
        except TelegramRetryAfter as error:
            pause = error.retry_after
            if pause > MAX_RETRY_AFTER:
                break
        except (TelegramNetworkError, TelegramServerError):
            pause = DELETE_PAUSE * attempt
        except TelegramBadRequest as error:
            if attempt > 1 and "message to delete not found" in error.message:
                return  # an earlier attempt deleted it; only its answer was lost
            break  # not allowed or too old: asking again changes nothing
        except TelegramAPIError:  # not allowed or too old: asking again changes nothing
            break
        if attempt < DELETE_ATTEMPTS:
            await asyncio.sleep(pause)
    log.warning("message with a secret not deleted chat_id=%s", message.chat.id)
    try:
        await message.answer(
            _(
                "⚠️ I could not delete the message with the password. Delete it yourself, "
                "and change the password in SMSC if others could see it."
            )
        )
    except TelegramAPIError:
        log.warning("warning about an undeleted secret not sent chat_id=%s", message.chat.id)


def askers(message: Message, target_chat: int) -> tuple[str, ...]:
    """Who asks to check new credentials, for the guard's allowance of failures per asker."""
    # Anonymous admins all post as one Telegram user: their chat alone stands for them.
    user = () if message.sender_chat is not None else (f"user:{message.from_user.id}",)
    return (*user, f"chat:{target_chat}")


def refusal(error: SmscError | AccountLimitReached | AccountExists, name: str, tz: str) -> str:
    if isinstance(error, AccountLimitReached):
        return _("This chat has reached the limit of accounts. Remove one with /remove first.")
    if isinstance(error, AccountExists):
        return _(
            "Not saved: this chat already watches an account named {name}, and /add never "
            "replaces one in passing. To give it a new password (say, after it was changed "
            "in SMSC), send /add alone, give the name {name} again and confirm the "
            "replacement. To start it afresh, /remove it first."
        ).format(name=texts.bold(name))
    if isinstance(error, AuthChecksPaused):
        at = retry_time(error.until, tz)
        if isinstance(error, AskerPaused):
            return _(
                "Not saved. SMSC refused a login or password from you or this chat in the last "
                "30 minutes, and each failure brings the bot closer to an IP block that would "
                "stop checks for every chat. You can try new credentials again at {time}."
            ).format(time=at)
        return _(
            "Not saved. Too many wrong passwords were tried recently; to keep SMSC from "
            "blocking the bot, new logins are not checked until {time}. Try again then."
        ).format(time=at)
    text = _("Not saved. {reason}").format(reason=texts.check_error(check_error(error)))
    if isinstance(error, SmscAuthError) and not isinstance(error, CredentialsRejected):
        # SMSC's refusal has just spent the askers' allowance (bot.smsc.guard): said now, not
        # after they have typed new credentials in vain.
        until = datetime.now(UTC) + timedelta(seconds=AUTH_WINDOW)
        text += " " + _(
            "So that failed logins do not get the bot's IP blocked, you can try new "
            "credentials again at {time}."
        ).format(time=retry_time(until, tz))
    return text


def retry_time(until: datetime, tz: str) -> str:
    """'20:19 (UTC)': the minute from which a paused check may be tried, rounded up (at 20:18
    for 20:18:30 it would be refused again)."""
    minute = (until + timedelta(seconds=59)).replace(second=0, microsecond=0)
    return f"{minute.astimezone(ZoneInfo(tz)):%H:%M} ({tz})"


def added_text(account: Account, balance_line: str) -> str:
    text = _("✅ Account {name} is registered and will be checked {interval}.").format(
        name=texts.bold(account.name), interval=texts.interval_label(account.check_interval)
    )
    text = f"{text}\n{balance_line}"
    # Without a level nothing is ever sent: say so, and how to set one (a replaced account's
    # levels stay, so it may have some).
    if account.threshold is None and account.critical_threshold is None:
        text += "\n" + texts.no_alert(account.name)
    return text


async def register(
    message: Message,
    accounts: AccountService,
    chat_id: int,
    new: NewAccount,
    tz: str,
    asked_by: tuple[str, ...],
    *,
    replace: bool = False,
) -> bool:
    """Check and save; answer either way. True if saved."""
    try:
        account, result = await accounts.add(chat_id, new, replace=replace, askers=asked_by)
    except (SmscError, AccountLimitReached, AccountExists) as error:
        await message.answer(refusal(error, new.name, tz))
        return False
    await message.answer(added_text(account, texts.balance_text(account, result, tz)))
    return True
