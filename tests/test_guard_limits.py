"""BalanceGuard within SMSC's request limits: one request at a time and a window of requests
per login, the pauses after SMSC's error 9 and its IP block, and what other errors and the
refusals tell; with a fake fetcher and an injected clock (tests/guard_fixtures.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.smsc.client import Credentials
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
)
from bot.smsc.guard import BalanceGuard
from bot.smsc.refusals import LoginPaused, SitePaused
from bot.smsc.windows import MemoryGuardState
from tests.guard_fixtures import (
    ALICE,
    ALICE_WRONG,
    BOB,
    BOTH_STATES,
    CAROL,
    KZ,
    Clock,
    Fetcher,
    settle,
)


def uncached(fetcher: Fetcher, clock: Clock, *, max_per_minute: int) -> BalanceGuard:
    """A guard with no cache on its own memory state: every call wants a request."""
    return BalanceGuard(
        fetcher,
        max_per_minute=max_per_minute,
        cache_seconds=0,
        state=MemoryGuardState(clock),
        now=clock.now,
    )


@pytest.mark.parametrize("limit", [0, 11, 100])
def test_max_per_minute_is_within_smsc_limit(fetcher: Fetcher, limit: int) -> None:
    with pytest.raises(ValueError, match="SMSC's limit"):
        BalanceGuard(fetcher, max_per_minute=limit)


async def test_one_request_at_a_time_per_login(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    await guard.balance(ALICE)
    await guard.balance(BOB)
    fetcher.calls.clear()
    guard_clock.t += 60
    fetcher.gate = asyncio.Event()
    other_password = Credentials("smsc.ru", "alice", "alice-new-pw")
    callers = [asyncio.create_task(guard.balance(creds)) for creds in (ALICE, other_password, BOB)]
    await settle()
    assert fetcher.calls == [ALICE, BOB]  # bob's login is another key: not held up
    fetcher.gate.set()
    await asyncio.gather(*callers)
    assert fetcher.calls == [ALICE, BOB, other_password]


async def test_full_window_serves_the_last_balance(fetcher: Fetcher, guard_clock: Clock) -> None:
    guard = uncached(fetcher, guard_clock, max_per_minute=2)
    await guard.balance(ALICE)
    guard_clock.t += 10
    second = await guard.balance(ALICE)
    guard_clock.t += 5
    served = await guard.balance(ALICE)
    assert served.stale
    assert served.age == 5
    assert served.checked_at == second.checked_at
    assert len(fetcher.calls) == 2

    guard_clock.t += 45  # the first request is a minute old: a slot is free
    assert (await guard.balance(ALICE)).fresh
    assert len(fetcher.calls) == 3


async def test_full_window_without_a_balance(fetcher: Fetcher, guard_clock: Clock) -> None:
    guard = uncached(fetcher, guard_clock, max_per_minute=2)
    await guard.balance(ALICE)
    guard_clock.t += 10
    await guard.balance(ALICE)
    guard_clock.t += 5
    other_password = Credentials("smsc.ru", "alice", "alice-new-pw")
    with pytest.raises(LoginPaused) as caught:
        await guard.balance(other_password)
    assert caught.value.retry_after == 45
    assert isinstance(caught.value, SmscRateLimited)
    assert str(caught.value) == "balance requests for this login paused for 45 s"
    assert len(fetcher.calls) == 2
    # Other logins have windows of their own.
    assert (await guard.balance(BOB)).fresh


async def test_window_counts_from_the_answer(fetcher: Fetcher, guard_clock: Clock) -> None:
    """A slow request may reach SMSC late: its minute runs from when the answer came back."""
    guard = uncached(fetcher, guard_clock, max_per_minute=1)
    fetcher.gate = asyncio.Event()
    caller = asyncio.create_task(guard.balance(ALICE))
    await settle()
    guard_clock.t += 8
    fetcher.gate.set()
    await caller
    guard_clock.t += 55
    assert (await guard.balance(ALICE)).stale
    guard_clock.t += 5
    assert (await guard.balance(ALICE)).fresh


async def test_site_paused_after_ip_block(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    first = await guard.balance(ALICE)
    guard_clock.t += 60
    fetcher.errors[BOB] = SmscIpBlocked(4, "ip is blocked")
    with pytest.raises(SmscIpBlocked) as blocked:
        await guard.balance(BOB)
    assert type(blocked.value) is SmscIpBlocked
    guard_clock.t += 100
    calls = len(fetcher.calls)

    served = await guard.balance(ALICE)
    assert (served.stale, served.age, served.balance) == (True, 160, first.balance)
    for creds in (BOB, CAROL):
        with pytest.raises(SitePaused) as caught:
            await guard.balance(creds)
        assert caught.value.retry_after == 1760  # SMSC's 30 minutes and one more, from the block
        assert isinstance(caught.value, SmscIpBlocked)
    assert len(fetcher.calls) == calls
    assert (await guard.balance(KZ)).fresh  # another site

    guard_clock.t += 1759
    with pytest.raises(SitePaused):
        await guard.balance(CAROL)  # SMSC's own block is over by now, but clocks differ
    guard_clock.t += 1
    del fetcher.errors[BOB]
    assert (await guard.balance(BOB)).fresh


async def test_login_paused_after_error_9(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    await guard.balance(ALICE)
    guard_clock.t += 30
    fetcher.errors[ALICE] = SmscRateLimited(9, "duplicate request, wait a minute")
    with pytest.raises(SmscRateLimited):
        await guard.balance(ALICE)
    guard_clock.t += 10
    served = await guard.balance(ALICE)
    assert (served.stale, served.age) == (True, 40)
    with pytest.raises(LoginPaused) as caught:
        await guard.balance(Credentials("smsc.ru", "alice", "alice-new-pw"))
    assert caught.value.retry_after == 50
    assert (await guard.balance(BOB)).fresh  # another login
    assert len(fetcher.calls) == 3

    guard_clock.t += 50
    del fetcher.errors[ALICE]
    assert (await guard.balance(ALICE)).fresh


@BOTH_STATES
async def test_other_errors_are_passed_on(guard: BalanceGuard, fetcher: Fetcher) -> None:
    fetcher.errors[ALICE] = SmscProtocolError("smsc.ru answered HTTP 200 with an HTML page")
    with pytest.raises(SmscProtocolError):
        await guard.balance(ALICE)
    del fetcher.errors[ALICE]
    assert (await guard.balance(ALICE)).fresh  # nothing remembered against the credentials


@BOTH_STATES
async def test_no_secret_in_refusals_or_logs(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fetcher.errors[ALICE_WRONG] = SmscAuthError(2, "authorise error")
    fetcher.errors[BOB] = SmscRateLimited(9, "wait")
    fetcher.errors[KZ] = SmscIpBlocked(4, "ip is blocked")
    refusals: list[BaseException] = []
    for creds in (ALICE_WRONG, ALICE_WRONG, BOB, BOB, KZ, KZ):
        with pytest.raises(SmscError) as caught:
            await guard.balance(creds)
        refusals.append(caught.value)
    secrets = {creds.secret for creds in (ALICE_WRONG, BOB, KZ)}
    texts = [text for refusal in refusals for text in (str(refusal), repr(refusal))]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records
    assert not [text for text in texts for secret in secrets if secret in text]
