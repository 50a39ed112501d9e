"""A fake SMS Center (smsc.ru) balance API: a real HTTP server on 127.0.0.1 for tests.

It answers ``/sys/balance.php`` (GET or urlencoded POST) the way SMSC's own documentation
describes (``/work/shared/docs/smsc-balance-api.txt`` and ``smsc-and-telegram-facts.md``):
the four reply formats (``fmt`` 0-3, ``cur``), the error codes 1, 2, 4 and 9, the per-login
limit of ten balance requests a minute and fifteen simultaneous requests, and the IP block
after five authorisation errors in thirty minutes.  All of these limits are configurable so
tests can shrink a minute to a fraction of a second.

Why a real server: the bot talks to SMSC with httpx, so the fake must be reachable over TCP
by sync tests, by async tests (the bot's code runs on the test's own event loop, so the
server gets its own loop in a daemon thread) and by the bot run as a subprocess.  Latency is
an ``asyncio.sleep`` so thousands of concurrent requests never block the server's loop.

Every request is logged as a ``RequestRecord`` so tests can assert how the bot behaved
(how often it polled a login, how many requests it had in flight, whether it kept retrying
a wrong password).

The package, by concern: ``replies`` (the faults, error texts and reply formats, and the
account whose balance a reply carries) and ``server`` (``FakeSmsc``, its test controls and
request handling, and the ``RequestRecord`` it logs).
"""

from tests.fake_smsc.replies import ERROR_TEXTS, FAULTS, HTML_PAGE, TOO_MANY_CONCURRENT
from tests.fake_smsc.server import FakeSmsc, RequestRecord

__all__ = [
    "ERROR_TEXTS",
    "FAULTS",
    "HTML_PAGE",
    "TOO_MANY_CONCURRENT",
    "FakeSmsc",
    "RequestRecord",
]
