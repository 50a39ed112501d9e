"""`python -m bot copy-data --to URL`: a team's SQLite data moved into PostgreSQL for replicas."""

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.storage import transfer
from bot.storage.crypto import SecretBox
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from bot.storage.instance import single_instance
from bot.storage.models import (
    Account,
    AccountState,
    BalanceSample,
    Base,
    Chat,
    DailyRun,
    Handoff,
    Notification,
)
from bot.storage.transfer import TransferError, copy_data

GROUP, PRIVATE = -1001234567890, 42
NOW = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)
KEY = Fernet.generate_key()
SAMPLES = 300


async def fill(url: str) -> None:
    """A bot's database as the bot leaves it: the app's migrations, rows through the models."""
    engine = create_engine(url)
    await migrate(engine)
    box = SecretBox(KEY)
    async with create_sessionmaker(engine)() as session, session.begin():
        session.add_all(
            [
                Chat(
                    id=GROUP,
                    type="supergroup",
                    title="Ops",
                    hysteresis_percent=Decimal("2.50"),
                    timezone="Asia/Almaty",
                    digest_time="09:00",
                    digest_sent_on="2026-11-20",
                    anomaly_minimum=None,
                    created_at=NOW,
                ),
                Chat(id=PRIVATE, type="private", language="ru", created_at=NOW),
            ]
        )
        await session.flush()
        shop = Account(
            chat_id=GROUP,
            thread_id=7,
            name="shop",
            site="https://smsc.kz",
            login="shop",
            secret=box.encrypt("pa55word"),
            threshold=Decimal("1000.10"),
            check_interval=900,
            state=AccountState.LOW,
            last_balance=Decimal("999.999"),
            last_credit=Decimal("0.00"),
            currency="KZT",
            last_checked_at=NOW,
            next_check_at=NOW + timedelta(minutes=15),
            credentials_key=box.keyed_hash("https://smsc.kz", "shop", "pa55word"),
            low_since=NOW - timedelta(hours=3),
            lowest_balance=Decimal("950.5"),
            spend_rate=Decimal("123.4567"),
            created_at=NOW - timedelta(days=30),
        )
        api = Account(
            chat_id=PRIVATE,
            name="api key",
            site="https://smsc.ru",
            login=None,
            secret=box.encrypt("k3y"),
            check_interval=3600,
            created_at=NOW,
        )
        session.add_all([shop, api])
        await session.flush()
        session.add_all(
            BalanceSample(
                account_id=shop.id,
                taken_at=NOW - timedelta(minutes=15 * i),
                balance=Decimal("999.999") + Decimal(i) / 100,
                credit=Decimal("0.00"),
            )
            for i in range(SAMPLES)
        )
        session.add(
            Notification(
                chat_id=GROUP,
                thread_id=7,
                account_id=shop.id,
                kind="low",
                text="shop: 999.999 KZT",
                reply_markup='{"inline_keyboard": []}',
                silent=True,
                created_at=NOW,
                attempts=1,
                next_attempt_at=NOW,
                sent_at=NOW,
                message_id=77,
            )
        )
        session.add(
            Handoff(
                token="t0k3n",
                user_id=5,
                chat_id=GROUP,
                thread_id=7,
                expires_at=NOW + timedelta(minutes=10),
            )
        )
        session.add(DailyRun(name="thinning", day="2026-11-20"))
    await engine.dispose()


async def dump(url: str) -> dict[str, list[tuple]]:
    """Every table's rows, as the models read them, in id order."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in await connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_url(tmp_path, monkeypatch) -> str:
    """The bot's SQLite file, its key file beside it, named by DATABASE_URL."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await fill(url)
    (tmp_path / "secret.key").write_bytes(KEY)
    monkeypatch.chdir(tmp_path)  # away from the checkout's .env
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return url


async def test_everything_arrives_as_it_was(sqlite_url, postgres_url, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "BATCH_ROWS", 64)  # history comes in several batches

    said = await copy_data(postgres_url)

    original, copied = await dump(sqlite_url), await dump(postgres_url)
    assert copied == original
    assert repr(copied) == repr(original), "same Decimal digits, same UTC times"
    assert len(copied["balance_samples"]) == SAMPLES
    [shop, _] = copied["accounts"]
    account = dict(zip(Account.__table__.columns.keys(), shop, strict=True))
    assert str(account["threshold"]) == "1000.10" and account["last_checked_at"] == NOW
    assert SecretBox(KEY).decrypt(account["secret"]) == "pa55word"
    assert f"balance_samples  {SAMPLES:>10,}" in said
    assert "stopped" in said and "REDIS_URL" in said
    assert f"SECRET_KEY set to the key in {tmp_path / 'secret.key'}" in said


