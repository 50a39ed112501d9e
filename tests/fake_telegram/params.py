"""Request parameters as the Bot API reads them: decoding, coercion, validation."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from tests.fake_telegram.constants import STRING_PARAMS, Json
from tests.fake_telegram.errors import bad_request


async def _read_params(request: web.Request) -> tuple[Json, dict[str, str]]:
    """Query string plus body (form, multipart or JSON), decoded.

    JSON-looking values become objects and numbers (``chat_id`` an int, ``reply_markup`` a
    dict), except free-text parameters.  ``attach://`` references and file fields become
    bytes; the second value maps those parameters to their file names.
    """
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, tuple[str, bytes]] = {}
    params: Json = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    raw[key] = value
    for key, value in raw.items():
        params.setdefault(key, value if key in STRING_PARAMS else _json_or_str(value))
    filenames: dict[str, str] = {}
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            filenames[key], params[key] = files.pop(value[9:])
    for key, (filename, data) in files.items():  # a plain file field: photo=@chart.png
        params.setdefault(key, data)
        filenames.setdefault(key, filename)
    return params, filenames


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return default


def _required_chat_id(params: Json) -> int:
    chat_id = params.get("chat_id")
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        return chat_id
    if chat_id in (None, ""):
        raise bad_request("chat_id is empty")
    raise bad_request("chat not found")


def _scope_key(scope: Any) -> str:
    return json.dumps(scope if isinstance(scope, dict) else {"type": "default"}, sort_keys=True)


def _reply_markup(params: Json) -> Json | None:
    markup = params.get("reply_markup")
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard") or ():
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup
