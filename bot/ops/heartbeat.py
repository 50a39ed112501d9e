"""The dead-man's switch: a push monitor (Uptime Kuma, healthchecks.io) requested while the bot
is healthy, so that a third party pages the team when the requests stop: the bot died, hung,
lost its network, or stopped doing its job."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from bot.ops.health import Health

log = logging.getLogger(__name__)

MAX_TIMEOUT = 10.0  # seconds a request may take, at most; less when beats come more often


class Heartbeat:
    """`run()` as a task of its own: it only waits, on the monitor or the clock, never on the
    bot's work. The URL is never logged: a push URL is as good as a password to the monitor."""

    def __init__(self, url: str, every: float, health: Health) -> None:
        self._url = url
        self._every = every
        self._health = health
        self._withheld = False  # logged when it starts and ends, not at every beat

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=min(MAX_TIMEOUT, self._every))
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                # A period first: started before polling starts the scheduler, a look at once
                # would find it "not running" at every start.
                await asyncio.sleep(self._every)
                problems = await self._health.problems()
                if problems and not self._withheld:
                    log.warning("heartbeat withheld: %s", "; ".join(problems))
                elif not problems:
                    if self._withheld:
                        log.info("heartbeat resumed")
                    await self._beat(http)
                self._withheld = bool(problems)

    async def _beat(self, http: aiohttp.ClientSession) -> None:
        try:
            async with http.get(self._url) as response:
                if response.status >= 400:
                    log.warning("heartbeat refused status=%s", response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("heartbeat failed error=%s", type(error).__name__)
