"""`python -m bot check`: an operator tests credentials and connectivity without Telegram."""

import asyncio
import functools
import getpass
import logging
import os
import socket
import stat
import subprocess
import sys
import threading

import pytest
from cryptography.fernet import Fernet

from bot import cli
from bot.__main__ import main
from bot.smsc.client import Credentials, SmscClient
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from tests.fake_proxy import FakeProxy
from tests.fake_smsc import FakeSmsc


@pytest.fixture(autouse=True)
def logging_restored(monkeypatch):
    """`check` installs secret masking (bot.logs) in this process: undone after each test. The
    bot's log lines reach stderr as at a terminal (no handler: Python prints warnings there),
    not pytest's capture."""
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    bot = logging.getLogger("bot")
    monkeypatch.setattr(bot, "propagate", False)
    monkeypatch.setattr(bot, "handlers", [*bot.handlers, logging.lastResort])


@pytest.fixture(autouse=True)
def bot_folder(monkeypatch, tmp_path):
    """Run where a bot without Redis would: its data folder is ./data."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMSC_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def smsc():
    with FakeSmsc(max_per_window=3) as fake:
        fake.add_account("shop", "right", balance="1234.50", credit="100.00", currency="KZT")
        yield fake


def check(monkeypatch, capsys, site: str, password: str = "right") -> tuple[int, str, str]:
    monkeypatch.setenv("SMSC_PASSWORD", password)
    code = main(["check", "--login", "shop", "--site", site])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_balance_credit_currency(monkeypatch, capsys, smsc):
    code, out, _ = check(monkeypatch, capsys, smsc.url)
    assert code == 0
    assert out.splitlines() == ["balance: 1234.50", "credit: 100.00", "currency: KZT"]


@pytest.mark.parametrize(
    ("setup", "code", "reason"),
    [
        (lambda fake: None, 2, "wrong login or password"),
        (lambda fake: fake.block_ip(), 3, "IP is temporarily blocked"),
        (lambda fake: setattr(fake, "fault", "html"), 6, "unexpected answer"),
    ],
)
def test_failures_exit_non_zero_with_one_line(monkeypatch, capsys, smsc, setup, code, reason):
    setup(smsc)
    exit_code, out, err = check(monkeypatch, capsys, smsc.url, password="wr0ng-pa55")
    assert exit_code == code
    assert out == "" and len(err.strip().splitlines()) == 1 and reason in err
    assert "wr0ng" not in err  # the password is never echoed


def test_rate_limited(monkeypatch, capsys, smsc):
    for _ in range(3):
        assert check(monkeypatch, capsys, smsc.url)[0] == 0
    code, _, err = check(monkeypatch, capsys, smsc.url)
    assert code == 4 and "rate limited" in err


def test_unreachable(monkeypatch, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = check(monkeypatch, capsys, f"http://127.0.0.1:{port}")
    assert code == 5 and "unreachable" in err


@pytest.mark.parametrize("proxy_up", [True, False], ids=["proxy up", "proxy down"])
def test_through_smsc_proxy(monkeypatch, capsys, smsc, proxy_up):
    with FakeProxy("ops", "pr0xy-pa55") as proxy:
        monkeypatch.setenv("SMSC_PROXY", proxy.url)
        if not proxy_up:
            proxy.close()
        code, out, err = check(monkeypatch, capsys, smsc.url)
    assert (code, bool(proxy.tunnels)) == ((0, True) if proxy_up else (5, False)), err
    assert "pr0xy-pa55" not in out + err


def test_bad_site(monkeypatch, capsys):
    code, _, err = check(monkeypatch, capsys, "ftp://example")
    assert code == 1 and "--site" in err


def test_real_entry_point_reads_password_from_stdin(smsc, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--login", "shop", "--site", smsc.url],
        input="right\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert "balance: 1234.50" in run.stdout


@pytest.mark.parametrize("stdin", [subprocess.DEVNULL, None])  # /dev/null; an empty pipe
def test_no_password_and_no_terminal_is_one_line(smsc, tmp_path, stdin):
    run = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--login", "shop", "--site", smsc.url],
        stdin=stdin,
        input="" if stdin is None else None,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: SMSC_PASSWORD is required: no terminal to ask for it and nothing on stdin; "
        "set SMSC_PASSWORD, or run this in a terminal"
    ]
    assert smsc.requests_for("shop") == []


def test_an_empty_login_is_one_line(monkeypatch, capsys, smsc):
    monkeypatch.setenv("SMSC_PASSWORD", "right")
    assert main(["check", "--login", " ", "--site", smsc.url]) == 1
    assert capsys.readouterr().err == "error: --login is empty\n"


def _ctrl_d(_prompt: str) -> str:
    raise EOFError


@pytest.mark.parametrize("typed", [lambda _prompt: "", _ctrl_d])
def test_nothing_typed_at_the_prompt_is_one_line(monkeypatch, capsys, smsc, typed):
    monkeypatch.delenv("SMSC_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", typed)
    assert main(["check", "--login", "shop", "--site", smsc.url]) == 1
    assert capsys.readouterr().err == "error: SMSC_PASSWORD is required: none was typed\n"
    assert smsc.requests_for("shop") == []


def test_a_bad_command_line_is_not_a_wrong_password(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check"])
    assert exited.value.code == 64  # 2 would tell a script "wrong login or password"
    assert "--login" in capsys.readouterr().err


def _refusals(smsc: FakeSmsc) -> int:
    """SMSC's refusals of a login (error 2), which it counts toward blocking the IP."""
    return sum(r.outcome == "error:2" for r in smsc.requests_for("shop"))


