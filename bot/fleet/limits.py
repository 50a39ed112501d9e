"""The SMSC guard's state in Redis, so its limits hold for every replica together: a login's
requests in any minute, its pause after error 9, one request at a time per login, the site's
budget of authorisation errors and its pause after error 4, refused credentials and the last
known balances (`bot.smsc.windows.GuardState`).

Windows are sorted sets changed by Lua scripts that read Redis's own clock (`TIME`), so
replicas whose clocks differ still agree; pauses are keys that expire. Keys hold no secret:
credentials, logins, sites and askers appear only as HMAC-SHA256 under the bot's key (a plain
hash of a password could be tried against a word list). Every Redis failure becomes
`GuardStateUnavailable`, and the guard sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.smsc.client import Balance, Credentials
from bot.smsc.windows import (
    MINUTE,
    Admission,
    Allowance,
    GuardStateUnavailable,
    Known,
    Standing,
)

log = logging.getLogger(__name__)

PREFIX = "smscbot:guard:"
# Last balances are served as "stale with age" while SMSC must wait, and a replica started
# today should know yesterday's; verdicts on credentials (refused, accepted) live as long.
KNOWN_TTL_MS = 7 * 24 * 3600 * 1000

# Shared by the scripts: Redis's time in milliseconds, and a window's wait (seconds to go until
# fewer than `limit` of its entries are younger than `span`), after dropping the old ones.
_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function wait(key, limit, span)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  local excess = redis.call('ZCARD', key) - limit
  if excess < 0 then return 0 end
  local entry = redis.call('ZRANGE', key, excess, excess, 'WITHSCORES')
  return math.max(0, tonumber(entry[2]) + span - now)
end
"""

# KEYS: credentials. ARGV: known_good, ttl. -> state, balance JSON, age in ms (-1: none).
_STANDING = (
    _COMMON
    + """
local v = redis.call('HMGET', KEYS[1], 'state', 'balance', 'at')
if ARGV[1] == '1' and v[1] ~= 'rejected' then
  redis.call('HSET', KEYS[1], 'state', 'verified')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  v[1] = 'verified'
end
local age = -1
if v[3] then age = now - tonumber(v[3]) end
return {v[1] or '', v[2] or '', age}
"""
)

# KEYS: site pause, login pause, login window, site auth failures, askers' failures...
# ARGV: max per minute, window ms, per site, per asker, auth window ms, ticket, new (0/1).
# -> waits in ms: site paused, asker, auth, login. Granted: the request is counted already,
# so a replica that dies before the answer still leaves it in the window.
_ADMIT = (
    _COMMON
    + """
local site = math.max(0, redis.call('PTTL', KEYS[1]))
local login = redis.call('PTTL', KEYS[2])
login = math.max(login, wait(KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2])))
local asker, auth = 0, 0
if ARGV[7] == '1' then
  auth = wait(KEYS[4], tonumber(ARGV[3]), tonumber(ARGV[5]))
  for i = 5, #KEYS do
    asker = math.max(asker, wait(KEYS[i], tonumber(ARGV[4]), tonumber(ARGV[5])))
  end
end
if site + asker + auth + login == 0 then
  redis.call('ZADD', KEYS[3], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return {site, asker, auth, login}
"""
)

# KEYS: login window. ARGV: ticket, window ms. The request moves to the time of its answer.
_ANSWERED = (
    _COMMON
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
)

