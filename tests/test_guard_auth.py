"""BalanceGuard and SMSC's authorisation errors: refused credentials never resent, the pause
of never-verified credentials at a site, and each asker's share of it, the site's cap on
refusals of any credentials; with a fake fetcher and an injected clock (tests/guard_fixtures.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.smsc.client import Credentials
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import (
    AskerPaused,
    AuthChecksPaused,
    CredentialsRejected,
    SiteAuthCapped,
)
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


@BOTH_STATES
async def test_credentials_rejected(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    fetcher.errors[ALICE_WRONG] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError) as first:
        await guard.balance(ALICE_WRONG)
    assert type(first.value) is SmscAuthError
    guard_clock.t += 3600
    with pytest.raises(CredentialsRejected) as again:
        await guard.balance(ALICE_WRONG)
    assert isinstance(again.value, SmscAuthError)
    assert again.value.code == 2
    assert fetcher.calls == [ALICE_WRONG]
    # Changed credentials are checked.
    assert (await guard.balance(ALICE)).fresh


@BOTH_STATES
async def test_retry_lets_a_person_try_refused_credentials_once_more(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    fetcher.errors[ALICE] = SmscAuthError(2, "authorise error")  # IP not in the allow-list
    with pytest.raises(SmscAuthError):
        await guard.balance(ALICE)
    del fetcher.errors[ALICE]  # the allow-list was fixed
    guard.retry(ALICE)
    assert (await guard.balance(ALICE)).fresh
    assert fetcher.calls == [ALICE, ALICE]


@BOTH_STATES
async def test_known_good_credentials_skip_the_new_credentials_pause(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
        with pytest.raises(SmscAuthError):
            await guard.balance(creds)
    with pytest.raises(AuthChecksPaused):
        await guard.balance(BOB)
    # Stored accounts that passed their check before a restart are still watched.
    assert (await guard.balance(BOB, known_good=True)).fresh
    with pytest.raises(CredentialsRejected):
        await guard.balance(wrong[0], known_good=True)


@BOTH_STATES
async def test_four_refusals_of_known_good_credentials_pause_the_site(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    """The bot moved to a new IP and the accounts have allow-lists: each watched login fails
    at its next check. SMSC's fifth refusal in 30 minutes would block the IP for everyone."""
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(6)]
    for creds in watched:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    for creds in watched[:4]:
        with pytest.raises(SmscAuthError):
            await guard.balance(creds, known_good=True)
    for creds in (watched[4], BOB):
        with pytest.raises(AuthChecksPaused) as caught:
            await guard.balance(creds, known_good=True)
        assert type(caught.value) is SiteAuthCapped  # waits: the account is not at fault
    assert (await guard.balance(KZ, known_good=True)).fresh  # another site
    assert len(fetcher.calls) == 5


async def _at_once(guard: BalanceGuard, fetcher: Fetcher, logins: list[Credentials]) -> list:
    """Checks of `logins` started together, as a sweep does; those SMSC holds stay in flight
    until all that will go have gone."""
    fetcher.gate = asyncio.Event()
    tasks = [asyncio.create_task(guard.balance(creds, known_good=True)) for creds in logins]
    await settle()
    fetcher.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


@BOTH_STATES
async def test_a_site_not_answered_ok_lately_sends_no_more_logins_at_once_than_the_cap_allows(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    """After a server move, the first round sends every watched login of the site together,
    and with allow-lists SMSC refuses each: the fifth refusal would block the bot's IP."""
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(10)]
    for creds in watched:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    outcomes = await _at_once(guard, fetcher, watched)
    assert [type(outcome) for outcome in outcomes].count(SmscAuthError) == 4
    assert {type(outcome) for outcome in outcomes} == {SmscAuthError, SiteAuthCapped}
    assert len(fetcher.calls) == 4


@BOTH_STATES
async def test_an_ok_answer_lets_the_sites_logins_be_checked_all_at_once(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    """The IP is accepted: a sweep is not held to four requests at a time."""
    assert (await guard.balance(ALICE)).fresh
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(10)]
    outcomes = await _at_once(guard, fetcher, watched)
    assert all(isinstance(outcome, BalanceResult) for outcome in outcomes)
    assert fetcher.most_in_flight == 10


@BOTH_STATES
async def test_a_site_not_answered_ok_lately_checks_the_rest_once_one_answers_ok(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    """After a restart, the first requests at a site wait only for the first answer."""
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(10)]
    outcomes = await _at_once(guard, fetcher, watched)
    assert all(isinstance(outcome, BalanceResult) for outcome in outcomes)
    assert len(fetcher.calls) == 10


