"""The /add dialog, one question at a time: sign-in kind, site, name, secret, threshold.

It runs in a private chat (for that chat, or for a group that handed it off) or in a group
as replies to the bot. Whoever answers must still administer the chat written to when a
step writes: a demotion in between ends the dialog. An existing account's credentials are
replaced only after an explicit confirmation. Dialog data is plain JSON (it may live in
Redis), with the time of the last step: 30 minutes idle and the dialog has expired.
"""

from __future__ import annotations

import logging
import time
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.alerting.accounts import AccountService, LevelsOutOfOrder, NewAccount
from bot.alerting.chats import ChatService
from bot.alerting.names import valid_name
from bot.config import Settings
from bot.smsc.sites import site_label
from bot.telegram import texts
from bot.telegram.admins import AdminRights
from bot.telegram.filters import DialogInput
from bot.telegram.formatting import format_amount, parse_amount
from bot.telegram.handlers.add_common import askers, register, secret_prompt, site_choices
from bot.telegram.handlers.add_rights import bot_command, message_of, still_admin
from bot.telegram.middlewares import DialogExpiry

log = logging.getLogger(__name__)
router = Router(name=__name__)
router.message.filter(DialogInput())

OFF_WORDS = {"off", "no", "none", "-", "0", "нет", "выкл"}


class AddAccount(StatesGroup):
    kind = State()
    site = State()
    name = State()
    replace = State()  # the name exists: waiting for "replace its credentials?"
    secret = State()
    threshold = State()


class KindChoice(CallbackData, prefix="add-kind"):
    apikey: bool


class SiteChoice(CallbackData, prefix="add-site"):
    index: int


class ReplaceChoice(CallbackData, prefix="add-replace"):
    replace: bool


expiry = DialogExpiry(saved_step=AddAccount.threshold.state)
router.message.middleware(expiry)
router.callback_query.middleware(expiry)


def kind_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Login and password"), callback_data=KindChoice(apikey=False))
    builder.button(text=_("API key"), callback_data=KindChoice(apikey=True))
    return builder.as_markup()


async def begin_dialog(
    message: Message, state: FSMContext, target_chat: int, thread_id: int | None
) -> None:
    if await state.get_state() == AddAccount.threshold.state:  # the last one's account stays
        await message.answer(texts.kept_account(await state.get_data()))
    await state.set_state(AddAccount.kind)
    await state.set_data(
        {"target_chat": target_chat, "thread_id": thread_id, "active": time.time()}
    )
    await message.answer(_("How does this account sign in to SMSC?"), reply_markup=kind_keyboard())


def prompt(event: Message | CallbackQuery, text: str) -> dict:
    """Answer arguments for a dialog prompt: in groups a ForceReply aimed at the asker."""
    user = event.from_user
    mention = f'<a href="tg://user?id={user.id}">{escape(user.first_name)}</a>, '
    in_group = message_of(event).chat.type != ChatType.PRIVATE
    return {
        "text": (mention if in_group else "") + text,
        "reply_markup": ForceReply(selective=True) if in_group else None,
    }


@router.callback_query(AddAccount.kind, KindChoice.filter())
async def choose_kind(
    query: CallbackQuery, callback_data: KindChoice, state: FSMContext, settings: Settings
) -> None:
    await state.update_data(apikey=callback_data.apikey)
    await state.set_state(AddAccount.site)
    builder = InlineKeyboardBuilder()
    for index, url in enumerate(site_choices(settings)):
        builder.button(text=site_label(url), callback_data=SiteChoice(index=index))
    builder.adjust(3)
    await query.answer()
    await query.message.edit_text(
        _("Which SMSC site is the account on?"), reply_markup=builder.as_markup()
    )


@router.callback_query(AddAccount.site, SiteChoice.filter())
async def choose_site(
    query: CallbackQuery, callback_data: SiteChoice, state: FSMContext, settings: Settings
) -> None:
    sites = site_choices(settings)
    if not 0 <= callback_data.index < len(sites):  # not a button that was offered
        await query.answer(texts.button_out_of_date())
        return
    data = await state.update_data(site=sites[callback_data.index])
    await state.set_state(AddAccount.name)
    await query.answer()
    await query.message.edit_text(_("Site: {site}").format(site=site_label(data["site"])))
    if data["apikey"]:
        ask = _("Send a short name for this account (it is how the chat will refer to it).")
    else:
        ask = _("Send the SMSC login.")
    await query.message.answer(**prompt(query, ask))


def ask_secret(event: Message | CallbackQuery, apikey: bool) -> dict:
    return prompt(event, secret_prompt(apikey))


