"""Messages the bot sends, edits and deletes, the files it sends, its callback answers."""

from __future__ import annotations

import mimetypes
import struct
import time

from tests.fake_telegram.constants import BOT_ID, BOT_USER, NOT_MODIFIED, PNG_SIGNATURE, Json
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.errors import bad_request
from tests.fake_telegram.params import _int, _reply_markup, _required_chat_id
from tests.fake_telegram.records import Call, _Stored
from tests.fake_telegram.text import _buttons, _message_line, _rich_text, _without_reply


class MessagesMixin(FakeTelegramCore):
    """sendMessage/Photo/Document, editMessage*, deleteMessage, answerCallbackQuery."""

    # ----- methods (called with the lock held) -----------------------------------------

    def _send(self, call: Call) -> Json:
        params = call.params
        chat_id = _required_chat_id(params)
        chat = self._chat(chat_id)
        message: Json = {"message_id": 0, "from": BOT_USER, "chat": chat}
        thread_id = params.get("message_thread_id")
        if isinstance(thread_id, int):
            message["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        message["date"] = int(time.time())
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        reply_id = reply.get("message_id", params.get("reply_to_message_id"))
        if isinstance(reply_id, int):
            target = self._messages.get((chat_id, reply_id))
            if target is not None and not target.deleted:
                message["reply_to_message"] = _without_reply(target.message)
            elif not (
                reply.get("allow_sending_without_reply")
                or params.get("allow_sending_without_reply")
            ):
                raise bad_request("message to be replied not found")
        extras: Json = {}
        if call.method == "sendMessage":
            text, entities = _rich_text(params, "text", 4096)
            message["text"] = text
            if entities:
                message["entities"] = entities
            line = text
        else:
            kind = "photo" if call.method == "sendPhoto" else "document"
            data, name = self._upload(call, kind)
            file_id = f"fake-{kind}-{next(self._ids)}"
            self._files[file_id] = data
            file_info: Json = {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(data),
            }
            if kind == "photo":
                width, height = _image_size(data)
                message["photo"] = [{**file_info, "width": width, "height": height}]
                line = "[photo]"
            else:
                mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                message["document"] = {**file_info, "file_name": name, "mime_type": mime}
                line = f"[document {name}]"
            extras[f"{kind}_bytes"] = data
            if params.get("caption"):
                caption, entities = _rich_text(params, "caption", 1024)
                message["caption"] = caption
                if entities:
                    message["caption_entities"] = entities
                line = f"{line} {caption}"
        markup = _reply_markup(params)
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        extras["reply_markup"] = markup
        extras["disable_notification"] = bool(params.get("disable_notification"))
        extras["message_thread_id"] = thread_id if isinstance(thread_id, int) else None

        self._message_seq[chat_id] += 1
        message["message_id"] = self._message_seq[chat_id]
        stored = _Stored(message, extras)
        self._messages[chat_id, message["message_id"]] = stored
        self._sent.append(stored)
        self._sent_by_chat[chat_id].append(stored)
        self._line(chat_id, f"bot: {line}{_buttons(markup)}")
        return message

    def _upload(self, call: Call, kind: str) -> tuple[bytes, str]:
        value = call.params.get(kind)
        if isinstance(value, bytes):
            name = self._filenames.get(kind) or kind
            if kind == "photo" and _image_size(value) == (0, 0):
                raise bad_request("IMAGE_PROCESS_FAILED")
            return value, name
        if isinstance(value, str) and value in self._files:
            return self._files[value], kind
        if not value:
            raise bad_request(f"there is no {kind} in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _edit(self, call: Call) -> Json | bool:
        params = call.params
        if "chat_id" not in params and params.get("inline_message_id"):
            return True
        chat_id = _required_chat_id(params)
        stored = self._messages.get((chat_id, _int(params.get("message_id"), 0)))
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if stored.message["from"]["id"] != BOT_ID:
            raise bad_request("message can't be edited")
        old = stored.message
        new = {k: v for k, v in old.items() if k not in ("edit_date", "reply_markup")}
        if call.method == "editMessageText":
            if "text" not in old:
                raise bad_request("there is no text in the message to edit")
            new["text"], new["entities"] = _rich_text(params, "text", 4096)
        elif call.method == "editMessageCaption":
            if "text" in old:
                raise bad_request("there is no caption in the message to edit")
            new["caption"], new["caption_entities"] = _rich_text(params, "caption", 1024)
        for key in ("entities", "caption_entities", "caption"):
            if not new.get(key):
                new.pop(key, None)
        markup = _reply_markup(params)
        if markup and markup.get("inline_keyboard"):
            new["reply_markup"] = markup
        if new == {k: v for k, v in old.items() if k != "edit_date"}:
            raise bad_request(NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        stored.message = new
        stored.extras["reply_markup"] = new.get("reply_markup")
        self._edits[chat_id].append(call)
        self._line(
            chat_id, f"bot (edited): {_message_line(new)}{_buttons(new.get('reply_markup'))}"
        )
        return new

    def _delete_message(self, call: Call) -> bool:
        chat_id = _required_chat_id(call.params)
        message_id = _int(call.params.get("message_id"), 0)
        stored = self._messages.get((chat_id, message_id))
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if not self._can_delete.get(chat_id, True):
            raise bad_request("message can't be deleted")
        stored.deleted = True
        self._deleted[chat_id].append(message_id)
        self._line(chat_id, f"[deleted message {message_id}]")
        return True

    def _answer_callback_query(self, call: Call) -> bool:
        if call.params.get("callback_query_id") not in self._callbacks:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        return True


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, (1, 1) for a JPEG (not measured), (0, 0) for anything else."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8\xff"):
        return 1, 1
    return 0, 0
