"""The bot as a process at start and stop: bad settings, a Telegram or a database server that
is down or hangs, signals at any moment, a refused token."""

import os
import signal
import subprocess
import sys
import time

import pytest
from cryptography.fernet import Fernet

from bot.factory import SENDS_GRACE
from tests import real_servers
from tests.bot_process import TOKEN
from tests.e2e_helpers import PushMonitor, free_port, say, texts, wait_until
from tests.fake_proxy import FakeProxy

USER = 801

# Each bad setting: (environment changes, files written first, words the one stderr line holds).
BAD_SETTINGS = [
    ({"SECRET_KEY": "not-a-fernet-key"}, {}, "SECRET_KEY is invalid: not a Fernet key"),
    (  # asyncpg comes with the test extra: a driver no extra brings
        {"DATABASE_URL": "mysql+aiomysql://bot@localhost/bot"},
        {},
        "DATABASE_URL is invalid: its driver is not installed (pip install aiomysql)",
    ),
    ({"DATABASE_URL": "mongodb://localhost/bot"}, {}, "DATABASE_URL is invalid: unknown"),
    ({"DATABASE_URL": "sqlite:///data/bot.db"}, {}, "DATABASE_URL is invalid: needs an asyncio"),
    (
        {"DATABASE_URL": "sqlite+aiosqlite:///a-file/data/bot.db"},
        {},
        "DATABASE_URL: cannot create the data folder",
    ),
    ({"BOT_TOKEN": "123456"}, {}, "BOT_TOKEN is invalid: not a bot token"),
    (
        {"BOT_TOKEN": None},
        {".env": 'BOT_TOKEN = "123 456:abc"\n'},
        "BOT_TOKEN is invalid: not a bot token",
    ),
    ({"BOT_TOKEN": None}, {".env": ""}, "BOT_TOKEN is required"),
    (  # python-dotenv dropped the lines up to the next quote, with a warning of its own
        {"BOT_TOKEN": None},
        {".env": f'BOT_TOKEN={TOKEN}\nADMIN_IDS="123456\nHTTP_PORT=1\nWEBHOOK_SECRET="s3"\n'},
        ".env line 2 cannot be read (an unclosed quote?)",
    ),
    ({}, {"data/secret.key": "not a key"}, "data/secret.key is not a valid key"),
    ({}, {"data/secret.key": ""}, "restore it from your backup"),
    (
        {"WEBHOOK_URL": "http://bot.example.com/tg/hook", "WEBHOOK_SECRET": "s3cret"},
        {},
        "WEBHOOK_URL is invalid: Telegram calls https URLs only",
    ),
    (
        {"WEBHOOK_URL": "https://bot.example.com/tg/hook", "HTTP_PORT": "8080"},
        {},
        "WEBHOOK_SECRET is required with WEBHOOK_URL",
    ),
    (
        {"WEBHOOK_URL": "https://bot.example.com/tg/hook", "WEBHOOK_SECRET": "s3cret"},
        {},
        "HTTP_PORT is required with WEBHOOK_URL",
    ),
    ({"WEBHOOK_SECRET": "not/so=secret"}, {}, "WEBHOOK_SECRET is invalid: 1 to 256 characters"),
    ({"REDIS_URL": "redis://:pa55word@redis/0"}, {}, "DATABASE_URL must be PostgreSQL"),
    ({"REDIS_URL": "memcached://cache"}, {}, "REDIS_URL is invalid: not a Redis URL"),
    ({"LEASE_SECONDS": "3600"}, {}, "LEASE_SECONDS is invalid"),
    # Started, then every /add failed: a due time past the year 9999.
    ({"CHECK_INTERVAL_SECONDS": "999999999999"}, {}, "CHECK_INTERVAL_SECONDS is invalid"),
    (
        {"TELEGRAM_PROXY": "https://ops:pa55word@proxy:3128"},
        {},
        "TELEGRAM_PROXY is invalid: not a proxy URL",
    ),
]