@router.message(AddAccount.name, F.text, ~F.text.startswith("/"))
async def enter_name(message: Message, state: FSMContext, accounts: AccountService) -> None:
    name = message.text.strip()
    data = await state.get_data()
    # A name the chat has is one to replace, taken even where valid_name would not take it new.
    exists = await accounts.find(data["target_chat"], name) is not None
    if not exists and not valid_name(name):
        await message.answer(
            **prompt(
                message,
                _(
                    "Up to 32 letters, digits and . _ - @ + please, each word in one alphabet. "
                    "Send it again."
                ),
            )
        )
        return
    data = await state.update_data(name=name)
    if not exists:
        await state.set_state(AddAccount.secret)
        await message.answer(**ask_secret(message, data["apikey"]))
        return
    await state.set_state(AddAccount.replace)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Replace"), callback_data=ReplaceChoice(replace=True))
    builder.button(text=_("Cancel"), callback_data=ReplaceChoice(replace=False))
    await message.answer(
        _(
            "The chat already watches an account named {name}. Replace its login and "
            "password or API key (say, after the password was changed in SMSC)? Its "
            "settings stay."
        ).format(name=texts.bold(name)),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(AddAccount.replace, ReplaceChoice.filter())
async def confirm_replace(
    query: CallbackQuery,
    callback_data: ReplaceChoice,
    state: FSMContext,
    bot: Bot,
    admin_rights: AdminRights,
) -> None:
    await query.answer()
    if not callback_data.replace:
        await state.clear()
        await query.message.edit_text(_("Cancelled. Nothing was changed."))
        return
    if not await still_admin(query, state, bot, admin_rights):
        return
    data = await state.update_data(replace=True)
    await state.set_state(AddAccount.secret)
    await query.message.edit_text(
        _("The credentials of {name} will be replaced.").format(name=texts.bold(data["name"]))
    )
    await query.message.answer(**ask_secret(query, data["apikey"]))


@router.message(AddAccount.secret, F.text, ~F.text.func(bot_command))
async def enter_secret(
    message: Message,
    state: FSMContext,
    accounts: AccountService,
    bot: Bot,
    chats: ChatService,
    i18n: I18n,
    admin_rights: AdminRights,
) -> None:
    secret = message.text.strip()  # its message is deleted already (add_rights.SecretFirst)
    data = await state.get_data()
    target_chat = data["target_chat"]
    target = await chats.get(target_chat)
    # Before the rights: under a group's old id (upgraded to a supergroup) no one is an admin,
    # nor in a group that removed the bot (still_admin tells when its removal went unseen).
    if target is None or not target.active:
        await state.clear()
        gone = _("That chat is gone or has changed; nothing was saved. Send /add there again.")
        await message.answer(gone if target is None else texts.not_in_group())
        return
    if not await still_admin(message, state, bot, admin_rights):
        return
    new = NewAccount(
        site=data["site"],
        login=None if data["apikey"] else data["name"],
        secret=secret,
        name=data["name"],
        thread_id=data["thread_id"],
    )
    saved = await register(
        message,
        accounts,
        target_chat,
        new,
        target.timezone,
        askers(message, target_chat),
        replace=data.get("replace", False),
    )
    if not saved:
        await state.clear()
        return
    # Past the password before anything else can fail: the next message must not be taken
    # for one (nor sent to SMSC as one, in a replacement).
    await state.set_state(AddAccount.threshold)
    if target_chat != message.chat.id:  # handed off from a group: tell the group
        with i18n.use_locale(target.language):
            if data.get("replace"):
                text = _("✅ {user} replaced the credentials of the SMSC account {name}.")
            else:
                text = _("✅ {user} registered the SMSC account {name} for this chat.")
        text = text.format(user=escape(message.from_user.full_name), name=texts.bold(new.name))
        try:
            await bot.send_message(target_chat, text, message_thread_id=data["thread_id"])
        except TelegramAPIError as error:  # flood control, a closed topic, no right to post
            log.warning("hand-off notice not sent chat_id=%s telegram_error=%s", target_chat, error)
    await message.answer(
        **prompt(
            message,
            _("Below which balance should I warn? Send an amount like 500, or “off”."),
        )
    )


@router.message(AddAccount.threshold, F.text, ~F.text.startswith("/"))
async def enter_threshold(
    message: Message,
    state: FSMContext,
    accounts: AccountService,
    bot: Bot,
    admin_rights: AdminRights,
) -> None:
    text = message.text.strip()
    threshold = None
    if text.lower() not in OFF_WORDS:
        try:
            threshold = parse_amount(text)
        except ValueError:
            await message.answer(
                **prompt(message, _("That is not an amount. Send a number like 500, or “off”."))
            )
            return
    if not await still_admin(message, state, bot, admin_rights, saved=True):
        return
    data = await state.get_data()
    account = await accounts.find(data["target_chat"], data["name"])
    if account is None:  # removed meanwhile
        await state.clear()
        return
    try:
        await accounts.set_threshold(account, threshold)
    except LevelsOutOfOrder:  # the account replaced had a critical level: asked again
        critical = format_amount(account.critical_threshold, texts.locale())
        text = _(
            "The warning level can't be below the critical level of {name} ({critical}). "
            "Send a larger amount, or “off”."
        ).format(name=texts.bold(account.name), critical=critical)
        await message.answer(**prompt(message, text))
        return
    await state.clear()
    await message.answer(texts.account_text(account))
