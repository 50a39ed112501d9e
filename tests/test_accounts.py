"""The list a chat sees, the limits of /add while another /add of the chat awaits SMSC, and
the alerts of credentials replaced, of balances asked while a scheduled check records one, and
of an account removed."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptography.fernet import Fernet
from sqlalchemy import event, select, update

from bot.alerting.accounts import (
    MAX_ACCOUNTS_PER_CHAT,
    AccountExists,
    AccountLimitReached,
    AccountService,
    NewAccount,
)
from bot.alerting.claims import Claims
from bot.alerting.outbox import Outbox
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard
from bot.smsc.refusals import AskerPaused
from bot.smsc.windows import MemoryGuardState
from bot.storage.chats import ensure_chat
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, Chat, Notification
from tests.guard_fixtures import Clock
from tests.handler_fixtures import MemorySmsc
from tests.monitoring_fixtures import Checker
from tests.outbox_fixtures import FakeSender
from tests.servers import BOTH_DATABASES


def service(session, chat: Chat, smsc: MemorySmsc, monitor) -> AccountService:
    box = SecretBox(Fernet.generate_key())
    return AccountService(session, box, BalanceGuard(smsc), monitor, 900, chat=chat)


def new(name: str) -> NewAccount:
    return NewAccount("https://smsc.ru", name, "right", name)


@BOTH_DATABASES
async def test_the_chat_read_with_its_accounts_lists_what_this_update_added_and_removed(
    sessionmaker, monitor
):
    smsc = MemorySmsc()
    smsc.accounts = {name: ("right", Decimal(10)) for name in ("b", "a", "c")}
    async with sessionmaker() as session:
        await ensure_chat(session, 1, "private", None, "en")
        await ensure_chat(session, 2, "private", None, "en")
        await service(session, None, smsc, monitor).add(2, new("c"))
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, smsc, monitor)
        assert await accounts.list(1) == []
        await accounts.add(1, new("b"))
        await accounts.add(1, new("a"))
        assert {a.name for a in await accounts.list(1)} == {"a", "b"}
        assert [a.name for a in await accounts.list(2)] == ["c"]  # another chat: asked for
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, smsc, monitor)
        listed = await accounts.list(1)
        assert [a.name for a in listed] == ["a", "b"]  # read by name
        await accounts.remove(listed[0])
        assert [a.name for a in await accounts.list(1)] == ["b"]
    async with sessionmaker() as session:
        names = await session.scalars(select(Account.name).order_by(Account.name))
        assert names.all() == ["b", "c"]


@BOTH_DATABASES
async def test_a_removed_accounts_alerts_waiting_to_go_never_go(sessionmaker, monitor):
    """/remove while the account's alerts wait in the outbox (a 429, an outage): the chat gets
    no alert, nor buttons, of an account it no longer has. The edit taking the buttons off its
    alert sent before still goes, and so does, once, the alert being sent at that instant."""
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, MemorySmsc(), monitor)
        account, _result = await accounts.add(1, new("shop"))
        now = datetime.now(UTC)
        alert, edit, sending, waiting = (
            Notification(chat_id=1, account_id=account.id, next_attempt_at=now, **fields)
            for fields in (
                {"kind": "low", "text": "⚠️ shop", "sent_at": now, "message_id": 7},
                {"kind": "resolved", "text": "✅ Resolved"},
                {"kind": "reminder", "text": "⏰ shop"},
                {"kind": "cant_check", "text": "❌ shop"},
            )
        )
        session.add(alert)
        await session.flush()
        edit.edit_of = alert.id
        session.add_all([edit, sending, waiting])
        await session.commit()
        ids = {"edit": edit.id, "sending": sending.id, "waiting": waiting.id}
        claims = Claims(sessionmaker, lease_seconds=60, writes=None)
        [claimed] = await claims.claim([ids["sending"]], now)  # the outbox is sending it
        await accounts.remove(account)
    claims.record(claimed, sent_at=now, message_id=8)  # Telegram accepted it meanwhile
    await claims.flush()
    sender = FakeSender()
    while await Outbox(sender, sessionmaker).deliver_pending():
        pass
    assert sender.calls == [("edit", ids["edit"], 7)]
    async with sessionmaker() as session:
        assert (await session.get(Notification, ids["sending"])).failure is None
        assert (await session.get(Notification, ids["waiting"])).failure == "account removed"


@BOTH_DATABASES
async def test_an_alert_claimed_as_its_account_is_removed_goes_once(engine, sessionmaker, monitor):
    """The outbox claims an alert of the account at the very instant of /remove: the removal
    waits for the claim's commit and leaves the alert, being sent, to go (once)."""
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, MemorySmsc(), monitor)
        account, _result = await accounts.add(1, new("shop"))
        now = datetime.now(UTC)
        session.add(Notification(chat_id=1, account_id=account.id, kind="low", text="⚠️ shop"))
        await session.commit()
        async with engine.begin() as claiming:  # the claim's UPDATE, not committed yet
            await claiming.execute(
                update(Notification).values(lease_until=now + timedelta(seconds=60))
            )
            removing = asyncio.create_task(accounts.remove(account))
            await asyncio.sleep(0.3)
            assert not removing.done()
        await removing
    async with sessionmaker() as session:
        alert = await session.scalar(select(Notification))
    assert alert.failure is None and alert.lease_until is not None


