"""The SMSC guard shared by replicas through a real Redis: two `BalanceGuard`s ("two replicas",
each with a Redis client of its own) in front of one fake SMSC that notes every request.
Windows and pauses are shortened to a second or so; the times are Redis's and the real ones.
What that costs in round trips, Redis failing, and what Redis holds:
tests/test_fleet_limits_redis.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from bot.fleet.limits import RedisGuardState
from bot.smsc.client import Credentials
from bot.smsc.errors import SmscAuthError, SmscIpBlocked, SmscRateLimited, SmscUnavailable
from bot.smsc.refusals import (
    AskerPaused,
    AuthChecksPaused,
    CredentialsRejected,
    LoginPaused,
    SiteAuthCapped,
    SitePaused,
)
from tests.fleet_fixtures import ALLOWANCE, BALANCE, KEY, Replica, Smsc, fleet_smsc
from tests.guard_fixtures import ALICE, BOB, KZ

smsc = fleet_smsc  # the replicas' fake SMSC (tests/fleet_fixtures.py)


async def test_thirty_callers_on_two_replicas_make_one_request(
    replica: Replica, smsc: Smsc
) -> None:
    smsc.delay = 0.2
    replicas = [replica(), replica()]
    callers = [replicas[i % 2].balance(ALICE) for i in range(30)]
    results = await asyncio.gather(*callers)
    assert len(smsc.requests) == 1
    assert {result.balance for result in results} == {BALANCE}
    assert {result.checked_at for result in results} == {results[0].checked_at}


async def test_no_window_holds_more_than_the_limit_across_replicas(
    replica: Replica, smsc: Smsc
) -> None:
    smsc.delay = 0.02
    options = {"max_per_minute": 3, "cache_seconds": 0, "state": {"window": 1.0}}
    replicas = [replica(**options), replica(**options)]
    stop = time.monotonic() + 2.5
    while time.monotonic() < stop:
        await asyncio.gather(*(guard.balance(ALICE) for guard in replicas), return_exceptions=True)
        await asyncio.sleep(0.02)
    requests = smsc.requests
    assert 6 <= len(requests) <= 9  # three per second, as many as the window let through
    for earlier, later in zip(requests, requests[3:], strict=False):
        # A request goes out a whole window after the answer three requests back.
        assert later.start - earlier.end >= 1.0 - 0.005


async def test_refused_credentials_are_refused_by_every_replica(
    replica: Replica, smsc: Smsc
) -> None:
    first, second = replica(), replica()
    smsc.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await first.balance(ALICE)
    with pytest.raises(CredentialsRejected):
        await second.balance(ALICE, known_good=True)
    assert len(smsc.requests) == 1

    del smsc.errors[ALICE]  # the allow-list was fixed; a person asks again, elsewhere
    first.retry(ALICE)
    assert (await first.balance(ALICE)).fresh
    assert (await second.balance(ALICE)).balance == BALANCE  # cached for the fleet
    assert len(smsc.requests) == 2


async def test_auth_failure_budget_is_the_fleets(replica: Replica, smsc: Smsc) -> None:
    replicas = [replica(auth_failures_per_site=2), replica(auth_failures_per_site=2)]
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for creds in wrong:
        smsc.errors[creds] = SmscAuthError(2, "authorise error")
    for index in range(2):
        with pytest.raises(SmscAuthError):
            await replicas[index].balance(wrong[index], askers=(f"user:{index}",))
    with pytest.raises(AuthChecksPaused) as caught:
        await replicas[0].balance(BOB, askers=("user:9",))
    assert type(caught.value) is AuthChecksPaused
    assert 1.5 < caught.value.retry_after <= 2.0  # the 2 s window, from the first failure
    assert (await replicas[1].balance(KZ)).fresh  # another site
    assert (await replicas[1].balance(ALICE, known_good=True)).fresh  # verified before
    await asyncio.sleep(caught.value.retry_after)
    assert (await replicas[1].balance(BOB, askers=("user:9",))).fresh


async def test_the_cap_on_refusals_holds_known_good_credentials_in_the_fleet(
    replica: Replica, smsc: Smsc
) -> None:
    """The fleet moved to new IPs: watched logins with allow-lists fail, on any replica."""
    replicas = [replica(cache_seconds=0), replica(cache_seconds=0)]
    known = await replicas[1].balance(ALICE, known_good=True)
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(5)]
    for index, creds in enumerate(watched[:4]):
        smsc.errors[creds] = SmscAuthError(2, "authorise error")
        with pytest.raises(SmscAuthError):
            await replicas[index % 2].balance(creds, known_good=True)
    with pytest.raises(AuthChecksPaused) as caught:
        await replicas[0].balance(watched[4], known_good=True)
    assert 1.5 < caught.value.retry_after <= 2.0  # the 2 s window, from the first refusal
    served = await replicas[0].balance(ALICE, known_good=True)
    assert (served.stale, served.checked_at) == (True, known.checked_at)
    assert (await replicas[1].balance(KZ, known_good=True)).fresh  # another site
    assert len(smsc.requests) == 6
    await asyncio.sleep(caught.value.retry_after)
    assert (await replicas[0].balance(watched[4], known_good=True)).fresh


async def test_refused_credentials_tried_again_are_not_known_good_to_the_fleet(
    replica: Replica, smsc: Smsc
) -> None:
    """Another chat's account still says OK: each /add of the refused password would go."""
    first, second = replica(), replica()
    smsc.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await first.balance(ALICE, known_good=True, askers=("user:5",))
    for guard in (second, first):
        guard.retry(ALICE)
        with pytest.raises(AskerPaused):
            await guard.balance(ALICE, known_good=True, askers=("user:5",))
    assert len(smsc.requests) == 1


