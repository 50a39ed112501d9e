"""Who may go on with /add, and the secrets sent on the way.

A message that carries a secret (an /add with a password, the answer at the dialog's password
step, a photo's caption too) is deleted before the admin router's rights rule runs: when that
rule refuses, or cannot ask Telegram, the message would otherwise stay in sight with nothing
said. So is a reply to the password prompt whose dialog is gone, which no rule would take. The
dialog's steps that write ask again, afresh, for the chat written to (`still_admin`).
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.telegram import texts
from bot.telegram.admins import ADMINS, AdminRights, Role
from bot.telegram.commands import COMMANDS
from bot.telegram.filters import ChatAdmin, DialogInput
from bot.telegram.handlers.add_common import carries_secret, delete_secret, secret_prompt
from bot.telegram.middlewares import Handler

# Telegram could not answer the rights lookup: not a refusal, the user may try again.
LOOKUP_FAILED = (TelegramNetworkError, TelegramRetryAfter, TelegramServerError)


def bot_command(text: str) -> bool:
    """Whether the text is one of the bot's commands (in any case, /name@bot too). At the
    password step anything else is the password, even one that starts with "/"."""
    word = text.split(maxsplit=1)[0].partition("@")[0].lower() if text.strip() else ""
    return word[:1] == "/" and (word[1:] in COMMANDS or word == "/start")


def message_of(event: Message | CallbackQuery) -> Message:
    return event if isinstance(event, Message) else event.message


async def close_for_non_admin(
    message: Message, state: FSMContext, saved: dict[str, Any] | None = None
) -> None:
    """Ends the dialog of a user who is no administrator of its chat (now). `saved`: the
    dialog, when its account is saved already (its last question): the user is told it stays."""
    await state.clear()
    if saved is None:
        text = _(
            "Only administrators of that chat may add or change its accounts, and you are "
            "not one now. Nothing was saved; the dialog is closed."
        )
    else:
        text = _(
            "Only administrators of that chat may add or change its accounts, and you are not "
            "one now; the dialog is closed."
        )
        text += "\n" + texts.kept_for_others(saved, bot_removed=False)
    await message.answer(text)


async def still_admin(
    event: Message | CallbackQuery,
    state: FSMContext,
    bot: Bot,
    admin_rights: AdminRights,
    *,
    saved: bool = False,
) -> bool:
    """Whether the user may still write to the dialog's chat, asked afresh (a demotion since
    the dialog began counts); if not, the dialog ends and the user is told. `saved`: the
    dialog's account is saved already (its last question): the user is told it stays."""
    dialog = await state.get_data()
    target_chat = dialog["target_chat"]
    chat = message_of(event).chat
    if chat.type == ChatType.PRIVATE and target_chat == chat.id:
        return True
    if isinstance(event, Message) and event.sender_chat is not None:
        allowed = event.sender_chat.id == target_chat  # an anonymous admin of the group
    else:
        try:
            role = await admin_rights.role(bot, target_chat, event.from_user.id, fresh=True)
        except LOOKUP_FAILED:
            # Not a refusal: the dialog stays where it is for another try.
            await message_of(event).answer(
                _("I couldn't check your rights in that chat just now. Send it again, please.")
            )
            return False
        if role is Role.BOT_REMOVED:
            await state.clear()
            gone = texts.kept_for_others(dialog, bot_removed=True) if saved else None
            await message_of(event).answer(gone or texts.not_in_group())
            return False
        allowed = role in ADMINS
    if not allowed:
        await close_for_non_admin(message_of(event), state, dialog if saved else None)
    return allowed


class SecretFirst(BaseMiddleware):
    """On the admin router's messages, around its rules: a message carrying a secret is
    deleted first, then the rights rule (ChatAdmin) is asked here, where a refusal or a
    failed lookup can be answered. `secret_step` is the dialog's password step; a reply to
    its prompt out of it is deleted and answered here."""

    def __init__(self, *, secret_step: str) -> None:
        self._secret_step = secret_step

    async def __call__(self, handler: Handler, event: Message, data: dict[str, Any]) -> Any:
        bot: Bot = data["bot"]
        raw_state = data.get("raw_state")
        if raw_state != self._secret_step and self._answers_secret_prompt(event, bot, data):
            # Its dialog is gone: kept under the group's old id when the group became a
            # supergroup, or lost in a restart (memory storage). Still a password: it leaves.
            await delete_secret(event)
            await event.answer(
                _(
                    "That /add dialog has ended (the group became a supergroup, or I was "
                    "restarted), so I deleted your message. Nothing was saved. Send /add to "
                    "start again."
                )
            )
            return None
        at_secret_step = await self._at_secret_step(event, bot, raw_state)
        if not at_secret_step and not await self._add_with_secret(event, bot):
            return await handler(event, data)
        await delete_secret(event)
        try:
            allowed = await ChatAdmin()(event, bot, data["admin_rights"])
        except LOOKUP_FAILED:
            await event.answer(
                _(
                    "I deleted your message, but I couldn't check your rights in this chat just "
                    "now. Send it again, please."
                )
            )
            return None
        if allowed:
            return await handler(event, data)  # the rule passes again, from its memory
        if at_secret_step:
            await close_for_non_admin(event, data["state"])
        else:
            await event.answer(
                _(
                    "Sorry, only administrators of this chat may add accounts. Others here may "
                    "have seen the password you sent: change it in SMSC now."
                )
            )
        return None

    async def _at_secret_step(self, message: Message, bot: Bot, raw_state: str | None) -> bool:
        """An answer at the dialog's password step with text in it: the text the step takes
        (add_dialog.enter_secret), or a caption, which it does not take but which may well be
        the password all the same (add_hints asks for it again)."""
        text = message.text or message.caption
        if raw_state != self._secret_step or not text or bot_command(text):
            return False
        return await DialogInput()(message, bot)

    @staticmethod
    def _answers_secret_prompt(message: Message, bot: Bot, data: dict[str, Any]) -> bool:
        """A reply to the bot's password prompt (in groups it starts with the asker's name),
        in whichever language it was asked."""
        reply = message.reply_to_message
        if reply is None or reply.from_user is None or reply.from_user.id != bot.id:
            return False
        text = message.text or message.caption
        if not reply.text or not text or bot_command(text):
            return False
        # In a group the prompt names its asker: another member's reply to it is theirs to
        # keep, and the asker's dialog may well be running.
        if message.chat.type != ChatType.PRIVATE and not _names(reply, message.from_user):
            return False
        i18n: I18n = data["i18n"]
        return any(
            reply.text.endswith(secret_prompt(apikey, locale))
            for locale in {i18n.default_locale, *i18n.available_locales}
            for apikey in (False, True)
        )

    @staticmethod
    async def _add_with_secret(message: Message, bot: Bot) -> bool:
        """An /add for this bot with a password (in a photo's caption too)."""
        text = message.text or message.caption
        return carries_secret(text) and bool(await Command("add", ignore_case=True)(message, bot))


def _names(prompt: Message, user: User | None) -> bool:
    """Whether the prompt's mention (add_dialog.prompt) is of `user`: Telegram hands it back
    as a text mention, or as the link it was sent as."""
    return user is not None and any(
        (entity.user is not None and entity.user.id == user.id)
        or entity.url == f"tg://user?id={user.id}"
        for entity in prompt.entities or ()
    )
