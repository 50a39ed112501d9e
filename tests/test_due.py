"""When the first account falls due, for the looks of the scheduled checks (bot.alerting.due)."""

import contextlib
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, select

from bot.alerting.due import first_due, lease_due
from bot.smsc.guard import BalanceGuard
from bot.storage import direct
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, AccountState, Chat
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


@pytest.mark.parametrize("held", [True, False], ids=["held", "pooled"])
async def test_a_claim_leases_every_account_of_the_first_due_credentials(
    engine, sessionmaker, held
):
    # On the looks' held connection (SQLite) a claim is one statement on it, and no connection
    # is taken from the pool; what it leases is what a session's claim leases.
    box = SecretBox(Fernet.generate_key())
    pw = {"secret": box.encrypt("pw")}
    async with sessionmaker() as session:
        session.add_all([Chat(id=1, type="private"), Chat(id=2, type="group")])
        for chat_id in (1, 2):  # one login watched by two chats, known good in one of them
            state = AccountState.OK if chat_id == 1 else AccountState.UNKNOWN
            session.add(due(chat_id, "shop", -60, credentials_key="k-shop", state=state, **pw))
        session.add(due(1, "other", -30, credentials_key="k-other", **pw))
        session.add(due(1, "later", 600, credentials_key="k-later", **pw))
        await session.commit()
    lease = START + timedelta(minutes=1)
    taken: list[object] = []
    async with direct.held(engine) if held else contextlib.nullcontext() as connection:
        checkout = engine.sync_engine, "checkout", lambda *_: taken.append(1)
        event.listen(*checkout)
        claimed, more = await lease_due(
            sessionmaker,
            connection,
            contextlib.nullcontext(),
            BalanceGuard(None, cache_seconds=0),
            box,
            START,
            lease,
            limit=2,
        )
        event.remove(*checkout)
    assert {
        key: (creds.login, creds.secret, good) for (key, _), (creds, good) in claimed.items()
    } == {
        "k-shop": ("shop", "pw", True),
        "k-other": ("other", "pw", False),
    }
    assert more  # as many credentials as asked: more may be due
    async with sessionmaker() as session:
        leased = dict((await session.execute(select(Account.name, Account.lease_until))).all())
    assert leased == {"shop": lease, "other": lease, "later": None}
    if held and engine.dialect.name == "sqlite":
        assert not taken
