"""`python -m bot check`: an operator tests credentials and connectivity without Telegram."""

import getpass
import logging
import socket
import subprocess
import sys
import threading

import pytest

from bot.__main__ import main
from tests.fake_proxy import FakeProxy
from tests.fake_smsc import FakeSmsc


@pytest.fixture(autouse=True)
def logging_restored(monkeypatch):
    """`check` installs secret masking (bot.logs) in this process: undone after each test."""
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)


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
    exit_code, out, err = check(monkeypatch, capsys, smsc.url, password="wrong")
    assert exit_code == code
    assert out == "" and len(err.strip().splitlines()) == 1 and reason in err
    assert "wrong" not in err.replace("wrong login", "")  # the password is never echoed


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