# KEYS: credentials. ARGV: balance JSON, ttl.
_SUCCEEDED = (
    _COMMON
    + """
redis.call('HSET', KEYS[1], 'state', 'verified', 'balance', ARGV[1], 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
)

# KEYS: credentials, site auth failures, askers' failures... ARGV: ttl, auth window ms, ticket.
_REJECTED = (
    _COMMON
    + """
redis.call('HDEL', KEYS[1], 'balance', 'at')
redis.call('HSET', KEYS[1], 'state', 'rejected')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
"""
)

# KEYS: credentials. Accepted credentials stay accepted.
_RETRY = """
if redis.call('HGET', KEYS[1], 'state') == 'rejected' then redis.call('HDEL', KEYS[1], 'state') end
"""


class RedisGuardState:
    """`GuardState` in Redis, shared by the replicas that use the same Redis and `key`.

    `key` (bytes from the bot's secret) keys the HMACs that name things in Redis. `window` and
    `auth_window` are the spans of the request and authorisation-error windows (seconds;
    shorter in tests). `lock_timeout`: a turn (the per-login and per-site locks) held by a
    replica that died frees itself this long after its last renewal; a living holder renews
    it every third of that, however long SMSC takes to answer (the client may spend 10 s per
    host, backups included). 10 s keeps a dead replica from stalling a login for long.
    """

    def __init__(
        self,
        redis: Redis,
        key: bytes,
        *,
        window: float = MINUTE,
        auth_window: float = 1800.0,
        lock_timeout: float = 10.0,
        lock_poll: float = 0.05,
    ) -> None:
        self._redis = redis
        self._key = key
        self._window_ms = round(window * 1000)
        self._auth_window_ms = round(auth_window * 1000)
        self._lock_timeout = lock_timeout
        self._lock_poll = lock_poll
        scripts = (_STANDING, _ADMIT, _ANSWERED, _SUCCEEDED, _REJECTED, _RETRY)
        (
            self._standing,
            self._admit,
            self._answered,
            self._succeeded,
            self._rejected,
            self._retry,
        ) = (redis.register_script(script) for script in scripts)

    async def standing(self, creds: Credentials, *, known_good: bool) -> Standing:
        state, data, age = await self._run(
            self._standing, [self._creds(creds)], [int(known_good), KNOWN_TTL_MS]
        )
        known = None
        if data:  # bytes, or str when the client decodes responses
            saved = json.loads(data)
            amounts = Decimal(saved["balance"]), Decimal(saved["credit"])
            checked_at = datetime.fromisoformat(saved["checked_at"])
            known = Known(Balance(*amounts, saved["currency"]), checked_at, age / 1000)
        state = state.decode() if isinstance(state, bytes) else state
        return Standing(state == "rejected", state == "verified", known)

    def login_turn(self, rate_key: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._turn(self._name("login", rate_key) + ":lock")

    def new_credentials_turn(self, site: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._turn(self._name("site", site) + ":lock")

    async def admit(
        self, creds: Credentials, askers: tuple[str, ...], limits: Allowance, *, new: bool
    ) -> Admission:
        site, login = self._name("site", creds.site), self._name("login", creds.rate_key)
        keys = [f"{site}:paused", f"{login}:paused", f"{login}:requests"]
        if new:
            keys += [f"{site}:auth", *self._askers(creds.site, askers)]
        ticket = uuid.uuid4().hex
        args = [
            limits.max_per_minute,
            self._window_ms,
            limits.auth_failures_per_site,
            limits.auth_failures_per_asker,
            self._auth_window_ms,
            ticket,
            int(new),
        ]
        waits = [ms / 1000 for ms in await self._run(self._admit, keys, args)]
        return Admission(*waits, ticket=ticket)

    async def answered(self, rate_key: str, ticket: str) -> None:
        key = self._name("login", rate_key) + ":requests"
        await self._run(self._answered, [key], [ticket, self._window_ms])

    async def succeeded(self, creds: Credentials, balance: Balance, checked_at: datetime) -> None:
        saved = {
            "balance": str(balance.balance),
            "credit": str(balance.credit),
            "currency": balance.currency,
            "checked_at": checked_at.isoformat(),
        }
        await self._run(self._succeeded, [self._creds(creds)], [json.dumps(saved), KNOWN_TTL_MS])

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        keys = [
            self._creds(creds),
            self._name("site", creds.site) + ":auth",
            *self._askers(creds.site, askers),
        ]
        args = [KNOWN_TTL_MS, self._auth_window_ms, uuid.uuid4().hex]
        await self._run(self._rejected, keys, args)

    async def retry(self, creds: Credentials) -> None:
        await self._run(self._retry, [self._creds(creds)], [])

    async def pause_login(self, rate_key: str, seconds: float) -> None:
        await self._pause(self._name("login", rate_key) + ":paused", seconds)

    async def pause_site(self, site: str, seconds: float) -> None:
        await self._pause(self._name("site", site) + ":paused", seconds)

    async def _pause(self, key: str, seconds: float) -> None:
        try:
            await self._redis.set(key, 1, px=max(1, round(seconds * 1000)))
        except (RedisError, OSError) as error:
            raise GuardStateUnavailable(_fault(error)) from None

    @contextlib.asynccontextmanager
    async def _turn(self, name: str) -> AsyncIterator[None]:
        lock = Lock(
            self._redis,
            name,
            timeout=self._lock_timeout,
            sleep=self._lock_poll,
            thread_local=False,  # tasks of one thread take locks of their own
        )
        try:
            await lock.acquire()
        except (RedisError, OSError) as error:
            raise GuardStateUnavailable(_fault(error)) from None
        keeper = asyncio.create_task(self._keep(lock))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # unlike `await keeper`, keeps our own cancellation
            try:
                await lock.release()
            except (LockError, RedisError, OSError) as error:
                # It expires by itself; the request it guarded is over either way.
                log.warning("guard lock not released (%s); it expires by itself", _fault(error))

    async def _keep(self, lock: Lock) -> None:
        """Renew the lock while its holder lives, so a slow SMSC answer does not outlast it."""
        while True:
            await asyncio.sleep(self._lock_timeout / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError, OSError) as error:
                log.warning("guard lock not renewed: %s", _fault(error))
                return

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            raise GuardStateUnavailable(_fault(error)) from None

    def _name(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()
        return f"{PREFIX}{kind}:{digest}"

    def _creds(self, creds: Credentials) -> str:
        # The fingerprint is an unkeyed hash of the password: keyed here before it leaves.
        return self._name("creds", creds.fingerprint)

    def _askers(self, site: str, askers: tuple[str, ...]) -> list[str]:
        return [self._name("asker", f"{site}\n{asker}") for asker in askers]


def _fault(error: BaseException) -> str:
    return f"Redis: {type(error).__name__}: {error}"