class HeldSmsc(MemorySmsc):
    """Answers once `answer` is set: /adds then wait for SMSC side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.answer, self.asked = asyncio.Event(), asyncio.Semaphore(0)

    async def fetch_balance(self, creds):
        self.asked.release()
        await self.answer.wait()
        return await super().fetch_balance(creds)


async def adds_side_by_side(sessionmaker, monitor, smsc, names: list[str]) -> list:
    """/add of each name from its own update (session), all awaiting SMSC at once."""

    async def add(name: str):
        async with sessionmaker() as session:
            chat = await ensure_chat(session, 1, "private", None, "en")
            try:
                await service(session, chat, smsc, monitor).add(1, new(name))
            except (AccountLimitReached, AccountExists) as error:
                return type(error)
            return name

    adding = [asyncio.create_task(add(name)) for name in names]
    for _name in names:
        await smsc.asked.acquire()
    smsc.answer.set()
    return await asyncio.gather(*adding)


@BOTH_DATABASES
async def test_two_adds_at_the_last_free_place_save_one(sessionmaker, monitor):
    """Two admins (or a double tap) add at once to a chat one short of the limit: both
    counted 49 before SMSC answered; one is saved, the other told the chat is full."""
    smsc = HeldSmsc()
    names = [f"a{i:02d}" for i in range(MAX_ACCOUNTS_PER_CHAT + 1)]
    smsc.accounts = {name: ("right", Decimal(10)) for name in names}
    smsc.answer.set()
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, smsc, monitor)
        for name in names[: MAX_ACCOUNTS_PER_CHAT - 1]:
            await accounts.add(1, new(name))
    smsc.answer.clear()
    results = await adds_side_by_side(sessionmaker, monitor, smsc, names[-2:])
    assert results.count(AccountLimitReached) == 1
    async with sessionmaker() as session:
        saved = await session.scalars(select(Account.name).where(Account.chat_id == 1))
        assert len(saved.all()) == MAX_ACCOUNTS_PER_CHAT


@BOTH_DATABASES
async def test_two_adds_of_one_name_save_one(sessionmaker, monitor):
    """The same name added twice at once (in other letters' case too): one is saved, the
    other told the chat has it, not a failure at the database's unique name."""
    smsc = HeldSmsc()
    smsc.accounts = {"shop": ("right", Decimal(10)), "SHOP": ("right", Decimal(10))}
    results = await adds_side_by_side(sessionmaker, monitor, smsc, ["shop", "SHOP"])
    assert AccountExists in results and len({*results} - {AccountExists}) == 1
    async with sessionmaker() as session:
        assert len((await session.scalars(select(Account.name))).all()) == 1


async def test_a_cached_balance_decrypts_no_password(sessionmaker, monitor, monkeypatch):
    smsc = MemorySmsc()  # knows "shop" with the password "right"
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, smsc, monitor)
        account, _result = await accounts.add(1, new("shop"))
        [(_account, first)] = await accounts.balances([account])
        decrypted = []
        monkeypatch.setattr(SecretBox, "decrypt", lambda box, token: decrypted.append(token))
        [(_account, again)] = await accounts.balances([account])
    assert again.balance == first.balance and again.stale
    assert decrypted == [] and smsc.requests == ["shop"]


