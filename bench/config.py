"""The sizes and times of a `python -m bench` run: the full run's, or the smoke test's."""

from __future__ import annotations

from dataclasses import dataclass

from bench.data import Layout


@dataclass(frozen=True)
class Config:
    main: Layout  # the big sweep, then commands and idle, in one bot
    scale: Layout  # a tenth of it, to show how cost grows
    fan_out: Layout  # one account per chat, each found low in the same sweep
    growth: Layout  # ten times the big sweep: how cost grows with `scale` and `main`
    history: int = 192  # hours of samples each account has in the history sweep: a study's 8 days
    latency: float = 0.05  # SMSC's answer time
    slow_latency: float = 0.2  # ... and as it may be from a server far from SMSC
    burst: int = 200  # chats sending /balance at once
    steady_rate: float = 20.0  # /balance a second afterwards
    steady_count: int = 200
    idle: float = 30.0
    throttled_share: float = 0.05  # sends answered 429 once
    backlog_chats: int = 10  # chats with alerts queued while the bot was down
    backlog_per_chat: int = 6
    alone_sends: int = 270  # sent by aiogram alone at the outbox's pace: ten seconds' worth
    settle: float = 3.0  # wait for duplicates after the last alert
    timeout: float = 300.0

    @classmethod
    def sized(cls, accounts: int) -> Config:
        return cls(
            main=Layout(accounts, accounts // 5, accounts // 10),
            scale=Layout(accounts // 10, accounts // 50, accounts // 100),
            fan_out=Layout(1000, 1000, 100),
            growth=Layout(accounts * 10, accounts * 2, accounts),
        )

    @classmethod
    def smoke(cls) -> Config:
        return cls(
            main=Layout(100, 20, 10),
            scale=Layout(50, 10, 5),
            fan_out=Layout(20, 20, 2),
            growth=Layout(200, 40, 20),
            history=24,
            burst=10,
            steady_rate=10.0,
            steady_count=10,
            backlog_per_chat=3,
            alone_sends=27,
            idle=1.0,
            settle=0.5,
            timeout=20.0,
        )
