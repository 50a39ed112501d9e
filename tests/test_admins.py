"""Admin checks cost a getChatMember only for what admins do, at most once a minute per person."""

import asyncio
from datetime import UTC, datetime

from aiogram.exceptions import TelegramMigrateToChat
from aiogram.methods import GetChatMember
from aiogram.types import ChatMemberAdministrator, ChatMemberMember, ChatMemberUpdated, Update, User

from bot.telegram.admins import AdminRights, Role
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.mocked_bot import MockedBot, chat_of, message_update


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_ordinary_group_messages_cost_no_lookup(dp, bot):
    bot_message = (await say(dp, bot, GROUP, "/balance", user_id=MEMBER))[0]
    reply_to = message_update(GROUP, bot_message.text, user_id=42).message
    ordinary = [
        "hello",
        "/balance",
        "/accounts",
        "/help",
        "/frobnicate",
        "/remove@other_bot shop",
        "/threshold@other_bot shop 5",
        "what is the balance?",
    ]
    for i in range(20):
        await say(dp, bot, GROUP, ordinary[i % len(ordinary)], user_id=MEMBER + i)
    await say(dp, bot, GROUP, "thanks", user_id=MEMBER, reply_to=reply_to)
    assert bot.calls(GetChatMember) == []


async def test_twenty_admin_commands_in_a_minute_cost_one_lookup(dp, bot):
    await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    for i in range(20):
        [reply] = await say(dp, bot, GROUP, f"/threshold shop {i + 1}", user_id=ADMIN)
        assert f"{i + 1}.00" in reply.text
    assert len(bot.calls(GetChatMember)) == 1


async def test_members_admin_commands_are_refused_and_cached_too(dp, bot):
    for _ in range(5):
        [reply] = await say(dp, bot, GROUP, "/remind 3", user_id=MEMBER)
        assert "only administrators" in reply.text
    assert len(bot.calls(GetChatMember)) == 1


def member_update(user_id: int, *, was_admin: bool) -> Update:
    user = User(id=user_id, is_bot=False, first_name="Ann")
    rights = {
        name: False
        for name, field in ChatMemberAdministrator.model_fields.items()
        if field.is_required() and name != "user"
    }
    admin = ChatMemberAdministrator(user=user, **rights)
    member = ChatMemberMember(user=user)
    event = ChatMemberUpdated(
        chat=chat_of(GROUP),
        from_user=User(id=1, is_bot=False, first_name="Owner"),
        date=datetime.now(UTC),
        old_chat_member=admin if was_admin else member,
        new_chat_member=member if was_admin else admin,
    )
    return Update(update_id=1, chat_member=event)


async def test_demotion_is_noticed_at_once_through_chat_member(dp, bot):
    assert "chat_member" in dp.resolve_used_update_types()
    [reply] = await say(dp, bot, GROUP, "/remind 3", user_id=ADMIN)
    assert "after 3 h" in reply.text
    bot.session.admins.discard((GROUP, ADMIN))
    await dp.feed_update(bot, member_update(ADMIN, was_admin=True))
    [reply] = await say(dp, bot, GROUP, "/remind 5", user_id=ADMIN)
    assert "only administrators" in reply.text
    assert len(bot.calls(GetChatMember)) == 2


async def test_answers_expire_after_a_minute():
    bot, clock = MockedBot(), Clock()
    rights = AdminRights(clock=clock)
    bot.session.admins.add((GROUP, ADMIN))
    assert await rights.is_admin(bot, GROUP, ADMIN)
    bot.session.admins.discard((GROUP, ADMIN))
    clock.now += 59
    assert await rights.is_admin(bot, GROUP, ADMIN)  # still the remembered answer
    assert not await rights.is_admin(bot, GROUP, ADMIN, fresh=True)  # before a write
    bot.session.admins.add((GROUP, ADMIN))
    clock.now += 61
    assert await rights.is_admin(bot, GROUP, ADMIN)
    assert len(bot.calls(GetChatMember)) == 3


async def test_unknown_chat_or_user_is_no_admin():
    bot = MockedBot()
    bot.session.fail(GetChatMember, 400, "Bad Request: chat not found")
    rights = AdminRights()
    assert not await rights.is_admin(bot, -1, ADMIN)


async def test_a_chat_that_removed_the_bot_has_no_admin_until_it_adds_the_bot_back():
    bot = MockedBot()
    bot.session.admins.add((GROUP, ADMIN))
    bot.session.fail(GetChatMember, 403, "Forbidden: bot was kicked from the supergroup chat")
    rights = AdminRights()
    assert await rights.role(bot, GROUP, ADMIN) is Role.BOT_REMOVED  # told apart from MEMBER
    assert await rights.is_admin(bot, GROUP, ADMIN)  # added back: asked again, not remembered
    assert len(bot.calls(GetChatMember)) == 2
    bot.session.fail(GetChatMember, 403, "Forbidden: bot was kicked from the supergroup chat")
    assert not await rights.is_admin(bot, GROUP, ADMIN, fresh=True)


async def test_simultaneous_questions_share_one_lookup():
    bot = MockedBot()
    bot.session.admins.add((GROUP, ADMIN))
    rights = AdminRights()
    answers = await asyncio.gather(*(rights.is_admin(bot, GROUP, ADMIN) for _ in range(10)))
    assert answers == [True] * 10
    assert len(bot.calls(GetChatMember)) == 1


async def test_memory_is_bounded():
    bot = MockedBot()
    rights = AdminRights(max_entries=100)
    for user_id in range(1000):
        await rights.is_admin(bot, GROUP, user_id)
    assert len(rights._known) == 100
    await rights.is_admin(bot, GROUP, 999)  # the newest are kept
    assert len(bot.calls(GetChatMember)) == 1000


async def test_chat_migrated_to_a_supergroup_has_no_admin_under_its_old_id():
    bot = MockedBot()

    async def migrated(chat_id, user_id, **kwargs):
        method = GetChatMember(chat_id=chat_id, user_id=user_id)
        raise TelegramMigrateToChat(method, "group chat was upgraded", migrate_to_chat_id=-1009)

    bot.get_chat_member = migrated
    assert not await AdminRights().is_admin(bot, -9, ADMIN)


async def test_chatter_during_a_group_dialog_costs_no_lookup(dp, bot):
    await dp.fsm.get_context(bot, GROUP, MEMBER).set_state("AddAccount:name")
    for text in ("hello", "what is the balance?", "/balance"):
        await say(dp, bot, GROUP, text, user_id=MEMBER)
    assert bot.calls(GetChatMember) == []
