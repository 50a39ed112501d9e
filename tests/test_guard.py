"""BalanceGuard's answers: fresh and cached balances, credentials remembered under their key,
and one request in flight shared by its callers, cancelled ones too; with a fake fetcher and an
injected clock (tests/guard_fixtures.py)."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscAuthError, SmscUnavailable
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import GuardUnavailable
from tests.guard_fixtures import (
    ALICE,
    ALICE_WRONG,
    BOB,
    BOTH_STATES,
    Clock,
    Fetcher,
    StateOutage,
    balance_of,
    settle,
)


@BOTH_STATES
async def test_fresh_result(guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock) -> None:
    result = await guard.balance(ALICE)
    assert result == BalanceResult(balance_of(ALICE), guard_clock.now(), age=0.0, fresh=True)
    assert not result.stale
    assert fetcher.calls == [ALICE]


async def test_cache(guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock) -> None:
    first = await guard.balance(ALICE)
    guard_clock.t += 29
    cached = await guard.balance(ALICE)
    assert cached.stale
    assert cached.age == 29
    assert (cached.balance, cached.checked_at) == (first.balance, first.checked_at)
    assert fetcher.calls == [ALICE]

    guard_clock.t += 1
    assert (await guard.balance(ALICE)).fresh
    assert fetcher.calls == [ALICE, ALICE]


async def test_credentials_asked_for_under_a_key_are_found_by_it(guard: BalanceGuard) -> None:
    def decrypt() -> Credentials:
        decrypted.append(BOB)
        return BOB

    decrypted: list[Credentials] = []
    assert guard.remembered("alice's key", decrypt) is BOB  # not asked for yet
    await guard.balance(ALICE, key="alice's key")
    await guard.balance(BOB)
    assert guard.remembered("alice's key", decrypt) is ALICE
    assert guard.remembered("bob's key", decrypt) is BOB
    assert guard.remembered(None, decrypt) is BOB  # no key: nothing to find by
    assert len(decrypted) == 3


@BOTH_STATES
async def test_cache_is_per_password(guard: BalanceGuard, fetcher: Fetcher) -> None:
    await guard.balance(ALICE)
    fetcher.errors[ALICE_WRONG] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await guard.balance(ALICE_WRONG)
    assert fetcher.calls == [ALICE, ALICE_WRONG]


@BOTH_STATES
async def test_concurrent_callers_share_a_request(guard: BalanceGuard, fetcher: Fetcher) -> None:
    fetcher.gate = asyncio.Event()
    callers = [asyncio.create_task(guard.balance(ALICE)) for _ in range(5)]
    await settle()
    fetcher.gate.set()
    results = await asyncio.gather(*callers)
    assert fetcher.calls == [ALICE]
    assert all(result is results[0] and result.fresh for result in results)


@BOTH_STATES
async def test_concurrent_callers_share_an_error(guard: BalanceGuard, fetcher: Fetcher) -> None:
    fetcher.gate = asyncio.Event()
    fetcher.errors[ALICE] = SmscUnavailable("SMSC unreachable: smsc.ru: ConnectError")
    callers = [asyncio.create_task(guard.balance(ALICE)) for _ in range(3)]
    await settle()
    fetcher.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert fetcher.calls == [ALICE]
    assert all(isinstance(result, SmscUnavailable) for result in results)


@BOTH_STATES
async def test_a_cancelled_caller_does_not_fail_the_others(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    fetcher.gate = asyncio.Event()
    first = asyncio.create_task(guard.balance(ALICE))
    second = asyncio.create_task(guard.balance(ALICE))
    await settle()
    first.cancel()
    await settle()
    fetcher.gate.set()
    assert (await second).balance == balance_of(ALICE)
    assert first.cancelled()


async def test_a_request_everyone_gave_up_on_fails_without_a_traceback():
    """A shutdown cancels the checks waiting on SMSC; the request itself then failing must not
    be reported by asyncio as an exception nobody retrieved."""
    answer = asyncio.Event()

    class Down:
        async def fetch_balance(self, creds: Credentials) -> Balance:
            await answer.wait()
            raise SmscUnavailable("SMSC unreachable")

    reports = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reports.append(context))
    guard = BalanceGuard(Down())
    caller = asyncio.create_task(guard.balance(ALICE))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    answer.set()
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    assert reports == []


async def test_a_state_outage_is_one_warning_and_its_end_one_line(fetcher, caplog) -> None:
    # Every login due meets the outage, again at each retry: the log says it once, and once
    # that it is over; which logins waited is there at debug.
    state = StateOutage()
    guard = BalanceGuard(fetcher, state=state, cache_seconds=0)
    logins = [Credentials("smsc.ru", f"login{n}", "pw") for n in range(300)]
    state.down = True
    with caplog.at_level(logging.DEBUG, logger="bot.smsc.guard"):
        for _ in range(3):  # three rounds of retries
            for creds in logins:
                with pytest.raises(GuardUnavailable):
                    await guard.balance(creds)
        state.down = False
        for creds in logins:
            await guard.balance(creds)
    told = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [(r.levelno, r.getMessage()) for r in told] == [
        (
            logging.WARNING,
            f"guard state unavailable (redis unreachable: ConnectionError); {logins[0].rate_key}"
            " not checked; more such at debug until it works again",
        ),
        (logging.INFO, "guard state works again: balance requests go out"),
    ]
    assert len(caplog.records) == 2 + 3 * 300 - 1
    assert len(fetcher.calls) == 300
