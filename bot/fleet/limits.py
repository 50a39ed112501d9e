"""The SMSC guard's state in Redis, so its limits hold for every replica together: a login's
requests in any minute, its pause after error 9, one request at a time per login, the site's
budget of authorisation errors and its pause after error 4, refused credentials and the last
known balances (`bot.smsc.state.GuardState`).

Windows are sorted sets changed by Lua scripts (bot.fleet.guard_scripts) that read Redis's own
clock (`TIME`), so replicas whose clocks differ still agree; pauses are keys that expire, and so
are the turns: leases named by the request's ticket. A request costs two scripts: one looks at
the credentials, takes the turns and admits, the other counts the answer, keeps the balance and
hands the turns back. Scripts called together, or while others are on their way, go to Redis
together (`_Pipelined`): a sweep's checks share round trips. Keys hold no secret: credentials,
logins, sites and askers appear only as HMAC-SHA256 under the bot's key (a plain hash of a
password could be tried against a word list). Every Redis failure becomes
`GuardStateUnavailable`, and the guard sends nothing; a Redis that lost its data (restarted
empty) forgot the minute's requests, so every login waits out one window (`MARKER`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from bot.fleet.guard_scripts import BEGIN, FINISH, REJECTED, RETRY
from bot.smsc.client import Balance, Credentials
from bot.smsc.state import (
    AUTH_WINDOW,
    MINUTE,
    PROOF_SPAN,
    Admission,
    Allowance,
    GuardStateUnavailable,
    Known,
    Standing,
    Turn,
)
from bot.storage.crypto import SecretBox

PREFIX = "smscbot:guard:"
# Last balances are served as "stale with age" while SMSC must wait, and a replica started
# today should know yesterday's; verdicts on credentials (refused, accepted) live as long.
KNOWN_TTL_MS = 7 * 24 * 3600 * 1000
# Set at a process's first admission, never expiring: found missing later, Redis lost its data.
MARKER = PREFIX + "marker"
# Key names remembered, so as not to compute their HMACs for each request: a few per login.
NAMES_KEPT = 16384


def fleet_guard_state(redis: Redis, box: SecretBox) -> RedisGuardState:
    """The state every replica's guard shares, and `python -m bot check` with them: named by a
    key each derives from SECRET_KEY."""
    return RedisGuardState(redis, box.keyed_hash("fleet limits").encode())


class RedisGuardState:
    """`GuardState` in Redis, shared by the replicas that use the same Redis and `key`.

    `key` (bytes from the bot's secret) keys the HMACs that name things in Redis. `window` and
    `auth_window` are the spans of the request and authorisation-error windows (seconds;
    shorter in tests). A turn (the per-login and per-site locks) is a lease with the request's
    ticket: taken for the `hold` the guard bounds its request by, plus `lease_margin` for the
    round trips before and after, so a living holder never outlasts it and a dead one frees
    the login by itself. `poll`: how often a turn another holds (or a full careful flight, see
    bot.smsc.state.PROOF_SPAN) is looked at again. `clock` times this replica's proof.
    """

    def __init__(
        self,
        redis: Redis,
        key: bytes,
        *,
        window: float = MINUTE,
        auth_window: float = AUTH_WINDOW,
        lease_margin: float = 5.0,
        poll: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._key = key
        # Each request names its keys twice (begin, finish), a sweep's logins every minute.
        self._name = functools.lru_cache(maxsize=NAMES_KEPT)(self._hmac_name)
        # Tickets need only be unique in the fleet: a random prefix, then a count.
        self._ticket_prefix = uuid.uuid4().hex
        self._tickets = itertools.count()
        self._window_ms = round(window * 1000)
        self._auth_window_ms = round(auth_window * 1000)
        self._lease_margin = lease_margin
        self._poll = poll
        scripts = (BEGIN, FINISH, REJECTED, RETRY)
        self._begin, self._finish, self._rejected, self._retry = (
            redis.register_script(script) for script in scripts
        )
        self._scripts = _Pipelined(redis)
        # The last OK answer this replica had from each site: its own IP's proof (PROOF_SPAN).
        self._proven: dict[str, float] = {}
        self._clock = clock
        # Until this process's first admission, a missing MARKER is Redis's first use, not
        # data lost (see guard_scripts.BEGIN).
        self._admitted = False

    async def standing(self, creds: Credentials, *, known_good: bool) -> Standing:
        args = [int(known_good), KNOWN_TTL_MS, 0, ""]  # no ticket: a look only
        return _standing(await self._run(self._begin, [self._creds(creds)], args))

    def at_hand(self, creds: Credentials, *, known_good: bool, fresh_for: float) -> None:
        return None  # Redis is asked in `begin`, with the turn: one round trip for both

    async def begin(
        self,
        creds: Credentials,
        askers: tuple[str, ...],
        limits: Allowance,
        *,
        known_good: bool,
        fresh_for: float,
        hold: float,
    ) -> Turn:
        site, login = self._name("site", creds.site), self._name("login", creds.rate_key)
        keys = [
            self._creds(creds),
            f"{login}:lock",
            f"{site}:lock",
            f"{site}:paused",
            f"{login}:paused",
            f"{login}:requests",
            f"{site}:auth",
            f"{site}:flight",
            MARKER,
            *self._askers(creds.site, askers),
        ]
        ticket = self._ticket()
        args = [
            int(known_good),
            KNOWN_TTL_MS,
            round(fresh_for * 1000),
            ticket,
            round((hold + self._lease_margin) * 1000),
            limits.max_per_minute,
            self._window_ms,
            limits.auth_failures_per_site,
            limits.auth_failures_per_asker,
            self._auth_window_ms,
            limits.auth_failures_cap,
            0,  # careful: set at each try below
            int(not self._admitted),
        ]
        while True:
            # Asked again at each try: another request's OK answer while this one waited for
            # the unproven site's flight lets it go at once (a sweep's first round waited for
            # the flight's four places one by one, and took half a second to reach its pace).
            args[11] = int(self._clock() - self._proven.get(creds.site, -math.inf) >= PROOF_SPAN)
            found = await self._run(self._begin, keys, args)
            outcome = found[3]
            if outcome != b"busy" and outcome != "busy":  # bytes, or str if responses are decoded
                break
            await asyncio.sleep(self._poll)
        standing = _standing(found)
        if len(found) == 4:
            return Turn(standing)
        self._admitted = True  # the marker is set
        waits = [ms / 1000 for ms in found[4:]]
        return Turn(standing, Admission(*waits), ticket, bound=hold)

    async def finish(
        self, creds: Credentials, turn: Turn, answer: tuple[Balance, datetime] | None
    ) -> None:
        login, site = self._name("login", creds.rate_key), self._name("site", creds.site)
        keys = [f"{login}:requests", self._creds(creds), f"{site}:flight", f"{login}:lock"]
        if not turn.standing.verified:
            keys.append(site + ":lock")
        saved = ""
        if answer is not None:
            self._proven[creds.site] = self._clock()
            balance, checked_at = answer
            saved = json.dumps(
                {
                    "balance": str(balance.balance),
                    "credit": str(balance.credit),
                    "currency": balance.currency,
                    "checked_at": checked_at.isoformat(),
                }
            )
        args = [turn.ticket, self._window_ms, saved, KNOWN_TTL_MS]
        await self._run(self._finish, keys, args)

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        keys = [
            self._creds(creds),
            self._name("site", creds.site) + ":auth",
            *self._askers(creds.site, askers),
        ]
        args = [KNOWN_TTL_MS, self._auth_window_ms, self._ticket()]
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

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts.run(script, keys, args)

    def _ticket(self) -> str:
        return f"{self._ticket_prefix}{next(self._tickets)}"

    def _hmac_name(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()
        return f"{PREFIX}{kind}:{digest}"

    def _creds(self, creds: Credentials) -> str:
        # The fingerprint is an unkeyed hash of the password: keyed here before it leaves.
        return self._name("creds", creds.fingerprint)

    def _askers(self, site: str, askers: tuple[str, ...]) -> list[str]:
        return [self._name("asker", f"{site}\n{asker}") for asker in askers]


def _standing(found: list[Any]) -> Standing:
    """The standing from a script's state, balance JSON and age in ms."""
    state, data, age = found[:3]
    known = None
    if data:  # bytes, or str when the client decodes responses
        saved = json.loads(data)
        amounts = Decimal(saved["balance"]), Decimal(saved["credit"])
        checked_at = datetime.fromisoformat(saved["checked_at"])
        known = Known(Balance(*amounts, saved["currency"]), checked_at, age / 1000)
    state = state.decode() if isinstance(state, bytes) else state
    return Standing(state == "rejected", state == "verified", known)


_Call = tuple[AsyncScript, list[str], list[Any], "asyncio.Future[Any]"]


class _Pipelined:
    """Runs the scripts of many callers: those called together, or while a pipeline is on its
    way, go together in the next (not a transaction: each script is atomic on its own, and
    their order is kept). A call alone is one round trip, as before; a sweep's checks called at
    once share one, and a script costs the bot ≈ 30 µs of CPU instead of ≈ 120 (BENCHMARKS.md).
    Every Redis failure is the callers' `GuardStateUnavailable`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiting: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append((script, keys, args, answer))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await answer

    async def _send(self) -> None:
        while self._waiting:
            # A call whose caller gave up before it went is not made (it would take turns).
            calls = [call for call in self._waiting if not call[3].done()]
            self._waiting = []
            try:
                results: list[Any] = await self._execute(calls)
            except (RedisError, OSError) as error:
                results = [error] * len(calls)
            except asyncio.CancelledError:  # a shutdown: nobody waits for an answer
                waiting, self._waiting = self._waiting, []
                for *_, answer in calls + waiting:
                    answer.cancel()
                raise
            except Exception as error:  # the callers' to report, not a task's nobody awaits
                results = [error] * len(calls)
            for (*_, answer), result in zip(calls, results, strict=True):
                if answer.done():
                    continue  # its caller gave up
                if isinstance(result, (RedisError, OSError)):
                    answer.set_exception(GuardStateUnavailable(_fault(result)))
                elif isinstance(result, Exception):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        """The scripts' answers, or the errors Redis gave for some of them."""
        results = await self._pipeline(calls)
        lost = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if lost:
            # Redis forgot the scripts (restarted, or flushed them): taught again, then those
            # calls are made again, in their order.
            for script in {calls[i][0] for i in lost}:
                await self._redis.script_load(script.script)
            again = await self._pipeline([calls[i] for i in lost])
            for i, result in zip(lost, again, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args, _ in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


def _fault(error: BaseException) -> str:
    return f"Redis: {type(error).__name__}: {error}"
