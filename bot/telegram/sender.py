"""The outbox's sender: one notification to the Bot API, its answer as a Delivery.

A fan-out sends thousands of these, so a send costs what it must and no more: the sendMessage
is built from the stored values as they are (the keyboard already JSON, as the Bot API takes
it), not validated into models only to be dumped again, and its answer is read for the
message id alone, not built into a whole Message.
"""

from __future__ import annotations

from aiogram import Bot, methods
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import MessageId

from bot.alerting.claims import Outgoing
from bot.alerting.delivery import Delivery, Outcome
from bot.telegram.alerts import keyboard

# Answers of a send to a forum topic the chat no longer takes messages in (deleted, or closed
# to the bot): the alert goes to the chat's General topic instead of being lost.
_TOPIC_GONE = ("thread not found", "TOPIC_CLOSED", "TOPIC_DELETED")


class SendMessage(methods.SendMessage):
    """sendMessage answered with what the outbox keeps of the message: its id. Named as
    aiogram's: Bot API errors are counted by the method's class name (bot.telegram.observe)."""

    __returning__ = MessageId


class TelegramSender:
    """bot.alerting.delivery.Sender through aiogram."""

    def __init__(self, bot: Bot, *, timeout: float = 20.0) -> None:
        """`timeout`: the longest a call may take (by default a third of LEASE_SECONDS' 60).
        Under the outbox's lease, whose half or more is left when a send begins
        (Outbox._ready): a call Telegram left hanging past the lease (aiogram's own bound is
        60 s) was claimed and sent again, by another replica or by this process's next pass,
        while the first could still go through."""
        self._bot = bot
        self._timeout = timeout
        self._send_alert = SendMessage.model_construct(chat_id=0, text="")

    async def send(self, notification: Outgoing) -> Delivery:
        return await self._call(notification, None)

    async def edit(self, notification: Outgoing, message_id: int) -> Delivery:
        return await self._call(notification, message_id)

    async def _call(self, notification: Outgoing, edited: int | None) -> Delivery:
        """sendMessage, or editMessageText of message `edited` (no markup removes buttons)."""
        try:
            if edited is not None:
                await self._bot.edit_message_text(
                    text=notification.text,
                    chat_id=notification.chat_id,
                    message_id=edited,
                    request_timeout=self._timeout,
                    reply_markup=keyboard(notification.reply_markup),
                )
                return Delivery(Outcome.SENT, message_id=edited)
            # Unvalidated: the values come from the outbox's own rows, and the keyboard stays
            # the JSON string the session would have made of it (it passes strings through).
            # A copy of one built once: building resolves (deep-copies) every default anew.
            message = await self._bot(
                self._send_alert.model_copy(
                    update={
                        "chat_id": notification.chat_id,
                        "text": notification.text,
                        "message_thread_id": notification.thread_id,
                        "reply_markup": notification.reply_markup,
                        "disable_notification": notification.silent,
                    }
                ),
                request_timeout=self._timeout,
            )
        except TelegramRetryAfter as error:
            return Delivery(Outcome.RETRY_AFTER, retry_after=error.retry_after)
        except (TelegramUnauthorizedError, TelegramNotFound) as error:
            return Delivery(Outcome.TOKEN_REFUSED, error=error.message)
        except TelegramMigrateToChat as error:
            return Delivery(Outcome.MIGRATED, migrated_to=error.migrate_to_chat_id)
        except TelegramForbiddenError:
            return Delivery(Outcome.CHAT_GONE)
        except TelegramBadRequest as error:
            if notification.thread_id is not None and any(
                reason in error.message for reason in _TOPIC_GONE
            ):
                return Delivery(Outcome.THREAD_GONE)
            return Delivery(Outcome.REFUSED, error=error.message)
        except TelegramAPIError as error:  # 5xx, network errors, and codes no one expects
            return Delivery(Outcome.FAILED, error=f"{type(error).__name__}: {error.message}")
        return Delivery(Outcome.SENT, message_id=message.message_id)
