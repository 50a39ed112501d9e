"""Which typed words the log masks: only secrets sent to SMSC or stored, never a stranger's
"password" that no request carried (or anyone could blank a word in every log line)."""

from bot import logs
from bot.logs import MASK
from tests.handler_fixtures import say

PRIVATE = 77


async def test_a_refused_add_leaves_its_password_unmasked(dp, bot, smsc):
    # Any word a log line holds: "chat_id" itself in the attack, a word of its own here.
    word = "refused-word-7f3a"
    await say(dp, bot, PRIVATE, "/add stranger wrong-password-1")  # SMSC refuses: error 2
    requests = len(smsc.requests)
    [reply] = await say(dp, bot, PRIVATE, f"/add other {word}")
    assert "Not saved" in reply.text and "refused a login or password" in reply.text
    assert len(smsc.requests) == requests  # the guard asked SMSC nothing
    assert logs.mask(f"chat_id=1 {word}") == f"chat_id=1 {word}"


async def test_a_stored_password_is_masked(dp, bot, smsc):
    smsc.accounts["saved"] = ("stored-password-9c1e", 0)
    [reply] = await say(dp, bot, PRIVATE, "/add saved stored-password-9c1e")
    assert "saved" in reply.text
    assert logs.mask("psw=stored-password-9c1e") == f"psw={MASK}"
