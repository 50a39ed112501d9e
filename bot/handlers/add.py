"""/add: register an SMSC account, in one line or through a dialog.

Passwords and API keys are deleted from the chat as soon as they are read, checked with
one balance request, and stored encrypted. In a group the dialog can move to a private
chat (a deep link bound to the group), so the password never enters the group at all.
"""

from __future__ import annotations

import re
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardMarkup, Message
from aiogram.utils.deep_linking import create_start_link
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.accounts import AccountLimitReached, AccountService, NewAccount, valid_name
from bot.check_errors import check_error
from bot.config import Settings
from bot.filters import DialogInput, is_chat_admin
from bot.formatting import parse_amount
from bot.models import Chat
from bot.smsc import SITES, SmscError, site_url

router = Router(name=__name__)
dialog = Router(name=f"{__name__}.dialog")
dialog.message.filter(DialogInput())
router.include_router(dialog)

# /start payload of the hand-off from a group: add_<group id>_<topic id or 0>
HANDOFF = re.compile(r"add_(-\d+)_(\d+)")
OFF_WORDS = {"off", "no", "none", "-", "0", "нет", "выкл"}


class AddAccount(StatesGroup):
    kind = State()
    site = State()
    name = State()
    secret = State()
    threshold = State()


class KindChoice(CallbackData, prefix="add-kind"):
    apikey: bool


class SiteChoice(CallbackData, prefix="add-site"):
    index: int


class ContinueHere(CallbackData, prefix="add-here"):
    pass


def usage() -> str:
    return _(
        "Usage: /add &lt;login&gt; &lt;password&gt; [threshold], or just /add for a guided dialog."
    )


def site_choices(settings: Settings) -> list[str]:
    """The configured SMSC site first, then its sister sites."""
    default = site_url(str(settings.smsc_base_url))
    return [default, *(url for url in SITES.values() if url != default)]


async def delete_secret(message: Message) -> None:
    """Delete a message that carries a secret; if that is not allowed, say what to do."""
    try:
        await message.delete()
    except (TelegramBadRequest, TelegramForbiddenError):
        await message.answer(
            _(
                "⚠️ I could not delete the message with the password. Delete it yourself, "
                "and change the password in SMSC if others could see it."
            )
        )


def refusal(error: SmscError | AccountLimitReached) -> str:
    if isinstance(error, AccountLimitReached):
        return _("This chat has reached the limit of accounts. Remove one with /remove first.")
    return _("Not saved. {reason}").format(reason=texts.check_error(check_error(error)))


def added_text(new: NewAccount, balance_line: str) -> str:
    text = _("✅ Account {name} is registered and will be checked regularly.").format(
        name=texts.bold(new.name)
    )
    return f"{text}\n{balance_line}"


async def register(
    message: Message, accounts: AccountService, chat_id: int, new: NewAccount, tz: str
) -> bool:
    """Check and save; answer either way. True if saved."""
    try:
        account, result = await accounts.add(chat_id, new)
    except (SmscError, AccountLimitReached) as error:
        await message.answer(refusal(error))
        return False
    await message.answer(added_text(new, texts.balance_text(account, result, tz)))
    return True


@router.message(Command("add", magic=F.args))
async def add_in_one_line(
    message: Message,
    command: CommandObject,
    accounts: AccountService,
    settings: Settings,
    chat_record: Chat,
) -> None:
    args = (command.args or "").split()
    if len(args) >= 2:
        await delete_secret(message)
    if len(args) not in (2, 3):
        await message.answer(usage())
        return
    try:
        threshold = parse_amount(args[2]) if len(args) == 3 else None
    except ValueError:
        await message.answer(usage())
        return
    login, password = args[0], args[1]
    if not valid_name(login):
        await message.answer(usage())
        return
    new = NewAccount(
        site=site_choices(settings)[0],
        login=login,
        secret=password,
        name=login,
        threshold=threshold,
        thread_id=message.message_thread_id if message.is_topic_message else None,
    )
    await register(message, accounts, message.chat.id, new, chat_record.timezone)


def kind_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Login and password"), callback_data=KindChoice(apikey=False))
    builder.button(text=_("API key"), callback_data=KindChoice(apikey=True))
    return builder.as_markup()


async def begin_dialog(
    message: Message, state: FSMContext, target_chat: int, thread_id: int | None
) -> None:
    await state.set_state(AddAccount.kind)
    await state.set_data({"target_chat": target_chat, "thread_id": thread_id})
    await message.answer(_("How does this account sign in to SMSC?"), reply_markup=kind_keyboard())


