"""When the first account falls due, for the looks of the scheduled checks (bot.alerting.due)."""

from datetime import timedelta

from bot.alerting.due import first_due
from bot.storage.models import Account, Chat
from tests.alerting_fixtures import START, stored_account
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


def due(chat_id: int, login: str, due_in: float, **fields: object) -> Account:
    return stored_account(chat_id, login, next_check_at=START + timedelta(seconds=due_in), **fields)


async def test_the_first_due_is_the_earliest_a_look_could_claim(engine, sessionmaker):
    async with sessionmaker() as session:
        session.add_all([Chat(id=1, type="private"), Chat(id=2, type="group", active=False)])
        session.add_all(
            [
                due(2, "stopped", 1),  # its chat stopped the bot
                due(1, "leased", 2, lease_until=START + timedelta(minutes=1)),
                due(1, "next", 30),
                due(1, "later", 60),
            ]
        )
        await session.commit()
    assert await first_due(engine, None, START) == START + timedelta(seconds=30)


async def test_nothing_to_check_has_no_first_due(engine, sessionmaker):
    assert await first_due(engine, None, START) is None