def start_env(installed_bot) -> dict[str, str]:
    """The installed bot's environment, with a Bot API address nothing listens on."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(installed_bot.site),
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": "sqlite+aiosqlite:///data/bot.db",
        "TELEGRAM_API_URL": "http://127.0.0.1:9",
    }


@pytest.mark.parametrize(("changes", "files", "words"), BAD_SETTINGS)
def test_bad_setting_is_one_line_and_leaves_nothing_behind(
    tmp_path, installed_bot, changes, files, words
):
    (tmp_path / "a-file").write_text("")
    env = start_env(installed_bot)
    for name, value in changes.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)  # a key file readable by others would add a warning
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    run = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line, line
    for secret in ("not/so=secret", "pa55word"):
        assert secret not in line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no bot.db


def test_stray_blanks_and_quotes_around_values_are_forgiven(bot_process):
    bot_process.env["BOT_TOKEN"] = f' "{TOKEN}" '
    bot_process.env["LOG_LEVEL"] = "'debug' "
    bot_process.start()
    assert "DEBUG" in bot_process.log()


def test_files_are_the_owners_alone(bot_process, tmp_path):
    data = tmp_path / "data"
    bot_process.env["DATABASE_URL"] = f"sqlite+aiosqlite:///{data}/bot.db"
    del bot_process.env["SECRET_KEY"]
    bot_process.start()
    assert (data.stat().st_mode & 0o777) == 0o700
    for name in ("bot.db", "secret.key"):
        assert ((data / name).stat().st_mode & 0o777) == 0o600, name


def test_readable_key_file_is_reported_at_start(bot_process, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_text("ZmFrZS1rZXktZmFrZS1rZXktZmFrZS1rZXktZmFrZS0=")
    (data / "secret.key").chmod(0o644)
    bot_process.env["DATABASE_URL"] = f"sqlite+aiosqlite:///{data}/bot.db"
    del bot_process.env["SECRET_KEY"]
    bot_process.start()
    [line] = [line for line in bot_process.log().splitlines() if "secret.key" in line]
    assert "WARNING" in line and "readable by other users" in line


def test_a_damaged_guard_state_ends_the_start_in_one_line(bot_process, tmp_path):
    # SMSC's refusals of the last 30 minutes, kept for the next start: not guessed at, they
    # may be what keeps the IP block away.
    (tmp_path / "guard-state.json").write_text('{"salt": "00", "refusals": [["x"]]')
    bot_process.launch()
    assert bot_process.process.wait(timeout=60) == 1
    bot_process.process = None
    [line] = [line for line in bot_process.log().splitlines() if "error" in line.lower()]
    assert line.startswith("error: ") and "guard-state.json is damaged" in line, line
    assert "Traceback" not in bot_process.log()


def test_heartbeat_of_a_normal_start_is_never_withheld(bot_process):
    with PushMonitor() as monitor:
        bot_process.env.update(HEARTBEAT_URL=f"{monitor.url}/api/push/k3y", HEARTBEAT_SECONDS="1")
        bot_process.start()
        wait_until(lambda: monitor.beats >= 2)
    assert "heartbeat" not in bot_process.log(), bot_process.log()


@pytest.mark.parametrize("body", ["drop", "html"])
def test_start_waits_for_telegram_with_a_line_per_attempt(bot_process, telegram, body):
    telegram.fail("getMe", status=502, body=body, times=3)
    bot_process.start()  # returns once the bot polls
    log = bot_process.log()
    attempts = [line for line in log.splitlines() if "Telegram not answering" in line]
    assert [f"attempt={n}" in line for n, line in enumerate(attempts, 1)] == [True] * 3, log
    assert "Traceback" not in log and telegram.commands(), log


def test_through_proxies_the_bot_reaches_telegram_and_smsc(bot_process, telegram, fake_smsc):
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00", currency="RUB")
    with FakeProxy("ops", "pr0xy-pa55") as to_telegram, FakeProxy("ops", "smsc-pa55") as to_smsc:
        bot_process.env.update(TELEGRAM_PROXY=to_telegram.url, SMSC_PROXY=to_smsc.url)
        bot_process.start()  # returns once the bot polls
        _, reply = say(telegram, 501, "/add shop s3cret! 1000")
        log = bot_process.log()
    assert "1,500.00 RUB" in reply["text"]
    # The fakes were reached by the proxies alone.
    assert to_telegram.tunnels and to_smsc.tunnels == [fake_smsc.url.removeprefix("http://")]
    assert "Traceback" not in log and "pa55" not in log, log
    address = to_telegram.url.replace("ops:pr0xy-pa55@", "")
    assert f"telegram_proxy={address} " in log and "smsc_proxy=http://127.0.0.1:" in log, log


def test_the_start_line_names_the_bot_api_without_its_password(bot_process, telegram):
    # Encoded as README advises: only the "@" of Qw!rty@2024.
    bot_process.env["TELEGRAM_API_URL"] = telegram.url.replace("://", "://botapi:Qw!rty%402024@")
    bot_process.start()  # returns once the bot polls
    log = bot_process.log()
    assert f"starting telegram_api={telegram.url.rstrip('/')}/ " in log, log
    assert "Qw!rty" not in log, log


def test_a_telegram_proxy_down_is_waited_for_with_a_line_per_attempt(bot_process, telegram):
    with FakeProxy("ops", "pr0xy-pa55") as proxy:
        bot_process.env["TELEGRAM_PROXY"] = proxy.url
        proxy.close()
        bot_process.launch()
        wait_until(lambda: bot_process.log().count("Telegram not answering") >= 2)
    log = bot_process.log()
    assert "Traceback" not in log and "pr0xy-pa55" not in log and "proxy: " in log, log
    assert not telegram.calls_of("getMe")


def stop_time(bot_process, sig=signal.SIGTERM) -> float:
    started = time.monotonic()
    assert bot_process.stop(sig) == 0, bot_process.log()
    return time.monotonic() - started


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether the process has a handler of its own for `sig` (Linux: /proc's SigCgt mask)."""
    with open(f"/proc/{pid}/status") as status:
        mask = next(line for line in status if line.startswith("SigCgt:")).split()[1]
    return bool(int(mask, 16) >> (sig - 1) & 1)