@router.message(Command("add"))
async def add_dialog(message: Message, state: FSMContext, bot: Bot) -> None:
    thread_id = message.message_thread_id if message.is_topic_message else None
    if message.chat.type == ChatType.PRIVATE:
        await begin_dialog(message, state, message.chat.id, thread_id)
        return
    link = await create_start_link(bot, f"add_{message.chat.id}_{thread_id or 0}")
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔒 Continue in a private chat"), url=link)
    builder.button(text=_("Continue here"), callback_data=ContinueHere())
    builder.adjust(1)
    await message.reply(
        _(
            "The password is safest in a private chat with me: the account will still be "
            "registered for this group."
        ),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(ContinueHere.filter())
async def continue_here(query: CallbackQuery, state: FSMContext) -> None:
    message = query.message
    thread_id = message.message_thread_id if message.is_topic_message else None
    await query.answer()
    await begin_dialog(message, state, message.chat.id, thread_id)


@router.message(CommandStart(deep_link=True, magic=F.args.regexp(HANDOFF)))
async def handoff(message: Message, command: CommandObject, state: FSMContext, bot: Bot) -> None:
    group_id, thread_id = (int(part) for part in HANDOFF.fullmatch(command.args).groups())
    try:
        allowed = await is_chat_admin(bot, group_id, message.from_user.id)
    except (TelegramBadRequest, TelegramForbiddenError):
        allowed = False
    if not allowed:
        await message.answer(_("Only administrators of that group may add accounts to it."))
        return
    await message.answer(_("Let's register an SMSC account for the group."))
    await begin_dialog(message, state, group_id, thread_id or None)


def prompt(query_or_message: Message | CallbackQuery, text: str) -> dict:
    """Answer arguments for a dialog prompt: in groups a ForceReply aimed at the asker."""
    user = query_or_message.from_user
    mention = f'<a href="tg://user?id={user.id}">{escape(user.first_name)}</a>, '
    in_group = _chat_of(query_or_message).type != ChatType.PRIVATE
    return {
        "text": (mention if in_group else "") + text,
        "reply_markup": ForceReply(selective=True) if in_group else None,
    }


def _chat_of(event: Message | CallbackQuery):
    return event.chat if isinstance(event, Message) else event.message.chat


@dialog.callback_query(AddAccount.kind, KindChoice.filter())
async def choose_kind(
    query: CallbackQuery, callback_data: KindChoice, state: FSMContext, settings: Settings
) -> None:
    await state.update_data(apikey=callback_data.apikey)
    await state.set_state(AddAccount.site)
    builder = InlineKeyboardBuilder()
    for index, url in enumerate(site_choices(settings)):
        builder.button(text=texts.site_label(url), callback_data=SiteChoice(index=index))
    builder.adjust(3)
    await query.answer()
    await query.message.edit_text(
        _("Which SMSC site is the account on?"), reply_markup=builder.as_markup()
    )


@dialog.callback_query(AddAccount.site, SiteChoice.filter())
async def choose_site(
    query: CallbackQuery, callback_data: SiteChoice, state: FSMContext, settings: Settings
) -> None:
    sites = site_choices(settings)
    site = sites[min(callback_data.index, len(sites) - 1)]
    data = await state.update_data(site=site)
    await state.set_state(AddAccount.name)
    await query.answer()
    await query.message.edit_text(_("Site: {site}").format(site=texts.site_label(site)))
    if data["apikey"]:
        ask = _("Send a short name for this account (it is how the chat will refer to it).")
    else:
        ask = _("Send the SMSC login.")
    await query.message.answer(**prompt(query, ask))


@dialog.message(AddAccount.name, F.text, ~F.text.startswith("/"))
async def enter_name(message: Message, state: FSMContext) -> None:
    name = message.text.strip()
    if not valid_name(name):
        await message.answer(
            **prompt(message, _("Up to 32 letters, digits and . _ - @ + please. Send it again."))
        )
        return
    data = await state.update_data(name=name)
    await state.set_state(AddAccount.secret)
    if data["apikey"]:
        ask = _("Send the API key. I will delete your message right away.")
    else:
        ask = _("Send the password. I will delete your message right away.")
    await message.answer(**prompt(message, ask))


@dialog.message(AddAccount.secret, F.text, ~F.text.startswith("/"))
async def enter_secret(
    message: Message,
    state: FSMContext,
    accounts: AccountService,
    bot: Bot,
    chat_record: Chat,
    session: AsyncSession,
    i18n: I18n,
) -> None:
    secret = message.text.strip()
    await delete_secret(message)
    data = await state.get_data()
    new = NewAccount(
        site=data["site"],
        login=None if data["apikey"] else data["name"],
        secret=secret,
        name=data["name"],
        thread_id=data["thread_id"],
    )
    if not await register(message, accounts, data["target_chat"], new, chat_record.timezone):
        await state.clear()
        return
    if data["target_chat"] != message.chat.id:  # handed off from a group: tell the group
        group = await session.get(Chat, data["target_chat"])
        with i18n.use_locale(group.language if group else i18n.default_locale):
            text = _("✅ {user} registered the SMSC account {name} for this chat.").format(
                user=escape(message.from_user.full_name), name=texts.bold(new.name)
            )
        await bot.send_message(data["target_chat"], text, message_thread_id=data["thread_id"])
    await state.set_state(AddAccount.threshold)
    await message.answer(
        **prompt(
            message,
            _("Below which balance should I warn? Send an amount like 500, or “off”."),
        )
    )


@dialog.message(AddAccount.threshold, F.text, ~F.text.startswith("/"))
async def enter_threshold(message: Message, state: FSMContext, accounts: AccountService) -> None:
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
    data = await state.get_data()
    await state.clear()
    account = await accounts.find(data["target_chat"], data["name"])
    if account is None:  # removed meanwhile
        return
    await accounts.set_threshold(account, threshold)
    await message.answer(texts.account_text(account))
