"""/add: register an SMSC account, in one line or through a dialog (`add_dialog`).

Passwords and API keys are deleted from the chat as soon as they are read, checked with
one balance request, and stored encrypted. In a group the dialog can move to a private
chat through a single-use link (`bot.storage.handoff`), so the password never enters the group.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import CommandObject, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.deep_linking import create_start_link
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.alerting.accounts import AccountService, NewAccount
from bot.alerting.chats import ChatService
from bot.alerting.names import valid_name
from bot.config import Settings
from bot.storage import handoff
from bot.storage.engine import Session
from bot.storage.handoff import HandoffRefused, Refusal
from bot.storage.models import Chat
from bot.telegram import texts
from bot.telegram.admins import ADMINS, AdminRights, Role
from bot.telegram.filters import Command
from bot.telegram.formatting import parse_amount
from bot.telegram.handlers import add_dialog
from bot.telegram.handlers.add_common import askers, register, site_choices
from bot.telegram.handlers.add_dialog import begin_dialog

router = Router(name=__name__)
# Outside the admin router: a /start in a group must not cost a rights lookup per member, and
# the link's own check asks Telegram afresh anyway.
handoff_router = Router(name=f"{__name__}.handoff")


class ContinueHere(CallbackData, prefix="add-here"):
    pass


def usage() -> str:
    return _(
        "Usage: /add &lt;login&gt; &lt;password&gt; [threshold], or just /add for a guided dialog."
    )


def topic_of(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


@router.message(Command("add", magic=F.args, ignore_case=True))
async def add_in_one_line(
    message: Message,
    command: CommandObject,
    accounts: AccountService,
    settings: Settings,
    chat_record: Chat,
) -> None:
    args = (command.args or "").split()  # a password among them is deleted already (add_rights)
    if len(args) not in (2, 3):
        await message.answer(usage())
        return
    try:
        threshold = parse_amount(args[2]) if len(args) == 3 else None
    except ValueError:
        await message.answer(usage())
        return
    login, password = args[0], args[1]
    # A name the chat has goes on, to be told how its credentials are replaced.
    if not valid_name(login) and await accounts.find(message.chat.id, login) is None:
        await message.answer(usage())
        return
    new = NewAccount(
        site=site_choices(settings)[0],
        login=login,
        secret=password,
        name=login,
        threshold=threshold,
        thread_id=topic_of(message),
    )
    chat_id = message.chat.id
    await register(message, accounts, chat_id, new, chat_record.timezone, askers(message, chat_id))


@router.message(Command("add", ignore_case=True))
async def add_dialog_start(message: Message, state: FSMContext, bot: Bot, session: Session) -> None:
    if message.chat.type == ChatType.PRIVATE:
        await begin_dialog(message, state, message.chat.id, topic_of(message))
        return
    if message.sender_chat is not None:
        # An anonymous admin posts as the group: no one to bind a private link to, and a
        # dialog here would take the group's answers for theirs, and name whoever pressed.
        await message.reply(
            _(
                "You post anonymously, so I cannot tell your answers from the group's. Turn "
                "off “Remain anonymous” for a moment and send /add again, or add the account "
                "in one message: /add &lt;login&gt; &lt;password&gt; [threshold] (I delete it "
                "at once)."
            )
        )
        return
    text = " ".join(
        (
            _(
                "The password is safest in a private chat with me: the account will still be "
                "registered for this group."
            ),
            _("The link works once, for you only, within 15 minutes."),
        )
    )
    payload = await handoff.create(
        session, message.from_user.id, message.chat.id, topic_of(message), datetime.now(UTC)
    )
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("🔒 Continue in a private chat"), url=await create_start_link(bot, payload)
    )
    builder.button(text=_("Continue here"), callback_data=ContinueHere())
    builder.adjust(1)
    await message.reply(text, reply_markup=builder.as_markup())


@router.callback_query(ContinueHere.filter())
async def continue_here(
    query: CallbackQuery, state: FSMContext, bot: Bot, admin_rights: AdminRights
) -> None:
    message = query.message
    # The dialog names its presser in the group, and an anonymous admin's answers come from
    # the group: refused, as their /add is (the router's rule has just looked the role up).
    anonymous = message.chat.type != ChatType.PRIVATE and (
        await admin_rights.role(bot, message.chat.id, query.from_user.id) is Role.ANONYMOUS_ADMIN
    )
    if anonymous:
        await query.answer(
            _(
                "You post anonymously, so I cannot tell your answers from the group's. Turn "
                "off “Remain anonymous” for a moment and send /add yourself."
            ),
            show_alert=True,
        )
        return
    await query.answer()
    await begin_dialog(message, state, message.chat.id, topic_of(message))


def handoff_refusal(reason: Refusal) -> str:
    return {
        Refusal.UNKNOWN: _("This link is not valid. Ask for a new one: send /add in the group."),
        Refusal.OTHER_USER: _(
            "This link belongs to the person who sent /add in the group. Send /add there "
            "yourself to get your own."
        ),
        Refusal.USED: _(
            "This link was already used; each works once. Send /add in the group for a new one."
        ),
        Refusal.EXPIRED: _(
            "This link has expired (links work for 15 minutes). Send /add in the group for a "
            "new one."
        ),
    }[reason]


@handoff_router.message(
    CommandStart(deep_link=True, magic=F.args.startswith(handoff.PREFIX)),
    F.chat.type == ChatType.PRIVATE,
)
async def open_handoff(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    bot: Bot,
    session: Session,
    chats: ChatService,
    admin_rights: AdminRights,
) -> None:
    user_id = message.from_user.id
    try:
        ticket = await handoff.consume(session, command.args, user_id, datetime.now(UTC))
    except HandoffRefused as refused:
        await message.answer(handoff_refusal(refused.reason))
        return
    group = await chats.get(ticket.chat_id)
    # Before the rights: in a group that removed the bot no one is an admin, and whoever
    # opens the link is told how to go on instead.
    if group is not None and not group.active:
        await message.answer(texts.not_in_group())
        return
    role = await admin_rights.role(bot, ticket.chat_id, user_id, fresh=True)
    if role is Role.BOT_REMOVED:  # its removal not seen (say, while the bot was down)
        await message.answer(texts.not_in_group())
        return
    if role not in ADMINS:
        await message.answer(_("Only administrators of that group may add accounts to it."))
        return
    await message.answer(
        _("Let's register an SMSC account for {group}.").format(
            group=texts.bold(group.title or str(group.id))
        )
    )
    await begin_dialog(message, state, ticket.chat_id, ticket.thread_id)


router.include_router(add_dialog.router)
