"""Two replicas of the bot, one PostgreSQL, one Redis, and the fake Bot API delivering webhook
updates to the replicas in turn: from a chat's point of view and from SMSC's, one bot. Real
processes from the installed wheel, real servers (tests/servers.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bench.data import BALANCE, LOW_BALANCE, Layout, Probe, login_name, password, seed
from bot.alerting.outbox import SENDS_AT_ONCE
from bot.storage.instance import PROCESS_LOCK
from bot.storage.models import Account, Notification
from tests.bot_process import BotProcess
from tests.e2e_helpers import free_port, say, wait_until

LEASE_SECONDS = 5
LOW_ALERT = re.compile(r"⚠️ Low balance on (\w+):")


@pytest.fixture
def fleet(telegram, fake_smsc, tmp_path, installed_bot, postgres_url, redis_url):
    """Two replicas, not yet started: the second is `fleet[0].replica(...)`."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = BotProcess(
        telegram,
        fake_smsc,
        tmp_path / "a",
        webhook=True,
        PYTHONPATH=str(installed_bot.site),
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        LEASE_SECONDS=str(LEASE_SECONDS),
    )
    replicas = [first, first.replica(tmp_path / "b")]
    yield replicas
    for replica in replicas:
        if replica.process is not None:
            assert replica.stop() == 0, replica.log()
        assert "Traceback" not in replica.log(), replica.log()


def start(fleet: list[BotProcess]) -> None:
    for replica in fleet:
        replica.start()


@pytest.fixture
def probe(postgres_url):
    """The test's look into the replicas' database (bench.data.Probe)."""
    probe = Probe(postgres_url)
    yield probe
    probe.close()


def seeded(replica: BotProcess, layout: Layout, *, low_logins=frozenset()) -> Layout:
    """The logins at SMSC, and chats and accounts watching them as /add leaves them
    (bench.data.seed), not due for an hour."""
    for login in range(layout.logins):
        # The rest as seeded (BALANCE): no top-up messages to wait for.
        balance = LOW_BALANCE if login in low_logins else BALANCE
        replica.smsc.add_account(login_name(login), password(login), balance=balance)
    env = replica.env
    asyncio.run(seed(env["DATABASE_URL"], env["SECRET_KEY"], env["SMSC_BASE_URL"], layout))
    return layout


def test_thirty_users_asking_for_one_login_at_once_cost_one_request(
    fleet, fake_smsc, telegram, postgres_url
):
    layout = seeded(fleet[0], Layout(accounts=30, chats=30, logins=1))
    start(fleet)
    for chat_id in layout.chat_ids:
        telegram.message(chat_id, "/balance")
    telegram.wait_for(lambda: all(telegram.sent(c) for c in layout.chat_ids), timeout=30)
    # A delivery is recorded once its replica has answered it, after the reply went out.
    telegram.wait_for(lambda: len([d for d in telegram.deliveries if d.error is None]) == 30)

    for chat_id in layout.chat_ids:
        assert "1,000.00 RUB" in telegram.sent(chat_id)[-1]["text"]
    assert {d.address for d in telegram.deliveries} == {r.http for r in fleet}
    # One request served all thirty, across both replicas: the guard and its cache are shared.
    assert fake_smsc.max_in_window(login_name(0)) <= 1


def test_an_add_dialog_continues_on_whichever_replica_gets_the_next_message(
    fleet, fake_smsc, telegram
):
    user = 4242
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00")
    start(fleet)
    _, reply = say(telegram, user, "/add")
    telegram.callback(user, reply["message_id"], _first_button(reply))
    telegram.wait_for(lambda: telegram.edits(user))
    site_message = telegram.sent(user)[-1]
    before = len(telegram.sent(user))
    telegram.callback(user, site_message["message_id"], _first_button(site_message))
    telegram.wait_for(lambda: len(telegram.sent(user)) > before)
    _, reply = say(telegram, user, "shop")
    assert "password" in reply["text"]
    _, reply = say(telegram, user, "s3cret!", expect=2)
    assert "Below which balance" in reply["text"]
    _, reply = say(telegram, user, "1000")
    assert "1,500.00 RUB" in reply["text"]

    # Six updates, taken in turn by the two replicas (each delivery is recorded once the
    # replica has answered it, after its reply went out).
    handled = telegram.wait_for(
        lambda: [d.address for d in telegram.deliveries if d.error is None][5:] and True
    )
    handled_by = [d.address for d in telegram.deliveries if d.error is None]
    assert handled and len(handled_by) == 6 and set(handled_by) == {r.http for r in fleet}


def _first_button(message) -> str:
    return message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]


def _low_alerts(telegram, layout: Layout) -> Counter[tuple[int, str]]:
    """Low-balance alerts delivered, by chat and account name."""
    alerts: Counter[tuple[int, str]] = Counter()
    for chat_id in layout.chat_ids:
        for message in telegram.sent(chat_id):
            alert = LOW_ALERT.match(message["text"])
            if alert:
                alerts[chat_id, alert[1]] += 1
    return alerts


def _expected_alerts(layout: Layout, low_logins) -> set[tuple[int, str]]:
    return {
        (layout.chat_of(j), login_name(layout.login_of(j)))
        for j in range(layout.accounts)
        if layout.login_of(j) in low_logins
    }


def _swept(probe: Probe, since: datetime) -> bool:
    return probe.checked_since(since) == SWEEP.accounts


SWEEP = Layout(accounts=500, chats=50, logins=50)
LOW = frozenset(range(1, 50, 2))  # half the logins: 250 accounts under their threshold