async def test_an_askers_failure_counts_on_every_replica(replica: Replica, smsc: Smsc) -> None:
    first, second = replica(), replica()
    smsc.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await first.balance(ALICE, askers=("user:5", "chat:-100"))
    with pytest.raises(AskerPaused):
        await second.balance(BOB, askers=("user:6", "chat:-100"))
    assert (await second.balance(BOB, askers=("user:6", "chat:-200"))).fresh
    assert len(smsc.requests) == 2


async def test_an_ip_block_pauses_the_site_for_the_fleet(replica: Replica, smsc: Smsc) -> None:
    first, second = replica(ip_block_pause=1.0), replica(ip_block_pause=1.0)
    known = await second.balance(ALICE)
    smsc.errors[BOB] = SmscIpBlocked(4, "ip is blocked")
    with pytest.raises(SmscIpBlocked):
        await first.balance(BOB)
    with pytest.raises(SitePaused) as caught:
        await second.balance(Credentials("smsc.ru", "carol", "carol-pw"))
    assert 0.5 < caught.value.retry_after <= 1.0
    served = await second.balance(ALICE, known_good=True)
    assert (served.stale, served.checked_at) == (True, known.checked_at)
    assert (await second.balance(KZ)).fresh  # another site
    assert len(smsc.requests) == 3
    await asyncio.sleep(caught.value.retry_after)
    del smsc.errors[BOB]
    assert (await second.balance(BOB)).fresh


async def test_error_9_pauses_the_login_for_the_fleet(replica: Replica, smsc: Smsc) -> None:
    options = {"rate_limit_pause": 1.0, "cache_seconds": 0}
    first, second = replica(**options), replica(**options)
    await second.balance(ALICE)
    smsc.errors[ALICE] = SmscRateLimited(9, "duplicate request, wait a minute")
    with pytest.raises(SmscRateLimited):
        await first.balance(ALICE)
    served = await second.balance(ALICE)  # the last known balance meanwhile
    assert served.stale and served.balance == BALANCE
    with pytest.raises(LoginPaused) as caught:
        await second.balance(Credentials("smsc.ru", "alice", "alice-new-pw"))
    assert 0.5 < caught.value.retry_after <= 1.0
    assert (await second.balance(BOB)).fresh  # another login
    assert len(smsc.requests) == 3
    await asyncio.sleep(caught.value.retry_after)
    del smsc.errors[ALICE]
    assert (await second.balance(ALICE)).fresh


