"""When the first account falls due, for the looks of the scheduled checks (bot.alerting.due)."""

from datetime import timedelta

from bot.alerting.due import first_due
from bot.storage.models import Account, Chat
from tests.alerting_fixtures import START
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


def account(chat_id: int, login: str, due_in: float, **fields: object) -> Account:
    return Account(
        chat_id=chat_id,
        name=login,
        site="https://smsc.ru",
        login=login,
        secret=b"token",
        credentials_key=login,
        check_interval=60,
        next_check_at=START + timedelta(seconds=due_in),
        **fields,
    )


async def test_the_first_due_is_the_earliest_a_look_could_claim(engine, sessionmaker):
    async with sessionmaker() as session:
        session.add_all([Chat(id=1, type="private"), Chat(id=2, type="group", active=False)])
        session.add_all(
            [
                account(2, "stopped", 1),  # its chat stopped the bot
                account(1, "leased", 2, lease_until=START + timedelta(minutes=1)),
                account(1, "next", 30),
                account(1, "later", 60),
            ]
        )
        await session.commit()
    assert await first_due(engine, None, START) == START + timedelta(seconds=30)


async def test_nothing_to_check_has_no_first_due(engine, sessionmaker):
    assert await first_due(engine, None, START) is None
