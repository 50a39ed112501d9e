"""`python -m bot backup <file>`: a consistent copy of the database, taken while the bot writes."""

import asyncio
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bench.data import BALANCE, Layout, Probe, login_name, password, seed
from bot.storage.backup import BackupError, copy_database, sqlite_file


def run_backup(cwd, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "bot", "backup", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_taken_during_a_sweep_holds_every_account(bot_process, fake_smsc, tmp_path):
    # 1,000 logins answered in 0.5 s, 50 at a time: a sweep writes for about 10 s.
    layout = Layout(accounts=2000, chats=200, logins=1000)
    for login in range(layout.logins):
        fake_smsc.add_account(login_name(login), password(login), balance=BALANCE)
    fake_smsc.latency = 0.5
    database = tmp_path / "bot.db"
    url = f"sqlite+aiosqlite:///{database}"
    asyncio.run(seed(url, bot_process.env["SECRET_KEY"], fake_smsc.url, layout))
    bot_process.start()
    probe = Probe(url)
    try:
        since = probe.make_due()
        bot_process.telegram.wait_for(lambda: probe.checked_since(since) > 0, timeout=30)

        done = run_backup(tmp_path, bot_process.env, tmp_path / "copy.db")

        assert done.returncode == 0, done.stderr
        assert probe.checked_since(since) < layout.accounts, "the sweep was still going on"
        fake_smsc.latency = 0  # and goes on to its end undisturbed
        bot_process.telegram.wait_for(lambda: probe.checked_since(since) == layout.accounts, 30)
    finally:
        probe.close()
    assert "secret.key" not in done.stdout  # the key is SECRET_KEY here, not a file
    assert "Keep the bot's SECRET_KEY with it:" in done.stdout
    copy = tmp_path / "copy.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not (tmp_path / "copy.db-wal").exists(), "one self-contained file"
    with closing(sqlite3.connect(copy)) as restored:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert restored.execute("SELECT count(*) FROM accounts").fetchone() == (layout.accounts,)
    restored = Probe(f"sqlite+aiosqlite:///{copy}")
    try:
        assert 0 < restored.checked_since(since) < layout.accounts, "a copy from mid-sweep"
    finally:
        restored.close()


def test_backup_reminds_of_the_key_file_beside_the_database(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    with closing(sqlite3.connect(tmp_path / "data" / "bot.db")) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    (tmp_path / "data" / "secret.key").write_text("key")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    said = copy_database(tmp_path / "copy.db")

    assert "Keep data/secret.key with it" in said
    assert (tmp_path / "copy.db").is_file()


@pytest.mark.parametrize(
    ("url", "target", "error"),
    [
        ("sqlite+aiosqlite:///{tmp}/none.db", "{tmp}/copy.db", "there is no database at"),
        ("sqlite+aiosqlite:///{tmp}/bot.db", "{tmp}/missing/copy.db", "cannot write the backup"),
        ("sqlite+aiosqlite:///{tmp}/bot.db", "{tmp}", "Is a directory"),
    ],
)
def test_backup_refusals_are_one_line(tmp_path, monkeypatch, url, target, error):
    with closing(sqlite3.connect(tmp_path / "bot.db")):
        pass
    monkeypatch.setenv("DATABASE_URL", url.format(tmp=tmp_path))
    with pytest.raises(BackupError, match=error) as refused:
        copy_database(Path(target.format(tmp=tmp_path)))
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.db"], "no partial copy left"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("postgresql+asyncpg://bot:pa55word@db.example/bot", "is a postgresql database"),
        ("sqlite+aiosqlite://", "names no database file"),
    ],
)
def test_only_an_sqlite_file_is_backed_up(url, error):
    with pytest.raises(BackupError, match=error) as refused:
        sqlite_file(url)
    assert "pa55word" not in str(refused.value)


def test_backup_without_a_key_file_reminds_of_secret_key(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    with closing(sqlite3.connect(tmp_path / "data" / "bot.db")) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    said = copy_database(tmp_path / "copy.db")

    assert "Keep the bot's SECRET_KEY with it: without that key" in said