def test_a_sweep_is_shared_without_doubles(fleet, fake_smsc, telegram, probe):
    seeded(fleet[0], SWEEP, low_logins=LOW)
    start(fleet)
    probe.count_checks()
    since = probe.make_due()

    expected = _expected_alerts(SWEEP, LOW)
    telegram.wait_for(lambda: set(_low_alerts(telegram, SWEEP)) == expected, timeout=60)
    telegram.wait_for(lambda: _swept(probe, since), timeout=30)
    time.sleep(1)  # a second, doubled check or send would show by now

    assert probe.checked_more_than_once() == 0
    for login in range(SWEEP.logins):
        assert len(fake_smsc.requests_for(login_name(login))) == 1
    assert max(_low_alerts(telegram, SWEEP).values()) == 1


def test_a_replica_killed_mid_sweep_leaves_nothing_undone_or_doubled(
    fleet, fake_smsc, telegram, probe
):
    seeded(fleet[0], SWEEP, low_logins=LOW)
    fake_smsc.latency = 1.0
    start(fleet)
    probe.count_checks()
    # Due in ten waves half a second apart: each replica claims some as it looks each second.
    since = datetime.now(UTC)
    for wave in range(10):
        due_at = since + timedelta(seconds=wave / 2)
        probe.run(update(Account).where(Account.id % 10 == wave).values(next_check_at=due_at))
    time.sleep(3)
    fleet[0].stop(signal.SIGKILL)
    leased = select(func.count()).select_from(Account).where(Account.lease_until.is_not(None))
    assert probe.run(leased)[0][0] > 0, "the kill caught checks under way"

    expected = _expected_alerts(SWEEP, LOW)
    telegram.wait_for(lambda: _swept(probe, since), timeout=LEASE_SECONDS + 60)
    telegram.wait_for(lambda: set(_low_alerts(telegram, SWEEP)) == expected, timeout=60)
    unsent = select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None))
    telegram.wait_for(lambda: probe.run(unsent)[0][0] == 0, timeout=LEASE_SECONDS + 30)
    assert probe.checked_more_than_once() == 0
    # A send Telegram accepted in the instant before the kill, not yet recorded, goes again
    # from the other replica (the documented window): at most the sends under way at once.
    doubled = sum(n - 1 for n in _low_alerts(telegram, SWEEP).values())
    assert doubled <= SENDS_AT_ONCE, doubled


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_second_process_without_redis_refuses_to_start(bot_process, tmp_path, database, request):
    if database == "postgresql":
        bot_process.env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    bot_process.start()
    (tmp_path / "second").mkdir()
    second = bot_process.replica(tmp_path / "second").launch()
    assert second.process.wait(timeout=60) == 1
    second.process = None
    [line] = second.log().strip().splitlines()
    assert line.startswith("error: another bot process is using this database; stop it, or run")
    assert bot_process.process.poll() is None, "the first goes on"
    assert bot_process.stop() == 0  # before its database goes, at the test's end


def test_a_process_whose_lock_another_took_meanwhile_stops(bot_process, postgres_url):
    """The lock's session ends (a PostgreSQL restart, a dropped connection), and a lone
    process takes the lock before the bot takes it again: the bot stops rather than run
    beside it."""
    bot_process.env["DATABASE_URL"] = postgres_url
    bot_process.start()
    loop = asyncio.new_event_loop()
    try:
        other = loop.run_until_complete(_end_the_lock_session_and_take_the_lock(postgres_url))
        assert bot_process.process.wait(timeout=30) == 1
        bot_process.process = None
        loop.run_until_complete(other.close())
    finally:
        loop.close()
    [line] = [line for line in bot_process.log().splitlines() if line.startswith("error:")]
    assert line.startswith(
        "error: the database lock went with its connection (a server restart, a dropped "
        "connection): another bot process is using this database"
    ), line


async def _end_the_lock_session_and_take_the_lock(url: str) -> asyncpg.Connection:
    """The session holding the bot's process lock ended, as a server restart would end it
    (only that one: the bot's other connections' errors are not what is tested here), and
    the lock taken at once on a connection of the test's, as another process would. The
    connection is made first, and waits for the session's end: the bot looks at its lock every
    LOCK_CHECK_SECONDS, and a connection made after the end sometimes came after its look."""
    parsed = make_url(url)
    other = await asyncpg.connect(
        host=parsed.query["host"], database=parsed.database, user=parsed.username
    )
    await other.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert await other.fetchval("SELECT pg_try_advisory_lock($1)", PROCESS_LOCK)
    return other


def with_password(url: str, password: str) -> str:
    return url.replace("redis://", f"redis://:{password}@", 1)


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("Wr0ng-pa55", "invalid username-password pair"),
        (None, "Authentication required"),  # the server wants one, none was given
    ],
)
def test_a_redis_that_refuses_the_password_ends_the_start_in_one_line(
    fleet, redis_with_password, password, words
):
    replica = fleet[0]
    url = redis_with_password if password is None else with_password(redis_with_password, password)
    replica.env["REDIS_URL"] = url
    assert replica.launch().process.wait(timeout=60) == 1
    replica.process = None
    [line] = replica.log().strip().splitlines()
    assert line.startswith("error: REDIS_URL: Redis refused the password: "), line
    assert words in line and "Wr0ng-pa55" not in line, line


def test_start_waits_for_redis_with_a_line_per_attempt(fleet):
    replica = fleet[0]
    # Nothing listens: a Redis not up yet (started after the bot), or a network blip.
    replica.env["REDIS_URL"] = with_password(f"redis://127.0.0.1:{free_port()}/0", "Pa55word")
    replica.launch()
    wait_until(lambda: replica.log().count("Redis not answering") >= 2, timeout=30)
    assert replica.stop() == 0
    log = replica.log()
    assert "ConnectionError" in log and "Pa55word" not in log, log
