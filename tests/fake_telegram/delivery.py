"""Updates reach the bot: getUpdates long polls, or setWebhook and POSTs to its replicas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fake_telegram.constants import (
    CONFLICT,
    OPT_IN_UPDATES,
    REDELIVERY_PAUSE,
    SECRET_HEADER,
    WEBHOOK_ACTIVE,
    WEBHOOK_CONNECTIONS,
    WEBHOOK_SECRET_SHAPE,
    WEBHOOK_TIMEOUT,
    Json,
)
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.errors import ApiError, bad_request
from tests.fake_telegram.params import _int
from tests.fake_telegram.records import Call, Delivery


class DeliveryMixin(FakeTelegramCore):
    """getUpdates, the webhook methods, and the delivery of updates to a webhook."""

    # ----- getUpdates (server loop) ----------------------------------------------------

    async def _get_updates(self, params: Json) -> list[Json]:
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        timeout = min(max(_int(params.get("timeout"), 0), 0), 50)
        allowed = params.get("allowed_updates")
        with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_ACTIVE)
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(allowed) or None
        assert self._wakeup is not None
        self._poll_generation += 1
        generation = self._poll_generation
        self._wakeup.set()  # an older long poll ends with 409, as on Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, CONFLICT)
            with self._lock:
                batch = self._take_updates(offset, limit)
            remaining = deadline - loop.time()
            if batch or self._stopping or remaining <= 0:
                return batch
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take_updates(self, offset: int, limit: int) -> list[Json]:
        queue = self._updates
        if offset < 0:  # -N: forget all but the last N updates
            while len(queue) > -offset:
                queue.popleft()
        while queue and queue[0][0] < offset:  # confirmed
            queue.popleft()
        allowed = self._is_allowed
        while queue and not allowed(queue[0][1]):  # never deliverable
            self._fetched_upto = max(self._fetched_upto, queue.popleft()[0])
        batch: list[Json] = []
        for update_id, kind, update in queue:
            if allowed(kind):
                if len(batch) == limit:
                    break
                batch.append(update)
            self._fetched_upto = max(self._fetched_upto, update_id)
        if batch:
            self._changed()
        return batch

    def _is_allowed(self, kind: str) -> bool:
        if self._allowed_updates is None:
            return kind not in OPT_IN_UPDATES
        return kind in self._allowed_updates

    # ----- webhook methods (called with the lock held) ---------------------------------

    def _delete_webhook(self, call: Call) -> bool:
        self._webhook = None
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
            self._fetched_upto = self._last_update_id
        return True

    def _set_webhook(self, call: Call) -> bool:
        params = call.params
        url = str(params.get("url") or "")
        if not url:  # Telegram: an empty URL removes the webhook
            return self._delete_webhook(call)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not WEBHOOK_SECRET_SHAPE.fullmatch(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._webhook = {"url": url, "path": path, "secret_token": secret}
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or None
            self._webhook["allowed_updates"] = sorted(allowed)
        if params.get("drop_pending_updates"):
            self._updates.clear()
            self._fetched_upto = self._last_update_id
        self._webhook_error = None
        self._poll_generation += 1  # a long poll under way ends
        if not self._deliverers:
            loop = asyncio.get_running_loop()  # handlers run on the server's loop
            self._http = aiohttp.ClientSession()
            self._deliverers = [
                loop.create_task(self._deliver_forever()) for _ in range(WEBHOOK_CONNECTIONS)
            ]
        self._wake_pollers()
        return True

    def _get_webhook_info(self, call: Call) -> Json:
        hook = self._webhook or {}
        info: Json = {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self._last_update_id - self._fetched_upto + self._in_delivery,
        }
        if hook and self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        if "allowed_updates" in hook:
            info["allowed_updates"] = hook["allowed_updates"]
        return info

    # ----- webhook delivery (server loop) ----------------------------------------------

    async def _deliver_forever(self) -> None:
        assert self._deliverable is not None
        while not self._stopping:
            with self._lock:
                taken = self._take_for_delivery()
            if taken is None:
                self._deliverable.clear()  # no await since the look: no wake-up is missed
                await self._deliverable.wait()
            else:
                await self._deliver(taken)

    def _take_for_delivery(self) -> tuple[int, str, Json] | None:  # lock held
        if self._webhook is None or not self._addresses:
            return None
        while self._updates:
            entry = self._updates.popleft()
            self._fetched_upto = max(self._fetched_upto, entry[0])
            if self._is_allowed(entry[1]):
                self._in_delivery += 1
                return entry
        return None

    async def _deliver(self, entry: tuple[int, str, Json]) -> None:
        update_id, _kind, update = entry
        first = next(self._round_robin)
        for attempt in itertools.count():
            with self._lock:
                hook, addresses = self._webhook, self._addresses
                if hook is None or not addresses:  # deleted meanwhile: back for getUpdates
                    self._updates.appendleft(entry)
                    self._fetched_upto = min(self._fetched_upto, update_id - 1)
                    self._in_delivery -= 1
                    self._changed()
            if hook is None or not addresses:
                self._wake_pollers()
                return
            address = addresses[(first + attempt) % len(addresses)]
            error = await self._post(f"{address}{hook['path']}", hook.get("secret_token"), update)
            with self._lock:
                self.deliveries.append(Delivery(update_id, address, error))
                if error is None:
                    self._in_delivery -= 1
                else:
                    self._webhook_error = (int(time.time()), error)
                self._changed()
            if error is None:
                return
            if (attempt + 1) % len(addresses) == 0:
                await asyncio.sleep(REDELIVERY_PAUSE)

    async def _post(self, url: str, secret: str | None, update: Json) -> str | None:
        """None when answered 2xx, else the error as getWebhookInfo words it."""
        assert self._http is not None
        headers = {SECRET_HEADER: secret} if secret else {}
        try:
            async with self._http.post(
                url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except aiohttp.ClientError as error:
            return f"Connection failed: {type(error).__name__}"

    async def _end_deliveries(self, _app: web.Application) -> None:
        for task in self._deliverers:
            task.cancel()
        await asyncio.gather(*self._deliverers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
