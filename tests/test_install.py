"""The bot as a user installs it: a wheel built from the checkout, run from a folder of its own."""

import sqlite3
import subprocess
import sys
import zipfile

from alembic.script import ScriptDirectory

from bot.storage.engine import alembic_config
from tests.e2e_helpers import say

USER = 601


def test_wheel_holds_every_file_the_bot_runs_on(installed_bot):
    in_wheel = set(zipfile.ZipFile(installed_bot.wheel).namelist())
    source = installed_bot.source
    code = {
        f"bot/{path.relative_to(source / 'bot')}"
        for pattern in ("*.py", "*.po", "*.mo")
        for path in (source / "bot").rglob(pattern)
    }
    revisions = {
        f"bot/_migrations/{path.relative_to(source / 'migrations')}"
        for pattern in ("*.py", "*.mako")
        for path in (source / "migrations").rglob(pattern)
    }
    assert "bot/telegram/locales/ru/LC_MESSAGES/messages.mo" in code
    assert "bot/_migrations/versions/0001_chats_accounts_and_balance_samples.py" in revisions
    assert sorted((code | revisions) - in_wheel) == []


def test_end_to_end_tests_run_the_installed_copy(bot_process, installed_bot):
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bot.storage.engine as s; print(s.__file__); print(s.MIGRATIONS_DIR)",
        ],
        cwd=bot_process.cwd,
        env=bot_process.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [
        str(installed_bot.site / "bot" / "storage" / "engine.py"),
        str(installed_bot.site / "bot" / "_migrations"),
    ]


def test_installed_script_migrates_a_fresh_database_in_any_folder(bot_process, installed_bot):
    """`smsc-balance-bot` started in an empty folder with the default settings: it creates
    data/ there with the newest schema and a key, and answers."""
    for setting in ("DATABASE_URL", "SECRET_KEY"):
        del bot_process.env[setting]
    bot_process.cwd = bot_process.cwd / "elsewhere"
    bot_process.cwd.mkdir()
    bot_process.command = [str(installed_bot.site / "bin" / "smsc-balance-bot")]
    bot_process.start()

    _, reply = say(bot_process.telegram, USER, "/start")
    assert "/add" in reply["text"]
    data = bot_process.cwd / "data"
    assert (data / "secret.key").is_file()
    with sqlite3.connect(data / "bot.db") as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
