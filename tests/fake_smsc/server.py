"""``FakeSmsc``: the server, its test controls and its request handling (SMSC's checks in
order: IP block, parameters, authorisation, rate limits), and the ``RequestRecord`` it logs
for each request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from aiohttp import web

from tests.fake_smsc.replies import (
    ERROR_TEXTS,
    FAULTS,
    TOO_MANY_CONCURRENT,
    _Account,
    _check_amount,
    _error_response,
    _fault_response,
    _format_balance,
    _parse_fmt,
    _text_response,
)
from tests.loopback import LoopbackServer


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: float  # time.monotonic() at arrival
    login: str | None  # login, or for apikey requests the login owning that key
    ip: str
    fmt: int
    outcome: str  # "ok", "error:N" or the fault name ("5xx", "garbage", ...)


class FakeSmsc(LoopbackServer):
    """SMSC balance endpoint on ``http://127.0.0.1:<ephemeral port>``; use as a context manager."""

    def __init__(
        self,
        *,
        window: float = 60.0,
        max_per_window: int = 10,
        max_concurrent: int = 15,
        auth_errors_to_block: int = 5,
        auth_window: float = 1800.0,
        block_seconds: float = 1800.0,
    ) -> None:
        super().__init__()
        self.window = window
        self.max_per_window = max_per_window
        self.max_concurrent = max_concurrent
        self.auth_errors_to_block = auth_errors_to_block
        self.auth_window = auth_window
        self.block_seconds = block_seconds

        self.latency: float = 0.0
        self._fault: str | None = None
        self.allowed_ips: dict[str, set[str]] = {}
        self.requests: list[RequestRecord] = []
        self.max_concurrency_seen: dict[str, int] = {}

        # State shared by the server thread and the test thread; guarded by _lock.
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._apikeys: dict[str, str] = {}  # apikey -> login
        self._in_flight: dict[str, int] = defaultdict(int)
        self._recent: dict[str, deque[float]] = defaultdict(deque)  # login -> request times
        self._auth_errors: dict[str, deque[float]] = defaultdict(deque)  # ip -> error times
        self._blocked_until: dict[str, float] = {}  # ip -> monotonic deadline

    # ----- lifecycle -------------------------------------------------------------------

    thread_name = "fake-smsc"
    backlog = 1024  # a deep accept queue: benchmarks open many connections at once

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/sys/balance.php", self._handle)
        app.router.add_post("/sys/balance.php", self._handle)
        return app

    # ----- test controls ---------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """None, or one of FAULTS: how every request is (mis)answered, before anything else."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; expected None or one of {FAULTS}")
        self._fault = value

    def add_account(
        self,
        login: str,
        password: str,
        balance: str = "100.00",
        credit: str = "0.00",
        currency: str = "RUB",
        apikey: str | None = None,
    ) -> None:
        _check_amount(balance, credit)
        with self._lock:
            self._accounts[login] = _Account(password, balance, credit, currency)
            if apikey is not None:
                self._apikeys[apikey] = login

    def set_balance(self, login: str, balance: str, credit: str | None = None) -> None:
        _check_amount(balance, credit or "0")
        with self._lock:
            account = self._accounts[login]
            account.balance = balance
            if credit is not None:
                account.credit = credit

    def reset(self) -> None:
        """Forget the request log, rate windows, auth errors and IP blocks; keep accounts.

        ``max_concurrency_seen`` is part of the log and is cleared too.
        """
        with self._lock:
            self.requests.clear()
            self.max_concurrency_seen.clear()
            self._recent.clear()
            self._auth_errors.clear()
            self._blocked_until.clear()

    def block_ip(self, ip: str = "127.0.0.1") -> None:
        with self._lock:
            self._blocked_until[ip] = time.monotonic() + self.block_seconds

    def requests_for(self, login: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.login == login]

    def max_in_window(self, login: str, window: float = 60.0) -> int:
        """Most requests for ``login`` that fall in any sliding window of ``window`` seconds."""
        times = sorted(r.time for r in self.requests_for(login))
        best = first = 0
        for last, t in enumerate(times):
            while t - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    # ----- request handling ------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrival = time.monotonic()
        params = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update((k, v) for k, v in form.items() if isinstance(v, str))
        ip = request.remote or ""
        fmt = _parse_fmt(params.get("fmt"))
        reply_fmt = 0 if fmt is None else fmt

        fault = self.fault
        if fault is not None:
            self._record(RequestRecord(arrival, self._claimed_login(params), ip, reply_fmt, fault))
            if fault == "hang":
                # Never answer while the fault lasts; stop() cancels us.  Once the fault is
                # cleared the request ends like a proxy giving up: HTTP 503.  Polling, because
                # `fault` is set from the test's thread.
                while self.fault == "hang":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                return web.Response(status=503, text="Service Unavailable")
            await asyncio.sleep(self.latency)
            return _fault_response(fault)

        with self._lock:
            login, code, text, account, in_flight = self._decide(params, ip, fmt, arrival)
            outcome = "ok" if code == 0 else f"error:{code}"
            self.requests.append(RequestRecord(arrival, login, ip, reply_fmt, outcome))
        try:
            await asyncio.sleep(self.latency)
            if account is None:
                return _error_response(reply_fmt, code, text)
            with self._lock:  # read the balance when answering, as set_balance may run meanwhile
                body = _format_balance(reply_fmt, params.get("cur") == "1", account)
            return _text_response(reply_fmt, body)
        finally:
            if in_flight is not None:
                with self._lock:
                    self._in_flight[in_flight] -= 1

    def _decide(
        self, params: dict[str, str], ip: str, fmt: int | None, now: float
    ) -> tuple[str | None, int, str, _Account | None, str | None]:
        """Steps 2-5 of the spec, under the lock.

        Returns (login for the log, error code or 0, error text, account on success,
        login whose in-flight counter was incremented and must be decremented when answered).
        """
        apikey = params.get("apikey") or None
        login = self._claimed_login(params)
        password = params.get("psw") or None

        # 2. IP block.
        if self._blocked_until.get(ip, 0.0) > now:
            return login, 4, ERROR_TEXTS[4], None, None
        self._blocked_until.pop(ip, None)

        # 3. Parameters.
        if fmt is None or (apikey is None and (login is None or password is None)):
            return login, 1, ERROR_TEXTS[1], None, None

        # 4. Authorisation (wrong key/login/password, or IP outside the account's allow-list).
        account = self._accounts.get(login) if login is not None else None
        if (
            login is None
            or account is None
            or (apikey is None and account.password != password)
            or (self.allowed_ips.get(login) and ip not in self.allowed_ips[login])
        ):
            self._count_auth_error(ip, now)
            return login, 2, ERROR_TEXTS[2], None, None

        # 5. Rate limits.  Every request that gets here counts toward the window, including
        # the ones refused with error 9 (SMSC counts attempts, so a client hammering the API
        # stays locked out), and is in flight until answered.
        self._in_flight[login] += 1
        in_flight = self._in_flight[login]
        if in_flight > self.max_concurrency_seen.get(login, 0):
            self.max_concurrency_seen[login] = in_flight
        recent = self._recent[login]
        recent.append(now)
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if in_flight >= self.max_concurrent:
            return login, 9, TOO_MANY_CONCURRENT, None, login
        if len(recent) > self.max_per_window:
            return login, 9, ERROR_TEXTS[9], None, login

        # 6. Success.
        return login, 0, "", account, login

    def _count_auth_error(self, ip: str, now: float) -> None:
        errors = self._auth_errors[ip]
        errors.append(now)
        while errors and errors[0] <= now - self.auth_window:
            errors.popleft()
        if len(errors) >= self.auth_errors_to_block:
            self._blocked_until[ip] = now + self.block_seconds
            errors.clear()

    def _claimed_login(self, params: dict[str, str]) -> str | None:
        apikey = params.get("apikey") or None
        if apikey is not None:
            return self._apikeys.get(apikey)
        return params.get("login") or None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