async def test_the_site_capped_serves_last_balances_until_the_oldest_refusal_is_30_min_old(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    known = await guard.balance(ALICE)
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(4)]
    for creds in watched:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
        guard_clock.t += 100
        with pytest.raises(SmscAuthError):
            await guard.balance(creds, known_good=True)
    calls = len(fetcher.calls)
    served = await guard.balance(ALICE)
    assert (served.stale, served.checked_at) == (True, known.checked_at)
    with pytest.raises(AuthChecksPaused) as caught:
        await guard.balance(BOB, known_good=True)
    assert caught.value.retry_after == 1800 - 300
    assert len(fetcher.calls) == calls
    guard_clock.t += 1500
    assert (await guard.balance(BOB, known_good=True)).fresh
    assert (await guard.balance(ALICE)).fresh


async def test_known_good_credentials_that_fail_are_rejected_too(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    await guard.balance(ALICE)
    guard_clock.t += 60
    fetcher.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await guard.balance(ALICE)
    with pytest.raises(CredentialsRejected):
        await guard.balance(ALICE)  # the old balance is not served for refused credentials
    assert len(fetcher.calls) == 2


async def test_auth_checks_paused_for_new_credentials(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    await guard.balance(ALICE)
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(4)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    for creds in wrong[:3]:
        with pytest.raises(SmscAuthError):
            await guard.balance(creds)
        guard_clock.t += 100
    calls = len(fetcher.calls)

    for creds in (wrong[3], BOB):
        with pytest.raises(AuthChecksPaused) as caught:
            await guard.balance(creds)
        assert caught.value.retry_after == 1800 - 300
    assert len(fetcher.calls) == calls
    assert "1500 s" in str(caught.value)

    assert (await guard.balance(ALICE)).fresh  # verified before: still checked
    assert (await guard.balance(KZ)).fresh  # another site
    guard_clock.t += 1500
    assert (await guard.balance(BOB)).fresh


async def test_one_asker_spends_one_failure_per_window(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger's wrong passwords cost the site one failure, and the others nothing."""
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    stranger = ("user:5", "chat:5")
    with pytest.raises(SmscAuthError):
        await guard.balance(wrong[0], askers=stranger)
    guard_clock.t += 100
    for creds in (wrong[1], BOB):  # wrong or right: the stranger's next check waits
        with pytest.raises(AskerPaused) as caught:
            await guard.balance(creds, askers=stranger)
    assert caught.value.retry_after == 1700
    assert caught.value.until == guard_clock.now() + timedelta(seconds=1700)
    assert fetcher.calls == [wrong[0]]
    assert "user:5" in caplog.text and "wrong" not in caplog.text

    # Another user of another chat is not held back.
    assert (await guard.balance(BOB, askers=("user:6", "chat:6"))).fresh
    guard_clock.t += 1700
    assert (await guard.balance(CAROL, askers=stranger)).fresh


@BOTH_STATES
async def test_one_chat_spends_one_failure_per_window(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    fetcher.errors[ALICE_WRONG] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await guard.balance(ALICE_WRONG, askers=("user:5", "chat:-100"))
    with pytest.raises(AskerPaused):
        await guard.balance(BOB, askers=("user:6", "chat:-100"))
    assert (await guard.balance(BOB, askers=("user:6", "chat:-200"))).fresh


async def test_paused_asker_still_checks_known_good_credentials(
    guard: BalanceGuard, fetcher: Fetcher, guard_clock: Clock
) -> None:
    await guard.balance(ALICE)
    guard_clock.t += 60
    fetcher.errors[BOB] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await guard.balance(BOB, askers=("user:5",))
    # Re-adding what the bot already watches costs nothing and is not held back.
    assert (await guard.balance(ALICE, askers=("user:5",))).fresh
    assert (await guard.balance(CAROL, known_good=True, askers=("user:5",))).fresh


@BOTH_STATES
async def test_site_budget_holds_across_askers(guard: BalanceGuard, fetcher: Fetcher) -> None:
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for index, creds in enumerate(wrong):
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
        with pytest.raises(SmscAuthError):
            await guard.balance(creds, askers=(f"user:{index}",))
    with pytest.raises(AuthChecksPaused) as caught:
        await guard.balance(BOB, askers=("user:9",))
    assert type(caught.value) is AuthChecksPaused  # the site's budget, not the asker's
    assert (await guard.balance(KZ, askers=("user:0",))).fresh  # one failure per site


async def test_new_credentials_are_checked_one_at_a_time_per_site(
    guard: BalanceGuard, fetcher: Fetcher
) -> None:
    """Checked side by side, several wrong ones could overshoot the allowance together."""
    fetcher.gate = asyncio.Event()
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(5)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    callers = [asyncio.create_task(guard.balance(creds)) for creds in (*wrong, KZ)]
    await settle()
    assert fetcher.calls == [wrong[0], KZ]
    fetcher.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert fetcher.calls == [wrong[0], KZ, wrong[1], wrong[2]]
    assert [type(result) for result in results] == [
        *[SmscAuthError] * 3,
        *[AuthChecksPaused] * 2,
        BalanceResult,
    ]
