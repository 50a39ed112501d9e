"""Tests shape the world the bot sees: members, rights, blocks, faults, webhook addresses."""

from __future__ import annotations

import contextlib
from http import HTTPStatus

from tests.fake_telegram.constants import Json
from tests.fake_telegram.core import FakeTelegramCore, _check_status, _forbidden_text
from tests.fake_telegram.errors import FAULT_BODIES, ApiError, _Fault


class WorldMixin(FakeTelegramCore):
    """Change what the bot's next calls see."""

    # ----- state the bot sees ----------------------------------------------------------

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        _check_status(status)
        with self._lock:
            self._members[chat_id][user_id] = status

    def set_can_delete(self, chat_id: int, allowed: bool) -> None:
        with self._lock:
            self._can_delete[chat_id] = allowed

    def block(self, chat_id: int) -> None:
        """Every send/edit/delete in the chat now answers 403 (blocked by user / kicked)."""
        with self._lock:
            self._blocked[chat_id] = _forbidden_text(self._chat(chat_id)["type"], "kicked")

    def fail(
        self,
        method: str,
        *,
        status: int,
        description: str = "",
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
        body: str = "json",
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (only for ``chat_id`` if given) with an
        error, before any normal handling; ``body`` says how (see FAULT_BODIES: "hang" and
        "drop" and "redirect" ignore ``status``; "drop" waits ``delay`` seconds first)."""
        if body not in FAULT_BODIES:
            raise ValueError(f"body must be one of {FAULT_BODIES}")
        if not description:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            else:
                with contextlib.suppress(ValueError):
                    description = HTTPStatus(status).phrase
                description = description or "Error"
        error = ApiError(
            status, description, retry_after=retry_after, migrate_to_chat_id=migrate_to_chat_id
        )
        with self._lock:
            self._faults[method.lower()].append(_Fault(error, chat_id, times, body, delay))

    def answer_late(self, method: str, seconds: float) -> None:
        """Calls of ``method`` are handled at once (a message is in its chat) and answered
        ``seconds`` later, as by a Telegram under load; 0 ends it."""
        with self._lock:
            self._late[method.lower()] = seconds

    def deliver_to(self, *addresses: str) -> None:
        """Where webhook updates go from now on (``http://127.0.0.1:PORT`` of each replica,
        as a load balancer would pass them), round-robin; the webhook's path is added."""
        with self._lock:
            self._addresses = [address.rstrip("/") for address in addresses]
            self._changed()
        self._wake_pollers()

    def add_delivery_address(self, address: str) -> None:
        with self._lock:
            addresses = [*self._addresses, address.rstrip("/")]
        self.deliver_to(*dict.fromkeys(addresses))

    @property
    def webhook(self) -> Json | None:
        """The webhook as setWebhook set it (url, secret_token, ...), or None."""
        with self._lock:
            return dict(self._webhook) if self._webhook is not None else None
