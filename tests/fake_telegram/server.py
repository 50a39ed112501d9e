"""FakeTelegram: the mixins together, and the HTTP handling that routes each call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar

from aiohttp import web

from tests.fake_telegram.chats import ChatsMixin
from tests.fake_telegram.constants import WRITE_PREFIXES
from tests.fake_telegram.delivery import DeliveryMixin
from tests.fake_telegram.errors import (
    HTML_PAGE,
    REDIRECT_LOOP,
    ApiError,
    _Fault,
    _Misbehave,
    _redirect_loop,
    bad_request,
)
from tests.fake_telegram.messages import MessagesMixin
from tests.fake_telegram.observe import ObserveMixin
from tests.fake_telegram.params import _read_params
from tests.fake_telegram.records import Call
from tests.fake_telegram.users import UsersMixin
from tests.fake_telegram.world import WorldMixin
from tests.loopback import LoopbackServer


class FakeTelegram(UsersMixin, WorldMixin, ObserveMixin, DeliveryMixin, MessagesMixin, ChatsMixin):
    """Bot API on ``http://127.0.0.1:<ephemeral port>``; use as a context manager."""

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[str, Callable[[Call], Any]] = {
            "getMe": lambda call: self._get_me(),
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send,
            "sendPhoto": self._send,
            "sendDocument": self._send,
            "editMessageText": self._edit,
            "editMessageCaption": self._edit,
            "editMessageReplyMarkup": self._edit,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChat": self._get_chat,
            "sendChatAction": lambda call: True,
            "setMyDescription": lambda call: True,
            "setMyShortDescription": lambda call: True,
            "setChatMenuButton": lambda call: True,
            "close": lambda call: True,
            "logOut": lambda call: True,
        }
        self._method_names = {name.lower(): name for name in [*self._handlers, "getUpdates"]}

    # ----- lifecycle -------------------------------------------------------------------

    thread_name = "fake-telegram"
    # handler_cancellation: a long poll whose client went away (bot killed) stops at once
    # instead of swallowing updates meant for the next bot process.
    runner_options: ClassVar[dict[str, Any]] = {
        **LoopbackServer.runner_options,
        "handler_cancellation": True,
    }

    def _app(self) -> web.Application:
        self._wakeup = asyncio.Event()
        self._deliverable = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", REDIRECT_LOOP, _redirect_loop)
        app.on_cleanup.append(self._end_deliveries)
        return app

    # ----- request handling ------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            params, filenames = await _read_params(request)
        except web.HTTPRequestEntityTooLarge:
            return ApiError(413, "Request Entity Too Large").response()
        except Exception:  # a malformed body is the client's fault, never the server's end
            return bad_request("invalid request body").response()
        raw_method = request.match_info["method"]
        method = self._method_names.get(raw_method.lower(), raw_method)
        call = Call(method, params, time.monotonic())
        chat_id = params.get("chat_id") if isinstance(params.get("chat_id"), int) else None
        try:
            with self._lock:
                self.calls.append(call)
                self._calls_by[method, None].append(call)
                if chat_id is not None:
                    self._calls_by[method, chat_id].append(call)
                self._changed()
                self._raise_fault(method, chat_id)
            if method == "getUpdates":
                result: Any = await self._get_updates(params)
            else:
                handler = self._handlers.get(method)
                if handler is None:
                    raise ApiError(404, "Not Found: method not found")
                with self._lock:
                    self._check_chat(method, chat_id)
                    self._filenames = filenames
                    result = handler(call)
                    self._changed()
        except ApiError as error:
            with self._lock:
                call.error = f"{error.status} {error.description}"
                self._changed()
            return error.response()
        except _Misbehave as misbehave:
            return await self._misbehave(request, call, misbehave.fault)
        except Exception as exc:  # a bug of the fake: answer 500, keep serving
            with self._lock:
                call.error = f"500 {exc!r}"
                self.server_errors.append(f"{method}: {exc!r}")
                self._changed()
            return ApiError(500, f"Internal Server Error: {exc!r}").response()
        with self._lock:
            late = self._late.get(method.lower(), 0.0)
        if late:
            await asyncio.sleep(late)
        return web.json_response({"ok": True, "result": result})

    def _raise_fault(self, method: str, chat_id: int | None) -> None:
        faults = self._faults.get(method.lower(), [])
        for index, fault in enumerate(faults):
            if fault.chat_id is None or fault.chat_id == chat_id:
                fault.times -= 1
                if fault.times <= 0:
                    del faults[index]
                if fault.body == "json":
                    raise fault.error
                raise _Misbehave(fault)

    async def _misbehave(self, request: web.Request, call: Call, fault: _Fault) -> web.Response:
        status = fault.error.status
        with self._lock:
            call.error = {
                "html": f"{status} (HTML page)",
                "hang": "hang",
                "drop": "dropped",
                "redirect": "redirect loop",
            }[fault.body]
            self._changed()
        if fault.body == "html":
            phrase = "Error"
            with contextlib.suppress(ValueError):
                phrase = HTTPStatus(status).phrase
            page = HTML_PAGE.format(status=status, phrase=phrase)
            return web.Response(status=status, text=page, content_type="text/html")
        if fault.body == "redirect":
            return await _redirect_loop(request)
        if fault.body == "hang":
            assert self._stop_event is not None
            await self._stop_event.wait()  # or the client goes, and the handler is cancelled
        else:
            await asyncio.sleep(fault.delay)
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError  # no answer: aiohttp just ends the request

    def _check_chat(self, method: str, chat_id: int | None) -> None:
        if chat_id is None:
            return
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self._migrated[chat_id],
            )
        if chat_id in self._blocked and method.startswith(WRITE_PREFIXES):
            raise ApiError(403, self._blocked[chat_id])