async def test_new_rows_on_postgresql_get_fresh_ids(sqlite_url, postgres_url):
    await copy_data(postgres_url)
    copied = await dump(postgres_url)
    engine = create_engine(postgres_url)
    async with create_sessionmaker(engine)() as session, session.begin():
        account = Account(
            chat_id=PRIVATE,
            name="new",
            site="https://smsc.ru",
            login="new",
            secret=b"token",
            check_interval=900,
        )
        session.add(account)
        await session.flush()
        sample = BalanceSample(
            account_id=account.id, taken_at=NOW, balance=Decimal(1), credit=Decimal(0)
        )
        notification = Notification(chat_id=PRIVATE, kind="low", text="x")
        session.add_all([sample, notification])
    await engine.dispose()
    assert account.id == max(row[0] for row in copied["accounts"]) + 1
    assert sample.id == SAMPLES + 1
    assert notification.id == 2


async def test_a_target_in_use_is_refused_and_left_alone(sqlite_url, postgres_url):
    engine = create_engine(postgres_url)
    await migrate(engine)
    async with create_sessionmaker(engine)() as session, session.begin():
        session.add(Chat(id=PRIVATE, type="private", title="theirs"))
    before = await dump(postgres_url)

    with pytest.raises(TransferError, match=r"already holds data \(chats\)") as refused:
        await copy_data(postgres_url)

    assert "\n" not in str(refused.value)
    assert await dump(postgres_url) == before
    await engine.dispose()


@pytest.mark.parametrize("fleet", [False, True])
async def test_refused_while_the_bot_runs_on_the_database(
    sqlite_url, postgres_url, tmp_path, monkeypatch, fleet
):
    """What the bot writes after a copy would be lost: the copy waits until it is stopped.
    A lone bot on SQLite or PostgreSQL, or replicas on PostgreSQL, hold the lock it takes."""
    source = sqlite_url
    if fleet:
        await copy_data(postgres_url)
        source = postgres_url
        monkeypatch.setenv("DATABASE_URL", source)
    engine = create_engine(source)
    target = f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}"
    try:
        async with single_instance(engine, fleet=fleet):
            with pytest.raises(TransferError) as refused:
                await copy_data(target)
        assert str(refused.value) == (
            f"the bot is running on {transfer.shown(source)}: stop it first"
        )
        assert not (tmp_path / "copy.db").exists()
        await copy_data(target)  # once it is stopped
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://bot:pa55word@db.example/bot", "--to is invalid: needs an asyncio driver"),
        ("mongodb://bot:pa55word@db.example/bot", "--to is invalid: unknown database kind"),
        ("postgresql+asyncpg://bot:pa55word@127.0.0.1:{port}/bot", "cannot use the target"),
        # asyncpg takes the password so too.
        ("postgresql+asyncpg://bot@127.0.0.1:{port}/bot?password=pa55word", "cannot use the t"),
    ],
)
async def test_a_bad_target_is_one_line_without_its_password(sqlite_url, url, reason):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = url.format(port=closed.getsockname()[1])
    with pytest.raises(TransferError, match=reason) as refused:
        await copy_data(url)
    assert "\n" not in str(refused.value) and "pa55word" not in str(refused.value)


async def test_no_database_at_database_url(tmp_path, monkeypatch, postgres_url):
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(TransferError, match="there is no database at"):
        await copy_data(postgres_url)
    assert not (tmp_path / "none.db").exists()


async def test_back_from_postgresql_into_a_new_sqlite_file(
    sqlite_url, postgres_url, tmp_path, monkeypatch
):
    await copy_data(postgres_url)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    back = f"sqlite+aiosqlite:///{tmp_path / 'back.db'}"

    said = await copy_data(back)

    assert await dump(back) == await dump(sqlite_url)
    assert "the SECRET_KEY this bot ran with" in said


def test_the_command(sqlite_url, postgres_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": sqlite_url}

    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "bot", "copy-data", "--to", postgres_url]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    done = run()
    assert done.returncode == 0, done.stderr
    assert "  accounts                  2\n" in done.stdout
    assert f"SECRET_KEY set to the key in {tmp_path / 'secret.key'}" in done.stdout
    again = run()
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("error: the target database") and again.stderr.count("\n") == 1
    # `--to` is required, and said so by argparse
    missing = subprocess.run(
        [sys.executable, "-m", "bot", "copy-data"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 64 and "--to" in missing.stderr  # a bad command line