@pytest.mark.parametrize(("sig", "delay"), [(signal.SIGTERM, 0.0), (signal.SIGINT, 0.6)])
def test_signal_while_starting_is_a_clean_exit(bot_process, sig, delay):
    bot_process.launch()
    # Before Python runs `python -m bot`, a signal ends any process; from its first line on
    # the bot catches it, while it still imports, before the bot's own handlers are installed.
    wait_until(lambda: catches(bot_process.process.pid, sig), timeout=10)
    time.sleep(delay)
    assert stop_time(bot_process, sig) < 2
    assert "Traceback" not in bot_process.log(), bot_process.log()


STOPPED_WHILE_WRITING = """
import os, signal, sys
import bot.app, bot.storage.crypto
from bot.__main__ import main

module, name = sys.argv[1].rsplit(".", 1)
write = getattr(sys.modules[module], name)

def stopped_meanwhile(*args):
    os.kill(os.getpid(), signal.SIGTERM)
    return write(*args)

setattr(sys.modules[module], name, stopped_meanwhile)
sys.exit(main([]))
"""


@pytest.mark.parametrize(
    "writing", ["bot.app.create_database_file", "bot.storage.crypto.create_key"]
)
def test_signal_while_the_files_are_written_waits_for_them(tmp_path, installed_bot, writing):
    env = start_env(installed_bot)
    run = subprocess.run(
        [sys.executable, "-c", STOPPED_WHILE_WRITING, writing],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert (tmp_path / "data" / "bot.db").exists()
    if writing.endswith("create_key"):
        Fernet((tmp_path / "data" / "secret.key").read_bytes())  # whole, not cut short


@pytest.mark.parametrize("lost", ["SECRET_KEY changed", "secret.key deleted"])
def test_a_key_that_cannot_decrypt_the_accounts_ends_the_start_in_one_line(
    bot_process, fake_smsc, telegram, tmp_path, lost
):
    if lost == "secret.key deleted":
        del bot_process.env["SECRET_KEY"]
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00", currency="RUB")
    bot_process.start()
    say(telegram, 501, "/add shop s3cret!")
    assert bot_process.stop() == 0
    if lost == "SECRET_KEY changed":
        bot_process.env["SECRET_KEY"] = Fernet.generate_key().decode()
    else:
        (tmp_path / "secret.key").unlink()
    before, asked = len(bot_process.log()), len(telegram.calls_of("getMe"))
    bot_process.launch()
    assert bot_process.process.wait(timeout=60) == 1
    bot_process.process = None
    [line] = [line for line in bot_process.log()[before:].splitlines() if "error" in line.lower()]
    assert line.startswith("error: SECRET_KEY: ") and "1 account(s)" in line, line
    assert "restore" in line and "s3cret!" not in bot_process.log()
    assert not (tmp_path / "secret.key").exists(), "no new key beside a database in use"
    assert len(telegram.calls_of("getMe")) == asked, "refused before Telegram is asked"


def test_a_stop_as_an_alert_goes_out_slowly_does_not_send_it_twice(
    bot_process, telegram, fake_smsc
):
    """systemctl restart or docker stop just as an alert goes out, Telegram answering it late
    (under load, through a proxy): the stop waits for the answer, and after the restart the
    chat hears of the recovery but not of the low balance again."""
    fake_smsc.add_account("shop", "pw", balance="1500.00")
    bot_process.env |= {"CHECK_INTERVAL_SECONDS": "1", "BALANCE_CACHE_SECONDS": "0"}
    bot_process.start()
    say(telegram, USER, "/add shop pw 1000")
    telegram.answer_late("sendMessage", 2)
    fake_smsc.set_balance("shop", "900.00")
    telegram.wait_for(lambda: texts(telegram, USER, "Low balance"), timeout=30)
    assert stop_time(bot_process) < SENDS_GRACE
    telegram.answer_late("sendMessage", 0)
    fake_smsc.set_balance("shop", "1500.00")
    bot_process.start()
    telegram.wait_for(lambda: texts(telegram, USER, "back to"), timeout=30)
    assert len(texts(telegram, USER, "Low balance")) == 1


def test_a_stop_waits_no_longer_for_a_telegram_that_never_answers(bot_process, telegram, fake_smsc):
    fake_smsc.add_account("shop", "pw", balance="1500.00")
    bot_process.env |= {"CHECK_INTERVAL_SECONDS": "1", "BALANCE_CACHE_SECONDS": "0"}
    bot_process.start()
    say(telegram, USER, "/add shop pw 1000")
    telegram.fail("sendMessage", status=0, body="hang", times=100)
    fake_smsc.set_balance("shop", "900.00")
    sent = len(telegram.calls_of("sendMessage"))
    telegram.wait_for(lambda: len(telegram.calls_of("sendMessage")) > sent, timeout=30)
    assert stop_time(bot_process) < SENDS_GRACE + 2


def test_signal_ends_a_hanging_long_poll_at_once(bot_process, telegram):
    telegram.fail("getUpdates", status=0, body="hang", times=100)
    bot_process.start()
    time.sleep(0.5)  # the poll is hanging
    assert stop_time(bot_process) < 2
    assert "Unclosed" not in bot_process.log()


def test_sigint_ends_the_wait_for_telegram(bot_process, telegram):
    telegram.fail("getMe", status=0, body="hang", times=100)
    bot_process.launch()
    telegram.wait_for(lambda: telegram.calls_of("getMe"), timeout=60)
    assert stop_time(bot_process, signal.SIGINT) < 2
    assert "Unclosed" not in bot_process.log()


def test_signal_ends_a_bot_that_cannot_reach_telegram(bot_process, telegram):
    telegram.fail("getMe", status=0, body="drop", times=100)
    bot_process.launch()
    telegram.wait_for(lambda: len(telegram.calls_of("getMe")) >= 2, timeout=60)
    assert stop_time(bot_process) < 2


@pytest.mark.parametrize(("method", "status"), [("getMe", 404), ("getUpdates", 401)])
def test_refused_token_exits_1_saying_why(bot_process, telegram, method, status):
    description = "Unauthorized" if status == 401 else "Not Found"
    telegram.fail(method, status=status, description=description, times=100)
    bot_process.launch()
    assert bot_process.process.wait(timeout=60) == 1
    bot_process.process = None
    log = bot_process.log()
    assert f"error: BOT_TOKEN was refused by Telegram ({description})" in log, log
    assert len(telegram.calls_of(method)) == 1


def test_start_waits_for_the_database_server_with_a_line_per_attempt(bot_process):
    port = free_port()  # nothing listens: a server not up yet, or a network blip
    bot_process.env["DATABASE_URL"] = f"postgresql+asyncpg://bot:Pa55word@127.0.0.1:{port}/bot"
    bot_process.launch()
    wait_until(lambda: bot_process.log().count("database not answering") >= 2, timeout=30)
    assert "ConnectionRefusedError" in bot_process.log()
    assert stop_time(bot_process) < 2
    assert "Pa55word" not in bot_process.log()


def test_a_database_server_that_refuses_ends_the_start_in_one_line(bot_process, postgres_server):
    bot_process.env["DATABASE_URL"] = real_servers.database_url(postgres_server, "no_such_db")
    bot_process.launch()
    assert bot_process.process.wait(timeout=60) == 1
    bot_process.process = None
    log = bot_process.log()
    refused = "error: DATABASE_URL: the database refused the bot: InvalidCatalogNameError: "
    assert f'{refused}database "no_such_db" does not exist' in log, log
    assert "not answering" not in log
