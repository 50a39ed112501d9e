"""`python -m bot check`: an operator's test of SMSC credentials and connectivity."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime

from bot import logs
from bot.config import SettingsError, load_settings
from bot.config.sections import DatabaseSettings, FleetSettings, SmscSettings
from bot.smsc.client import Balance, Credentials, SmscClient
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.guard import BalanceGuard
from bot.smsc.kept import kept_state
from bot.smsc.refusals import AuthChecksPaused, CredentialsRejected, GuardUnavailable
from bot.smsc.sites import site_url
from bot.smsc.state import GuardState
from bot.storage.crypto import SecretBox
from bot.storage.sqlite import prepare_data_dir

# Most specific first: the first class the error is an instance of decides. The guard's
# refusals are SMSC's own errors where they stand for them (a paused site is "IP blocked").
FAILURES: list[tuple[type[SmscError], int, str]] = [
    (AuthChecksPaused, 7, "not sent to SMSC"),
    (GuardUnavailable, 7, "not sent to SMSC: Redis (REDIS_URL) not answering"),
    (SmscAuthError, 2, "wrong login or password, or this IP is not in the account's allow-list"),
    (SmscIpBlocked, 3, "this IP is temporarily blocked by SMSC"),
    (SmscRateLimited, 4, "rate limited: more than 10 balance requests a minute for this login"),
    (SmscUnavailable, 5, "SMSC unreachable"),
    (SmscError, 6, "unexpected answer from SMSC"),
]
BLOCK_WARNING = (
    "SMSC blocks this server's IP for 30 minutes after 5 wrong passwords in 30 minutes, "
    "the bot's checks too"
)


class CheckSettings(DatabaseSettings, SmscSettings, FleetSettings):
    """SMSC's settings, and where the guard's state is: the replicas' Redis, named with
    SECRET_KEY, else the data folder (DATABASE_URL's)."""


async def check_balance(login: str, site: str | None) -> int:
    logs.install()
    settings = load_settings(CheckSettings)
    logs.remember(*settings.secrets())
    try:
        base = site_url(site or str(settings.smsc_base_url))
    except ValueError:
        print("error: --site must be an SMSC site (smsc.kz...) or an http(s) URL", file=sys.stderr)
        return 1
    if not login.strip():
        raise SettingsError("--login is empty")
    creds = Credentials(base, login, os.environ.get("SMSC_PASSWORD") or _read_password())
    # The client's line on trying a backup host and the guard's on what SMSC answered say
    # what the one line printed says (its reason holds every host's failure).
    quiet = logging.getLogger("bot.smsc")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        async with (
            SmscClient(proxy_url=settings.smsc_proxy_url) as client,
            _guard_state(settings, creds) as (state, refused_until),
        ):
            # Every request through the guard, as the bot's: it never sends credentials SMSC
            # refused lately, nor new ones once a few were refused at the site. No cache: an
            # operator checking wants SMSC's answer of now.
            guard = BalanceGuard(client, cache_seconds=0, state=state)
            try:
                result = await guard.balance(creds)
            except SmscError as exc:
                code, reason = next((c, r) for kind, c, r in FAILURES if isinstance(exc, kind))
                print(f"error: {reason} ({_detail(exc, refused_until)})", file=sys.stderr)
                return code
    finally:
        quiet.setLevel(level)
    _print(result.balance, None if result.fresh else result.checked_at)
    return 0


@contextlib.asynccontextmanager
async def _guard_state(
    settings: CheckSettings, creds: Credentials
) -> AsyncIterator[tuple[GuardState, datetime | None]]:
    """The guard's state and, kept in a file, when credentials SMSC refused lately may go
    again. With REDIS_URL the replicas', so that a check counts with them against SMSC's
    limits; else a file of the data folder, as the bot is another process (bot.smsc.kept)."""
    if settings.redis_url is not None:
        if settings.secret_key is None:
            raise SettingsError(
                "SECRET_KEY is required with REDIS_URL: the replicas' SMSC limits are named with it"
            )
        # The `redis` extra: imported with REDIS_URL only.
        from bot.fleet.connection import connect
        from bot.fleet.limits import fleet_guard_state

        redis = connect(settings.redis_url.get_secret_value())
        try:
            box = SecretBox(settings.secret_key.get_secret_value())
            yield fleet_guard_state(redis, box), None
        finally:
            await redis.aclose()
        return
    prepare_data_dir(settings.data_dir)
    with kept_state(settings.data_dir) as state:
        yield state, state.recall(creds)


def _detail(exc: SmscError, refused_until: datetime | None) -> str:
    if isinstance(exc, CredentialsRejected):
        if refused_until is None:
            return f"{exc}; {BLOCK_WARNING}"
        return (
            f"SMSC rejected these credentials lately: not sent again until they change or "
            f"after {refused_until:%H:%M} UTC; {BLOCK_WARNING}"
        )
    if isinstance(exc, AuthChecksPaused):
        return f"{exc}, after {exc.until:%H:%M} UTC; {BLOCK_WARNING}"
    if isinstance(exc, SmscAuthError):
        return f"{exc}; {BLOCK_WARNING}"
    return str(exc)


def _print(balance: Balance, served_from: datetime | None) -> None:
    print(f"balance: {balance.balance}")
    print(f"credit: {balance.credit}")
    print(f"currency: {balance.currency or '-'}")
    if served_from is not None:  # SMSC must wait (the replicas' limits): the last answer
        print(f"checked: {served_from:%Y-%m-%d %H:%M:%S} UTC, not now (SMSC must wait)")


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
