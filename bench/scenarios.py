"""What is measured: sweeps, the naive way, commands, alert fan-out, idle footprint."""

from __future__ import annotations

import contextlib
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

from bench.harness import BenchError, BotRun
from bot.alerting.scheduling import DISPATCH_EVERY
from tests.fake_smsc import FakeSmsc

MB = 2**20
TELEGRAM_PER_SECOND = 30  # Telegram's allowance for a bot's messages, all chats together
# Seconds from setting a sweep's accounts due to their falling due: a look for due accounts
# comes between, as it does before scheduled checks fall due.
FALLS_DUE_IN = DISPATCH_EVERY + 0.5
# A sweep's end is looked for every END_POLL seconds once NEAR_END of its accounts are checked.
NEAR_END, END_POLL = 0.95, 0.005


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Sweep:
    accounts: int
    wall: float  # s from all falling due until every account has a new last_checked_at
    requests: int  # SMSC requests made meanwhile
    rate_limited: int  # of those, answered error 9
    cpu: float  # bot CPU seconds meanwhile, all replicas together
    peak_rss: int  # bytes
    servers_cpu: float | None = None  # PostgreSQL's and Redis's CPU seconds, where they run
    doubled: int | None = None  # accounts checked more than once, where counted

    @property
    def cpu_per_check(self) -> float:
        return self.cpu / self.accounts


def sweep(run: BotRun, *, timeout: float, settle: float = 0.0) -> Sweep:
    """Every account due at once; until each was checked once. Where the run counts checks,
    a second check of an account has `settle` seconds more to show."""
    total = run.layout.accounts
    probe = run.probe
    assert probe is not None
    first_request = len(run.smsc.requests)
    before = run.sample()
    # Due a moment ahead, as scheduled checks fall due: the bot has looked by then and knows
    # when. Set due "now" from outside, a sweep waited for the next look as well (≤ 1 s).
    start = time.monotonic() + FALLS_DUE_IN
    due_at = probe.make_due(after=FALLS_DUE_IN)
    # After it: that UPDATE of every account is the benchmark's work, not the servers' for
    # the bot (PostgreSQL: ≈ 0.013 ms of CPU an account).
    servers_before = run.servers_cpu()
    # Polled often only near the end: every 50 ms the end was seen 25 ms late on average (a
    # fortieth of the 50 ms sweep's floor), and polling so all along would take CPU from the bot.
    try:
        for share, every in ((NEAR_END, 0.05), (1.0, END_POLL)):
            end = run.wait(
                lambda share=share: probe.checked_since(due_at) >= total * share,
                timeout=timeout,
                what=f"sweep of {total} accounts",
                every=every,
            )
    except BenchError as error:  # counted now, not when the wait began
        raise BenchError(f"{error} (failed checks: {probe.failed_checks()})") from None
    after, servers_after = run.sample(), run.servers_cpu()
    requests = run.smsc.requests[first_request:]
    doubled = None
    if run.counts_checks:
        time.sleep(settle)
        doubled = probe.checked_more_than_once()
    return Sweep(
        accounts=total,
        wall=end - start,
        requests=len(requests),
        rate_limited=sum(r.outcome == "error:9" for r in requests),
        cpu=after.cpu - before.cpu,
        peak_rss=after.peak_rss,
        servers_cpu=None if servers_before is None else servers_after - servers_before,
        doubled=doubled,
    )


@dataclass(frozen=True)
class Naive:
    accounts: int
    wall: float
    requests: int
    rate_limited: int


def naive(smsc: FakeSmsc, logins: int, accounts: int, concurrency: int) -> Naive:
    """The straightforward way, in a process of its own (see bench/naive.py); what the fake
    SMSC saw is counted from its own log."""
    first_request = len(smsc.requests)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.naive",
            "--url",
            smsc.url,
            "--logins",
            str(logins),
            "--accounts",
            str(accounts),
            "--concurrency",
            str(concurrency),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    requests = smsc.requests[first_request:]
    return Naive(
        accounts=accounts,
        wall=json.loads(out.stdout)["wall"],
        requests=len(requests),
        rate_limited=sum(r.outcome == "error:9" for r in requests),
    )


@dataclass(frozen=True)
class Latencies:
    updates: int
    answered: int  # with a balance in the answer
    per_second: float  # updates handled per second
    p50: float  # seconds, update queued -> answer at the Bot API
    p95: float
    p99: float
    cpu: float = 0.0  # CPU seconds of the process answering, where measured (burst)


def _latencies(run: BotRun, pushes: list[tuple[int, float]], cpu: float = 0.0) -> Latencies:
    by_chat: dict[int, list[float]] = {}
    for chat_id, pushed in pushes:
        by_chat.setdefault(chat_id, []).append(pushed)
    first = min(pushed for _, pushed in pushes)
    latencies, answered, last = [], 0, first
    for chat_id, pushed_times in by_chat.items():
        answers = [
            c
            for c in run.telegram.calls_of("sendMessage", chat_id)
            if c.error is None and c.time >= pushed_times[0]
        ]
        for pushed, answer in zip(sorted(pushed_times), answers, strict=False):
            latencies.append(answer.time - pushed)
            answered += "RUB" in answer.params.get("text", "")
            last = max(last, answer.time)
    if len(latencies) < len(pushes):
        raise BenchError(f"{len(pushes) - len(latencies)} commands went unanswered")
    return Latencies(
        updates=len(pushes),
        answered=answered,
        per_second=len(pushes) / max(last - first, 1e-9),
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        cpu=cpu,
    )


