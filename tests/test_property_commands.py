"""Property test: any command with any arguments, in any realistic chat, gets an answer and
never reaches the error handler."""

from decimal import Decimal

import pytest
from aiogram.methods import EditMessageText, SendMessage, SendPhoto
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.telegram.commands import COMMANDS
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say

NAMES = ("shop", "Склад", "api.key", "a_very_long_account_name_0123456")
# (chat, user): a private chat with nothing, one with one account, a group with several
# (its admin, and a member who may only read).
PLACES = [(1, None), (3, None), (GROUP, ADMIN), (GROUP, MEMBER)]


@pytest.fixture
async def chats(dp, bot, smsc):
    for name in NAMES:
        smsc.accounts[name] = ("pw", Decimal("1234.50"))
        await say(dp, bot, GROUP, f"/add {name} pw 2000", user_id=ADMIN)
    await say(dp, bot, 3, "/add shop pw 100")
    bot.session.requests.clear()


words = st.sampled_from(
    [*NAMES, "off", "выкл", "25:61", "9:30", "America", "Europe/Moscow", "ru", "1e9", "²", "٣"]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from([*COMMANDS, "start"]),
    place=st.sampled_from(PLACES),
    args=st.lists(
        st.one_of(
            st.text(min_size=1, max_size=12).filter(lambda t: t.strip() and "\x00" not in t),
            st.from_regex(r"-?[0-9 ,.%]{1,12}", fullmatch=True),
            words,
        ),
        max_size=3,
    ),
)
async def test_any_input_gets_an_answer_never_an_error(
    dp, bot, chats, caplog, command, place, args
):
    chat_id, user_id = place
    text = " ".join([f"/{command}", *args])
    before = len(bot.session.requests)
    await say(dp, bot, chat_id, text, user_id=user_id)
    answers = [
        r
        for r in bot.session.requests[before:]
        if isinstance(r, SendMessage | SendPhoto | EditMessageText)
    ]
    assert answers, text
    assert all("went wrong" not in (getattr(a, "text", "") or "") for a in answers), text
    assert "update failed" not in caplog.text, text