def test_a_mistyped_password_retried_is_not_sent_again(monkeypatch, capsys, smsc, tmp_path):
    """SMSC blocks the server's IP, the bot's checks of every chat too, at its fifth refused
    login in 30 minutes: each `check` is a process of its own, and still none sends a refused
    password twice."""
    codes, lines = [], []
    for _ in range(6):
        code, out, err = check(monkeypatch, capsys, smsc.url, password="wrong")
        codes.append(code)
        lines += err.splitlines()
        assert out == ""
    assert codes == [2] * 6 and len(lines) == 6
    assert _refusals(smsc) == 1  # the first check only reached SMSC
    assert "SMSC blocks this server's IP for 30 minutes after 5 wrong passwords" in lines[0]
    assert "not sent again until they change or after " in lines[5]
    kept = tmp_path / "data" / "check-guard.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert b"wrong" not in kept.read_bytes()
    assert check(monkeypatch, capsys, smsc.url)[0] == 0  # the right one goes


def test_wrong_passwords_stop_before_smscs_block(monkeypatch, capsys, smsc):
    codes, errors = [], []
    for attempt in range(7):
        code, _, err = check(monkeypatch, capsys, smsc.url, password=f"wrong{attempt}")
        codes.append(code)
        errors.append(err)
    assert codes == [2, 2, 2, 7, 7, 7, 7]
    assert _refusals(smsc) == 3  # SMSC blocks at 5
    assert errors[3].count("\n") == 1
    assert errors[3].startswith("error: not sent to SMSC")
    assert "new credentials can be checked in" in errors[3] and "UTC" in errors[3]


def test_a_backup_host_tried_is_still_one_line(monkeypatch, capsys, smsc):
    with socket.socket() as sock:  # ports nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            also_dead = f"http://127.0.0.1:{other.getsockname()[1]}"
    backups = {dead: [smsc.url], also_dead: [dead]}
    monkeypatch.setattr(cli, "SmscClient", functools.partial(SmscClient, backups=backups))

    code, out, err = check(monkeypatch, capsys, dead)
    assert (code, err) == (0, "") and out.startswith("balance: 1234.50")

    code, out, err = check(monkeypatch, capsys, also_dead)
    assert code == 5 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: SMSC unreachable") and "backup" not in err


def test_with_redis_it_counts_with_the_replicas(monkeypatch, capsys, smsc, redis_url):
    """A password a replica had refused is not sent again by `check`, nor the other way."""
    from redis.asyncio import Redis

    from bot.fleet.limits import fleet_guard_state

    key = Fernet.generate_key()
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SECRET_KEY", key.decode())

    async def replica_checks(password: str) -> None:
        redis = Redis.from_url(redis_url)
        try:
            async with SmscClient() as client:
                guard = BalanceGuard(client, state=fleet_guard_state(redis, SecretBox(key)))
                await guard.balance(Credentials(smsc.url, "shop", password))
        finally:
            await redis.aclose()

    with pytest.raises(SmscAuthError):
        asyncio.run(replica_checks("wrong"))
    code, _, err = check(monkeypatch, capsys, smsc.url, password="wrong")
    assert code == 2 and "not retried until they change" in err
    assert _refusals(smsc) == 1

    assert check(monkeypatch, capsys, smsc.url, password="typo")[0] == 2
    with pytest.raises(SmscAuthError, match="not retried until they change"):
        asyncio.run(replica_checks("typo"))
    assert _refusals(smsc) == 2
    assert not (os.path.exists("data"))  # nothing kept in a file with Redis