def _answered(run: BotRun, pushes: list[tuple[int, float]]) -> bool:
    wanted = Counter(chat_id for chat_id, _ in pushes)
    since = min(pushed for _, pushed in pushes)
    return all(
        sum(c.error is None and c.time >= since for c in run.telegram.calls_of("sendMessage", chat))
        >= count
        for chat, count in wanted.items()
    )


def burst(run: BotRun, chats: list[int], *, timeout: float) -> Latencies:
    """Every chat sends /balance at the same moment. `run` may be bench.alone.Alone: aiogram
    alone, answering the same way."""
    before = run.sample()
    pushes = []
    for chat_id in chats:
        pushes.append((chat_id, time.monotonic()))
        run.telegram.message(chat_id, "/balance")
    run.wait(lambda: _answered(run, pushes), timeout=timeout, what="/balance burst")
    return _latencies(run, pushes, cpu=run.sample().cpu - before.cpu)


def steady(run: BotRun, chats: list[int], *, rate: float, count: int, timeout: float) -> Latencies:
    """/balance from one chat after another, `rate` a second, each chat once if it can."""
    pushes = []
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        chat_id = chats[i % len(chats)]
        pushes.append((chat_id, time.monotonic()))
        run.telegram.message(chat_id, "/balance")
    run.wait(lambda: _answered(run, pushes), timeout=timeout, what="steady /balance")
    return _latencies(run, pushes)


@dataclass(frozen=True)
class FanOut:
    chats: int
    wall: float  # s from "all due" to the last alert delivered
    window: float  # s from the first send to the last alert delivered
    delivered: int  # chats that got their alert
    lost: int  # chats that did not
    duplicated: int  # alerts a chat got beyond its first
    throttled: int  # sends answered 429
    sends: int  # every sendMessage the bot made, answered 429 or not
    delivery_cpu: float  # bot CPU seconds from the sweep's end to the last alert delivered
    delivered_after_sweep: int  # alerts delivered meanwhile

    @property
    def cpu_per_delivered(self) -> float:
        return self.delivery_cpu / max(self.delivered_after_sweep, 1)

    @property
    def floor(self) -> float:
        return self.chats / TELEGRAM_PER_SECOND

    @property
    def per_second(self) -> float:
        return self.delivered / max(self.window, 1e-9)

    @property
    def sends_per_second(self) -> float:
        return self.sends / max(self.window, 1e-9)


def fan_out(run: BotRun, *, throttled_share: float, settle: float, seed: int = 1) -> FanOut:
    """Every chat's account is found low in one sweep; some sends are answered 429 once. The
    delivery's CPU is counted from the end of the sweep (every account checked), when the
    outbox is the only work left, over the alerts delivered from then on."""
    chats = run.layout.chat_ids
    for chat_id in random.Random(seed).sample(chats, round(len(chats) * throttled_share)):
        run.telegram.fail("sendMessage", status=429, retry_after=1, chat_id=chat_id, times=1)
    floor = len(chats) / TELEGRAM_PER_SECOND
    probe = run.probe
    assert probe is not None
    start = time.monotonic() + FALLS_DUE_IN  # as in `sweep`
    due_at = probe.make_due(after=FALLS_DUE_IN)

    def delivered() -> Counter[int]:
        return Counter(
            c.params["chat_id"]
            for c in run.telegram.calls_of("sendMessage")
            if c.error is None and "Low balance" in c.params.get("text", "")
        )

    run.wait(
        lambda: probe.checked_since(due_at) >= run.layout.accounts,
        timeout=floor + 60,
        what="the fan-out's sweep",
    )
    swept, delivered_in_sweep = run.sample(), len(delivered())
    with contextlib.suppress(BenchError):  # what never arrived is counted as lost below
        run.wait(
            lambda: len(delivered()) >= len(chats),
            timeout=3 * floor + 60,
            what="alert fan-out",
            every=0.2,
        )
    done, delivered_in_all = run.sample(), len(delivered())
    time.sleep(settle)  # anything sent twice shows up now
    counts = delivered()
    sends = [c for c in run.telegram.calls_of("sendMessage") if c.time >= start]
    successes = [c.time for c in sends if c.error is None]
    return FanOut(
        chats=len(chats),
        wall=max(successes, default=start) - start,
        window=max(successes, default=start) - min((c.time for c in sends), default=start),
        delivered=len(counts),
        lost=len(chats) - len(counts),
        duplicated=sum(n - 1 for n in counts.values()),
        throttled=sum((c.error or "").startswith("429") for c in sends),
        sends=len(sends),
        delivery_cpu=done.cpu - swept.cpu,
        delivered_after_sweep=delivered_in_all - delivered_in_sweep,
    )


@dataclass(frozen=True)
class Idle:
    seconds: float
    cpu: float  # bot CPU seconds over them
    rss: int  # bytes at the end
    peak_rss: int  # bytes: the most ever resident, at start-up or any scenario before

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.seconds


def aiogram_floor(*, as_the_bot: bool = False) -> int:
    """Bytes resident in a bare interpreter that imports aiogram and nothing else, which builds
    pydantic validators for the whole Bot API at import; `as_the_bot`: imported as the bot
    imports it, each model built when first used (bot.telegram.lazy_models)."""
    load = (
        "from bot.telegram.lazy_models import import_aiogram; import_aiogram()"
        if as_the_bot
        else "import aiogram"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import os; {load}; from bench.proc import sample; print(sample(os.getpid()).rss)",
        ],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    return int(out.stdout)


def idle(run: BotRun, seconds: float) -> Idle:
    before = run.sample()
    time.sleep(seconds)
    after = run.sample()
    return Idle(seconds, after.cpu - before.cpu, after.rss, after.peak_rss)