async def test_a_cached_balance_is_recorded_once_per_account(engine, sessionmaker, monitor):
    """Two chats watch one login: the cache's answer to the second is new to its account and
    recorded; asked again, it changes nothing and nothing is committed."""
    commits = []
    event.listen(engine.sync_engine, "commit", lambda connection: commits.append(1))
    smsc = MemorySmsc()
    guard = BalanceGuard(smsc)
    box = SecretBox(Fernet.generate_key())
    async with sessionmaker() as session:
        for chat_id in (1, 2):
            chat = await ensure_chat(session, chat_id, "private", None, "en")
            accounts = AccountService(session, box, guard, monitor, 900, chat=chat)
            await accounts.add(chat_id, new("shop"))
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 2, "private", None, "en")
        accounts = AccountService(session, box, guard, monitor, 900, chat=chat)
        [account] = await accounts.list(2)
        account.last_balance = account.last_checked_at = None  # as if never checked
        await session.commit()
        commits.clear()
        [(_account, cached)] = await accounts.balances([account])
        assert cached.stale and len(commits) == 1
        assert (account.last_balance, account.last_checked_at) == (Decimal(150), cached.checked_at)
        await accounts.balances([account])
        assert len(commits) == 1
    assert smsc.requests == ["shop"]  # one request served both chats


@BOTH_DATABASES
async def test_new_credentials_end_the_incident_of_the_old(sessionmaker, monitor):
    """The password changed at SMSC ("can't check"), and /add gives the new one: the alert
    says the incident is resolved and loses its buttons; nobody can take it any more."""
    smsc = MemorySmsc()
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = service(session, chat, smsc, monitor)
        account, _result = await accounts.add(1, new("shop"))
        await monitor.record(session, [(account, SmscAuthError(2, "authorise error"))])
        await session.commit()
        alert = await session.scalar(select(Notification))
        smsc.accounts["shop"] = ("new", Decimal(150))
        await accounts.add(1, NewAccount("https://smsc.ru", "shop", "new", "shop"), replace=True)
        assert not await accounts.acknowledge(account, 7, "Ann", 1)
        edit = await session.scalar(select(Notification).where(Notification.edit_of == alert.id))
    assert alert.kind == "cant_check" and alert.reply_markup is not None
    assert "Resolved" in edit.text and edit.reply_markup is None


@BOTH_DATABASES
async def test_a_balance_asked_during_a_scheduled_check_alerts_once(sessionmaker, monitor, clock):
    """/balance (or "Check now") while the scheduled check of the login is under way: the
    check records the crossing first, and /balance's answer does not alert it again."""
    smsc = MemorySmsc()
    smsc.accounts["shop"] = ("right", Decimal(1500))
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    box = SecretBox(Fernet.generate_key())
    async with sessionmaker() as session:
        chat = await ensure_chat(session, 1, "private", None, "en")
        accounts = AccountService(session, box, guard, monitor, 900, chat=chat)
        shop = NewAccount("https://smsc.ru", "shop", "right", "shop", Decimal(1000))
        account, _result = await accounts.add(1, shop)
        smsc.accounts["shop"] = ("right", Decimal(900))
        scheduled = Checker(sessionmaker, monitor, clock, account.id)
        answer = smsc.fetch_balance

        async def answered_after_the_check(creds):
            await scheduled.balance("900")
            return await answer(creds)

        smsc.fetch_balance = answered_after_the_check
        [(_account, result)] = await accounts.balances([account])
    assert result.balance.balance == Decimal(900)
    assert await scheduled.kinds() == ["low"]


async def test_a_password_smsc_refused_is_sent_once_per_user_though_another_chat_watches_it(
    sessionmaker, monitor
):
    """The group's account stays OK until its next check (up to a day away): its row must not
    make the refused password known good, and let one user send it to SMSC with every /add."""
    smsc, clock = MemorySmsc(), Clock()
    box = SecretBox(Fernet.generate_key())
    guard = BalanceGuard(smsc, state=MemoryGuardState(clock))

    def accounts(session, chat):
        return AccountService(session, box, guard, monitor, 900, chat=chat)

    async with sessionmaker() as session:
        group = await ensure_chat(session, -100, "group", None, "en")
        await accounts(session, group).add(-100, new("shop"))
    smsc.accounts["shop"] = ("changed", Decimal(10))  # or an allow-list switched on
    refusals = []
    for _attempt in range(3):
        clock.t += 60  # past the cache
        async with sessionmaker() as session:
            chat = await ensure_chat(session, 5, "private", None, "en")
            try:
                await accounts(session, chat).add(5, new("shop"), askers=("user:5", "chat:5"))
            except (SmscAuthError, AskerPaused) as error:
                refusals.append(type(error))
    assert refusals == [SmscAuthError, AskerPaused, AskerPaused]
    assert smsc.requests == ["shop", "shop"]
