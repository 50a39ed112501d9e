"""aiogram's HTTP session to the Bot API: answers that are not JSON become the errors they
stand for, a refused token is reported, and the models of answers are kept built.

Telegram's front servers answer 502/504 with an HTML page during incidents; aiogram would raise
ClientDecodeError, whose text is the whole page, and which no caller takes for a server error.
Here it is a TelegramServerError (5xx) or a TelegramNetworkError (anything else not JSON), which
the outbox and polling retry with back-off.

aiogram validates every answer with `Response[<the method's result type>]`, a generic pydantic
model. Pydantic caches such models only weakly, so after a garbage collection the next call
builds its model again: about 5 ms of CPU for a sendMessage, most of what a /balance costs.
Holding each one the bot has needed (a dozen or so) makes that lookup a dictionary hit.

Through a proxy (TELEGRAM_PROXY), aiohttp-socks raises errors of its own (a proxy down, one that
wants other credentials, one that hangs up mid-handshake), which aiogram passes on as they are:
here they are network errors, waited out and retried as any outage.

aiogram's models are built as first used (bot.telegram.lazy_models). Those every chat's command
or button brings (an Update, a message sent or edited, a button acknowledged, and their answers)
are built with the session, ≈ 0.1 s, not by the first updates to come, which would wait for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetUpdates,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Message, Update
from pydantic import ValidationError

from bot import proxy


class TelegramSession(AiohttpSession):
    """`on_token_refused(reason)` is called whenever Telegram answers 401 or 404: the token is
    revoked or wrong (Telegram answers 404 to a token it never issued)."""

    def __init__(
        self, *args: Any, on_token_refused: Callable[[str], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_token_refused = on_token_refused
        # A model reuses the schema of a model built before it, and builds its own copy of one
        # not built yet: the message first, in all the rest.
        Message.model_rebuild()
        Update.model_rebuild()  # a webhook's body
        for kind in (GetUpdates, SendMessage, EditMessageText, AnswerCallbackQuery):
            kind.model_rebuild()
            _response_model(kind)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 -- aiogram's signature
    ) -> TelegramType:
        try:
            return await super().make_request(bot, method, timeout)
        except (TelegramUnauthorizedError, TelegramNotFound) as error:
            if self._on_token_refused is not None:
                self._on_token_refused(error.message)
            raise
        except proxy.ERRORS as error:
            if self.proxy is None:
                raise  # not a proxy's: a fault to see as it is
            raise TelegramNetworkError(method, proxy.failure(error)) from None

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        _response_model(type(method))
        try:
            return super().check_response(bot, method, status_code, content)
        except ClientDecodeError as error:
            if isinstance(error.original, ValidationError) and status_code < 500:
                raise  # JSON of an unexpected shape: a bug to see, not an outage to wait out
            what = f"HTTP {status_code} {_phrase(status_code)}, not a Bot API answer"
            if status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise TelegramServerError(method, what) from None
            raise TelegramNetworkError(method, what) from None


@functools.cache  # held for the process: pydantic's own cache of generic models is weak
def _response_model(kind: type[TelegramMethod[Any]]) -> type[Response[Any]]:
    return Response[kind.__returning__]


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "(unknown status)"
