"""Unit and property tests of BalanceGuard, with a fake fetcher and an injected clock; those
that need no clock also on the shared Redis state (tests/test_fleet_limits.py times that one
with real, short spans)."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot.fleet.limits import RedisGuardState
from bot.smsc.client import (
    Balance,
    Credentials,
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import (
    AskerPaused,
    AuthChecksPaused,
    CredentialsRejected,
    LoginPaused,
    SitePaused,
)
from bot.smsc.windows import GuardState, MemoryGuardState

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

ALICE = Credentials("smsc.ru", "alice", "alice-pw")
ALICE_WRONG = Credentials("smsc.ru", "alice", "alice-typo")
BOB = Credentials("smsc.ru", "bob", "bob-pw")
CAROL = Credentials("smsc.ru", "carol", "carol-pw")
KZ = Credentials("smsc.kz", "alice", "alice-pw")


def balance_of(creds: Credentials) -> Balance:
    """A balance that tells whose it is: a guard serving it to other credentials is caught."""
    return Balance(Decimal(int(creds.fingerprint[:6], 16)), Decimal(0), "RUB")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)


class Fetcher:
    """Answers with `balance_of`, or raises what `errors` holds for the credentials.

    With `gate` set, every fetch waits for it: requests stay in flight until the test says.
    """

    def __init__(self) -> None:
        self.calls: list[Credentials] = []
        self.errors: dict[Credentials, SmscError] = {}
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    async def fetch_balance(self, creds: Credentials) -> Balance:
        self.calls.append(creds)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if creds in self.errors:
                raise self.errors[creds]
            return balance_of(creds)
        finally:
            self.in_flight -= 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher()


# The tests that need no clock of their own run on the in-memory state and on Redis's.
BOTH_STATES = pytest.mark.parametrize("state_kind", ["memory", "redis"], indirect=True)


@pytest.fixture
def state_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "memory")


@pytest.fixture
def shared_redis_url(request: pytest.FixtureRequest, state_kind: str) -> str | None:
    return request.getfixturevalue("redis_url") if state_kind == "redis" else None


@pytest.fixture
async def state(shared_redis_url: str | None, clock: Clock) -> AsyncIterator[GuardState]:
    if shared_redis_url is None:
        yield MemoryGuardState(clock)
        return
    client = Redis.from_url(shared_redis_url)
    yield RedisGuardState(client, b"test-key")
    await client.aclose()


@pytest.fixture
def guard(fetcher: Fetcher, clock: Clock, state: GuardState) -> BalanceGuard:
    return BalanceGuard(fetcher, state=state, now=clock.now)


async def settle() -> None:
    """Let every ready task run until it blocks (on Redis's answers too)."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("limit", [0, 11, 100])
def test_max_per_minute_is_within_smsc_limit(fetcher: Fetcher, limit: int) -> None:
    with pytest.raises(ValueError, match="SMSC's limit"):
        BalanceGuard(fetcher, max_per_minute=limit)


@BOTH_STATES
async def test_fresh_result(guard: BalanceGuard, fetcher: Fetcher, clock: Clock) -> None:
    result = await guard.balance(ALICE)
    assert result == BalanceResult(balance_of(ALICE), clock.now(), age=0.0, fresh=True)
    assert not result.stale
    assert fetcher.calls == [ALICE]


async def test_cache(guard: BalanceGuard, fetcher: Fetcher, clock: Clock) -> None:
    first = await guard.balance(ALICE)
    clock.t += 29
    cached = await guard.balance(ALICE)
    assert cached.stale
    assert cached.age == 29
    assert (cached.balance, cached.checked_at) == (first.balance, first.checked_at)
    assert fetcher.calls == [ALICE]

    clock.t += 1
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


async def test_one_request_at_a_time_per_login(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    await guard.balance(ALICE)
    await guard.balance(BOB)
    fetcher.calls.clear()
    clock.t += 60
    fetcher.gate = asyncio.Event()
    other_password = Credentials("smsc.ru", "alice", "alice-new-pw")
    callers = [asyncio.create_task(guard.balance(creds)) for creds in (ALICE, other_password, BOB)]
    await settle()
    assert fetcher.calls == [ALICE, BOB]  # bob's login is another key: not held up
    fetcher.gate.set()
    await asyncio.gather(*callers)
    assert fetcher.calls == [ALICE, BOB, other_password]


async def test_full_window_serves_the_last_balance(fetcher: Fetcher, clock: Clock) -> None:
    guard = BalanceGuard(
        fetcher, max_per_minute=2, cache_seconds=0, state=MemoryGuardState(clock), now=clock.now
    )
    await guard.balance(ALICE)
    clock.t += 10
    second = await guard.balance(ALICE)
    clock.t += 5
    served = await guard.balance(ALICE)
    assert served.stale
    assert served.age == 5
    assert served.checked_at == second.checked_at
    assert len(fetcher.calls) == 2

    clock.t += 45  # the first request is a minute old: a slot is free
    assert (await guard.balance(ALICE)).fresh
    assert len(fetcher.calls) == 3


async def test_full_window_without_a_balance(fetcher: Fetcher, clock: Clock) -> None:
    guard = BalanceGuard(
        fetcher, max_per_minute=2, cache_seconds=0, state=MemoryGuardState(clock), now=clock.now
    )
    await guard.balance(ALICE)
    clock.t += 10
    await guard.balance(ALICE)
    clock.t += 5
    other_password = Credentials("smsc.ru", "alice", "alice-new-pw")
    with pytest.raises(LoginPaused) as caught:
        await guard.balance(other_password)
    assert caught.value.retry_after == 45
    assert isinstance(caught.value, SmscRateLimited)
    assert str(caught.value) == "balance requests for this login paused for 45 s"
    assert len(fetcher.calls) == 2
    # Other logins have windows of their own.
    assert (await guard.balance(BOB)).fresh


async def test_window_counts_from_the_answer(fetcher: Fetcher, clock: Clock) -> None:
    """A slow request may reach SMSC late: its minute runs from when the answer came back."""
    guard = BalanceGuard(
        fetcher, max_per_minute=1, cache_seconds=0, state=MemoryGuardState(clock), now=clock.now
    )
    fetcher.gate = asyncio.Event()
    caller = asyncio.create_task(guard.balance(ALICE))
    await settle()
    clock.t += 8
    fetcher.gate.set()
    await caller
    clock.t += 55
    assert (await guard.balance(ALICE)).stale
    clock.t += 5
    assert (await guard.balance(ALICE)).fresh


@BOTH_STATES
async def test_credentials_rejected(guard: BalanceGuard, fetcher: Fetcher, clock: Clock) -> None:
    fetcher.errors[ALICE_WRONG] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError) as first:
        await guard.balance(ALICE_WRONG)
    assert type(first.value) is SmscAuthError
    clock.t += 3600
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


async def test_known_good_credentials_that_fail_are_rejected_too(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    await guard.balance(ALICE)
    clock.t += 60
    fetcher.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await guard.balance(ALICE)
    with pytest.raises(CredentialsRejected):
        await guard.balance(ALICE)  # the old balance is not served for refused credentials
    assert len(fetcher.calls) == 2


async def test_auth_checks_paused_for_new_credentials(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    await guard.balance(ALICE)
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(4)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    for creds in wrong[:3]:
        with pytest.raises(SmscAuthError):
            await guard.balance(creds)
        clock.t += 100
    calls = len(fetcher.calls)

    for creds in (wrong[3], BOB):
        with pytest.raises(AuthChecksPaused) as caught:
            await guard.balance(creds)
        assert caught.value.retry_after == 1800 - 300
    assert len(fetcher.calls) == calls
    assert "1500 s" in str(caught.value)

    assert (await guard.balance(ALICE)).fresh  # verified before: still checked
    assert (await guard.balance(KZ)).fresh  # another site
    clock.t += 1500
    assert (await guard.balance(BOB)).fresh


async def test_one_asker_spends_one_failure_per_window(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger's wrong passwords cost the site one failure, and the others nothing."""
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for creds in wrong:
        fetcher.errors[creds] = SmscAuthError(2, "authorise error")
    stranger = ("user:5", "chat:5")
    with pytest.raises(SmscAuthError):
        await guard.balance(wrong[0], askers=stranger)
    clock.t += 100
    for creds in (wrong[1], BOB):  # wrong or right: the stranger's next check waits
        with pytest.raises(AskerPaused) as caught:
            await guard.balance(creds, askers=stranger)
    assert caught.value.retry_after == 1700
    assert caught.value.until == clock.now() + timedelta(seconds=1700)
    assert fetcher.calls == [wrong[0]]
    assert "user:5" in caplog.text and "wrong" not in caplog.text

    # Another user of another chat is not held back.
    assert (await guard.balance(BOB, askers=("user:6", "chat:6"))).fresh
    clock.t += 1700
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
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    await guard.balance(ALICE)
    clock.t += 60
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


async def test_site_paused_after_ip_block(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    first = await guard.balance(ALICE)
    clock.t += 60
    fetcher.errors[BOB] = SmscIpBlocked(4, "ip is blocked")
    with pytest.raises(SmscIpBlocked) as blocked:
        await guard.balance(BOB)
    assert type(blocked.value) is SmscIpBlocked
    clock.t += 100
    calls = len(fetcher.calls)

    served = await guard.balance(ALICE)
    assert (served.stale, served.age, served.balance) == (True, 160, first.balance)
    for creds in (BOB, CAROL):
        with pytest.raises(SitePaused) as caught:
            await guard.balance(creds)
        assert caught.value.retry_after == 800
        assert isinstance(caught.value, SmscIpBlocked)
    assert len(fetcher.calls) == calls
    assert (await guard.balance(KZ)).fresh  # another site

    clock.t += 800
    del fetcher.errors[BOB]
    assert (await guard.balance(BOB)).fresh


async def test_login_paused_after_error_9(
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock
) -> None:
    await guard.balance(ALICE)
    clock.t += 30
    fetcher.errors[ALICE] = SmscRateLimited(9, "duplicate request, wait a minute")
    with pytest.raises(SmscRateLimited):
        await guard.balance(ALICE)
    clock.t += 10
    served = await guard.balance(ALICE)
    assert (served.stale, served.age) == (True, 40)
    with pytest.raises(LoginPaused) as caught:
        await guard.balance(Credentials("smsc.ru", "alice", "alice-new-pw"))
    assert caught.value.retry_after == 50
    assert (await guard.balance(BOB)).fresh  # another login
    assert len(fetcher.calls) == 3

    clock.t += 50
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
    guard: BalanceGuard, fetcher: Fetcher, clock: Clock, caplog: pytest.LogCaptureFixture
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


# ----- properties ----------------------------------------------------------------------

SITES = ("https://smsc.ru", "https://smsc.kz")
POOL = [
    Credentials(site, login, f"{login}-{password}")
    for site in SITES
    for login in ("alice", "bob", "carol")
    for password in ("good", "new", "bad1", "bad2")
] + [Credentials(SITES[0], None, "apikey-good"), Credentials(SITES[0], None, "apikey-bad")]
OUTCOMES = ("ok", "ok", "ok", "unavailable", "protocol", "rate_limited", "ip_blocked")


@dataclass
class Fetch:
    """One request a property-test fetcher saw: clock times, and event order across all."""

    creds: Credentials
    start: float
    order: int
    end: float = math.inf
    end_order: int = 0
    outcome: str = ""


class ScriptedFetcher:
    """Wrong passwords fail authorisation; others meet the drawn outcomes, in turn.

    Each fetch takes some event-loop turns and may advance the clock (network time).
    """

    def __init__(self, clock: Clock, outcomes: list[str], delays: list[tuple[int, float]]) -> None:
        self.clock = clock
        self.outcomes = outcomes
        self.delays = delays
        self.fetches: list[Fetch] = []
        self.order = 0
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most_in_flight = 0

    def _tick(self) -> int:
        self.order += 1
        return self.order

    async def fetch_balance(self, creds: Credentials) -> Balance:
        fetch = Fetch(creds, self.clock.t, self._tick())
        turns, network_time = self.delays[len(self.fetches) % len(self.delays)]
        outcome = self.outcomes[len(self.fetches) % len(self.outcomes)]
        if "bad" in creds.secret:
            outcome = "auth"
        self.fetches.append(fetch)
        self.in_flight[creds.rate_key] += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[creds.rate_key])
        try:
            for _ in range(turns):
                await asyncio.sleep(0)
            self.clock.t += network_time
            if outcome == "ok":
                return balance_of(creds)
            raise {
                "auth": SmscAuthError(2, "authorise error"),
                "unavailable": SmscUnavailable("SMSC unreachable: smsc.ru: ConnectTimeout"),
                "protocol": SmscProtocolError("smsc.ru answered HTTP 200 with an empty body"),
                "rate_limited": SmscRateLimited(9, "duplicate request, wait a minute"),
                "ip_blocked": SmscIpBlocked(4, "ip is blocked"),
            }[outcome]
        finally:
            self.in_flight[creds.rate_key] -= 1
            fetch.end, fetch.end_order, fetch.outcome = self.clock.t, self._tick(), outcome


steps = st.lists(
    st.one_of(
        # Callers arriving together, several with the same credentials.
        st.tuples(st.just("call"), st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=8)),
        st.tuples(
            st.just("advance"),
            st.one_of(st.sampled_from([1.0, 5.0, 30.0, 59.0, 61.0]), st.floats(0, 1900)),
        ),
        st.tuples(st.just("turns"), st.integers(1, 6)),
    ),
    max_size=40,
)


async def run_script(
    script: list[tuple], outcomes: list[str], delays: list[tuple[int, float]], max_per_minute: int
) -> tuple[list[tuple[Credentials, object]], ScriptedFetcher]:
    clock = Clock()
    fetcher = ScriptedFetcher(clock, outcomes, delays)
    guard = BalanceGuard(
        fetcher,
        max_per_minute=max_per_minute,
        cache_seconds=5,
        state=MemoryGuardState(clock),
        now=clock.now,
    )
    callers: list[tuple[Credentials, asyncio.Task[BalanceResult]]] = []
    for step in script:
        if step[0] == "call":
            for creds in (POOL[index] for index in step[1]):
                callers.append((creds, asyncio.create_task(guard.balance(creds))))
        elif step[0] == "advance":
            clock.t += step[1]
        else:
            for _ in range(step[1]):
                await asyncio.sleep(0)
    # Every caller gets an answer: the guard itself never leaves one waiting.
    async with asyncio.timeout(5):
        answers = await asyncio.gather(*(task for _, task in callers), return_exceptions=True)
    return list(zip((creds for creds, _ in callers), answers, strict=True)), fetcher


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=steps,
    outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=8),
    delays=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from([0.0, 0.5, 3.0, 20.0])),
        min_size=1,
        max_size=5,
    ),
    max_per_minute=st.sampled_from([1, 2, 3, 10]),
)
def test_guard_properties(
    script: list[tuple],
    outcomes: list[str],
    delays: list[tuple[int, float]],
    max_per_minute: int,
) -> None:
    answers, fetcher = asyncio.run(run_script(script, outcomes, delays, max_per_minute))

    for creds, answer in answers:
        assert isinstance(answer, BalanceResult | SmscError), repr(answer)
        if isinstance(answer, BalanceResult):
            assert answer.balance == balance_of(creds)  # never another password's balance
            assert answer.age >= 0

    fetches = fetcher.fetches
    assert fetcher.most_in_flight <= 1
    for key in {fetch.creds.rate_key for fetch in fetches}:
        of_key = [fetch for fetch in fetches if fetch.creds.rate_key == key]
        # Wherever within its span SMSC saw each request, no 60 s of SMSC's holds more than
        # max_per_minute: a request starts a minute after the answer max_per_minute back.
        for earlier, later in zip(of_key, of_key[max_per_minute:], strict=False):
            assert later.start - earlier.end >= 60
        for fetch in of_key:
            if fetch.outcome == "rate_limited":
                assert all(f.start >= fetch.end + 60 for f in of_key if f.order > fetch.end_order)

    for fetch in fetches:
        if fetch.outcome == "ip_blocked":
            later = [f for f in fetches if f.order > fetch.end_order]
            site = fetch.creds.site
            assert all(f.start >= fetch.end + 900 for f in later if f.creds.site == site)

    fingerprints = [fetch.creds.fingerprint for fetch in fetches if fetch.outcome == "auth"]
    assert len(fingerprints) == len(set(fingerprints))  # a refused password is never resent
    for site in SITES:
        failures = [f.end for f in fetches if f.outcome == "auth" and f.creds.site == site]
        # Far from SMSC's five in 30 minutes: at most three, as no good password fails here.
        for earlier, later in zip(failures, failures[3:], strict=False):
            assert later - earlier >= 1800


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
