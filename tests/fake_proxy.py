"""A forward proxy on 127.0.0.1 in a thread of its own, as ops teams put in front of Telegram:
it tunnels what it is asked to CONNECT to, and refuses (407) a request without the
credentials it wants. Or it fails as proxies do (`fault`): "hangs up" closes each connection
once the client has spoken, in any protocol (a proxy restarting, a port forwarder whose backend
is down); "garbled" answers a SOCKS5 CONNECT with an address that is no text (to a client that
asks for no authentication)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Self

FAULTS = ("hangs up", "garbled")  # the proxy's own
# The ways a client meets a failing proxy, and the scheme it speaks to it in (`failing`).
FAILURES = [
    ("wrong password", "http"),
    ("proxy down", "http"),
    ("hangs up", "socks5"),
    ("garbled", "socks5"),
]


class FakeProxy:
    """`url` is ``http://user:password@127.0.0.1:<port>`` (no credentials: none wanted);
    `tunnels` the host:port of each CONNECT it carried."""

    def __init__(
        self, user: str | None = None, password: str | None = None, *, fault: str | None = None
    ) -> None:
        self.tunnels: list[str] = []
        self.fault = fault
        login = None if user is None else base64.b64encode(f"{user}:{password}".encode())
        self._authorization = None if login is None else f"Basic {login.decode()}"
        self._login = "" if user is None else f"{user}:{password}@"
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-proxy")
        self._ready = threading.Event()

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening (again: nothing more): its address refuses connections."""
        if self._thread.is_alive():
            assert self._loop is not None and self._server is not None
            self._loop.call_soon_threadsafe(self._server.close)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self._login}127.0.0.1:{port}"
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.fault == "hangs up":
                await reader.read(1)
                return
            if self.fault == "garbled":
                await reader.read(3)  # version 5, one method: none
                writer.write(b"\x05\x00")
                await reader.read(300)  # the CONNECT
                writer.write(b"\x05\x00\x00\x03\x02\xff\xfe\x00\x50")
                await writer.drain()
                return
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _version = head[0].split(" ")
            headers = dict(line.split(": ", 1) for line in head[1:] if line)
            wanted = self._authorization
            if wanted is not None and headers.get("Proxy-Authorization") != wanted:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                return
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def failing(fault: str, scheme: str) -> Iterator[str]:
    """A proxy failing so (one of FAILURES' faults), its password pr0xy-pa55: the URL a client
    is given for it, in `scheme`."""
    with FakeProxy("ops", "pr0xy-pa55", fault=fault if fault in FAULTS else None) as proxy:
        url = proxy.url.replace("http", scheme, 1)
        if fault == "wrong password":
            url = url.replace("pa55", "bad")
        if fault == "garbled":
            url = url.replace("ops:pr0xy-pa55@", "")  # it answers a client asking for no login
        if fault == "proxy down":
            proxy.close()
        yield url
