"""aiogram's HTTP session to the Bot API, with the models of its answers kept built.

aiogram validates every answer with `Response[<the method's result type>]`, a generic pydantic
model. Pydantic caches such models only weakly, so after a garbage collection the next call
builds its model again: about 5 ms of CPU for a sendMessage, most of what a /balance costs.
Holding each one the bot has needed (a dozen or so) makes that lookup a dictionary hit.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


class TelegramSession(AiohttpSession):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._response_models: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self._response_models:
            self._response_models[kind] = Response[method.__returning__]
        return super().check_response(bot, method, status_code, content)
