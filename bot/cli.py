"""`python -m bot check`: an operator's test of SMSC credentials and connectivity."""

from __future__ import annotations

import getpass
import os
import sys

from bot import logs
from bot.config import SettingsError, SmscSettings, load_settings
from bot.smsc.client import Credentials, SmscClient
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.sites import site_url

# Most specific first: the first class the error is an instance of decides.
FAILURES: list[tuple[type[SmscError], int, str]] = [
    (SmscAuthError, 2, "wrong login or password, or this IP is not in the account's allow-list"),
    (SmscIpBlocked, 3, "this IP is temporarily blocked by SMSC"),
    (SmscRateLimited, 4, "rate limited: more than 10 balance requests a minute for this login"),
    (SmscUnavailable, 5, "SMSC unreachable"),
    (SmscError, 6, "unexpected answer from SMSC"),
]


async def check_balance(login: str, site: str | None) -> int:
    logs.install()
    settings = load_settings(SmscSettings)
    logs.remember(*settings.secrets())
    try:
        base = site_url(site or str(settings.smsc_base_url))
    except ValueError:
        print("error: --site must be an SMSC site (smsc.kz...) or an http(s) URL", file=sys.stderr)
        return 1
    if not login.strip():
        raise SettingsError("--login is empty")
    password = os.environ.get("SMSC_PASSWORD") or _read_password()
    async with SmscClient(proxy_url=settings.smsc_proxy_url) as client:
        try:
            balance = await client.fetch_balance(Credentials(base, login, password))
        except SmscError as exc:
            code, reason = next((c, r) for kind, c, r in FAILURES if isinstance(exc, kind))
            print(f"error: {reason} ({exc})", file=sys.stderr)
            return code
    print(f"balance: {balance.balance}")
    print(f"credit: {balance.credit}")
    print(f"currency: {balance.currency or '-'}")
    return 0


def _read_password() -> str:
    """Asked at a terminal; else the first line of stdin (`... < file`, a pipe)."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        try:
            password = getpass.getpass("SMSC password: ")
        except EOFError:  # Ctrl-D at the prompt
            password = ""
        if not password:
            raise SettingsError("SMSC_PASSWORD is required: none was typed")
        return password
    password = stdin.readline().rstrip("\r\n") if stdin is not None else ""
    if not password:
        raise SettingsError(
            "SMSC_PASSWORD is required: no terminal to ask for it and nothing on stdin; "
            "set SMSC_PASSWORD, or run this in a terminal"
        )
    return password