async def test_a_dead_replicas_turn_frees_itself(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    # A replica takes the login's turn for a request bounded to 1 s, then dies unfinished.
    client = Redis.from_url(redis_url)
    dead = RedisGuardState(client, KEY, lease_margin=0.2)
    turn = await dead.begin(ALICE, (), ALLOWANCE, known_good=True, fresh_for=0, hold=1.0)
    taken = time.monotonic()
    await client.aclose()
    assert turn.admission is not None and turn.admission.granted
    assert (await asyncio.wait_for(replica().balance(ALICE), 3.0)).fresh
    [request] = smsc.requests
    assert 1.2 - 0.05 <= request.start - taken <= 1.2 + 0.5  # the lease, and a busy host's slack


async def test_a_dead_replicas_requests_at_an_unproven_site_stop_counting_with_their_lease(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    """A replica not answered OK lately took the cap's four places in flight, then died."""
    client = Redis.from_url(redis_url)
    dead = RedisGuardState(client, KEY, lease_margin=0.2)
    for i in range(4):
        shop = Credentials("smsc.ru", f"shop{i}", "pw")
        turn = await dead.begin(shop, (), ALLOWANCE, known_good=True, fresh_for=0, hold=1.0)
        assert turn.admission is not None and turn.admission.granted
    taken = time.monotonic()
    await client.aclose()
    assert (await asyncio.wait_for(replica().balance(BOB, known_good=True), 3.0)).fresh
    [request] = smsc.requests
    assert 1.2 - 0.05 <= request.start - taken <= 1.2 + 0.5  # the lease, and a busy host's slack


async def test_an_ok_answer_proves_only_its_own_replicas_ip(replica: Replica, smsc: Smsc) -> None:
    """Replicas on two servers, one just moved: the other's OK answers say nothing of its IP,
    and its requests in flight count on every replica."""
    old, moved, also_moved = replica(), replica(), replica()
    assert (await old.balance(ALICE)).fresh
    watched = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(10)]
    for creds in watched:
        smsc.errors[creds] = SmscAuthError(2, "authorise error")
    smsc.delay = 0.2
    checks = [[moved, also_moved][i % 2].balance(c, known_good=True) for i, c in enumerate(watched)]
    outcomes = await asyncio.gather(*checks, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes].count(SmscAuthError) == 4
    assert {type(outcome) for outcome in outcomes} == {SmscAuthError, SiteAuthCapped}
    assert len(smsc.requests) == 5


async def test_requests_waiting_for_an_unproven_site_go_once_an_ok_answer_proves_it(
    replica: Replica, smsc: Smsc
) -> None:
    """A sweep's first round at a site this replica has no OK answer from: four requests fly,
    the rest wait; the first OK answer proves the IP, and every waiting request goes then, not
    only as many as the flight's places freed (a sweep on replicas took half a second to reach
    its pace)."""
    guard = replica()
    fast, *slow = [Credentials("smsc.ru", f"shop{i}", "pw") for i in range(4)]
    waiting = [Credentials("smsc.ru", f"late{i}", "pw") for i in range(3)]
    smsc.delay, smsc.delays = 2.0, {fast: 0.05}  # the others answer later than the test looks
    started = time.monotonic()
    first = [asyncio.create_task(guard.balance(c, known_good=True)) for c in (fast, *slow)]
    await asyncio.sleep(0.02)  # the four hold the flight's places
    later = [asyncio.create_task(guard.balance(c, known_good=True)) for c in waiting]
    await asyncio.sleep(0.5)
    assert {r.creds for r in smsc.requests if r.start - started < 0.5} == {fast, *slow, *waiting}
    await asyncio.gather(*first, *later)


async def test_a_slow_request_keeps_the_turn_while_it_runs(replica: Replica, smsc: Smsc) -> None:
    # The lease is only the request's bound and a little: 0.8 s of SMSC fill most of it.
    options = {"request_timeout": 1.0, "state": {"lease_margin": 0.1}}
    first, second = replica(**options), replica(**options)
    smsc.delay = 0.8
    asking = asyncio.create_task(first.balance(ALICE))
    await asyncio.sleep(0.5)
    served = await second.balance(ALICE)  # waits for the first's answer: no second request
    assert (await asking).fresh and served.balance == BALANCE
    assert len(smsc.requests) == 1


async def test_an_unanswered_request_frees_the_login_for_the_fleet(
    replica: Replica, smsc: Smsc
) -> None:
    first, second = replica(request_timeout=0.2), replica(request_timeout=0.2)
    smsc.delay = 30.0
    with pytest.raises(SmscUnavailable):
        await first.balance(ALICE)
    smsc.delay = 0.0
    assert (await asyncio.wait_for(second.balance(ALICE), 1.0)).fresh  # not the lease's 5 s
    earlier, later = smsc.requests
    assert later.start >= earlier.end
