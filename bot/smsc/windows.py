"""The counting behind the guard's limits: sliding windows of recent events, per login (its
requests) and per site (its authorisation errors, overall and per asker)."""

from __future__ import annotations

import asyncio
from collections import deque


class SlidingWindow:
    """Times of recent events; those `span` seconds old drop out."""

    def __init__(self, span: float) -> None:
        self._span = span
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._forget(now)
        self._times.append(now)

    def wait(self, now: float, limit: int) -> float:
        """Seconds until fewer than `limit` events remain in the window; 0 if already so."""
        self._forget(now)
        excess = len(self._times) - limit
        return 0.0 if excess < 0 else self._times[excess] + self._span - now

    def _forget(self, now: float) -> None:
        while self._times and now - self._times[0] >= self._span:
            self._times.popleft()


class LoginLimits:
    """One rate key: its request window, its pause after error 9, its one-at-a-time lock."""

    def __init__(self, span: float) -> None:
        self.window = SlidingWindow(span)
        self.paused_until = 0.0
        self.lock = asyncio.Lock()


class SiteLimits:
    """One SMSC site: its recent authorisation errors and its pause after error 4.

    `new_credentials_lock` has never-verified credentials checked one at a time.
    """

    def __init__(self, auth_window: float) -> None:
        self.auth_window = auth_window
        self.auth_failures = SlidingWindow(auth_window)
        self.asker_failures: dict[str, SlidingWindow] = {}
        self.paused_until = 0.0
        self.new_credentials_lock = asyncio.Lock()

    def asker_wait(self, askers: tuple[str, ...], now: float, limit: int) -> float:
        """Seconds until every one of `askers` may have new credentials checked again."""
        windows = (self.asker_failures.get(asker) for asker in askers)
        return max(
            (window.wait(now, limit) for window in windows if window is not None), default=0.0
        )

    def add_auth_failure(self, askers: tuple[str, ...], now: float) -> None:
        self.auth_failures.add(now)
        # Askers whose failures aged out are dropped, so strangers leave nothing behind.
        for asker, window in list(self.asker_failures.items()):
            if window.wait(now, 1) == 0:
                del self.asker_failures[asker]
        for asker in askers:
            self.asker_failures.setdefault(asker, SlidingWindow(self.auth_window)).add(now)
