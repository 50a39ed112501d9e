"""A real HTTP server on 127.0.0.1 in a thread of its own: what the fakes of SMSC and of the
Bot API share. Its own event loop serves sync tests, async tests whose loop runs the bot's
code, and the bot started as a subprocess alike."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web


class LoopbackServer(abc.ABC):
    """`start()`/`stop()` or a context manager; `url` is ``http://127.0.0.1:<port>``."""

    thread_name = "loopback-server"
    backlog = 128
    # A short shutdown_timeout: stop() cancels requests still hanging or sleeping.
    runner_options: ClassVar[dict[str, Any]] = {"shutdown_timeout": 0.2}

    def __init__(self) -> None:
        self.url = ""
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    @abc.abstractmethod
    def _app(self) -> web.Application:
        """The application to serve; built on the server's loop."""

    def _begin_stop(self) -> None:
        """On the server's loop: end serving (subclasses first wake what is waiting)."""
        if self._stop_event is not None:
            self._stop_event.set()

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.name = self.thread_name
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed: the thread is ending
            loop.call_soon_threadsafe(self._begin_stop)
        thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(self._app(), access_log=None, **self.runner_options)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=self.backlog)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()
