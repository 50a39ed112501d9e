"""Property tests of BalanceGuard: drawn scripts of callers, clock steps and SMSC's answers,
against SMSC's limits, with a scripted fetcher and an injected clock (tests/guard_fixtures.py)."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.windows import MemoryGuardState
from tests.guard_fixtures import Clock, balance_of

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
            assert all(f.start >= fetch.end + 1800 for f in later if f.creds.site == site)

    fingerprints = [fetch.creds.fingerprint for fetch in fetches if fetch.outcome == "auth"]
    assert len(fingerprints) == len(set(fingerprints))  # a refused password is never resent
    for site in SITES:
        failures = [f.end for f in fetches if f.outcome == "auth" and f.creds.site == site]
        # Far from SMSC's five in 30 minutes: at most three, as no good password fails here.
        for earlier, later in zip(failures, failures[3:], strict=False):
            assert later - earlier >= 1800
