"""Texts and captions as Telegram stores them (HTML parse mode, UTF-16 lengths), and the
transcript lines of messages."""

from __future__ import annotations

import html
import re

from tests.fake_telegram.constants import Json
from tests.fake_telegram.errors import ApiError, bad_request


def _without_reply(message: Json) -> Json:
    """A message as it appears in ``reply_to_message``: without a reply of its own."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _buttons(markup: Json | None) -> str:
    rows = (markup or {}).get("inline_keyboard") or (markup or {}).get("keyboard") or ()
    labels = [button.get("text", "") for row in rows for button in row]
    return "".join(f" [{label}]" for label in labels)


def _message_line(message: Json) -> str:
    if "text" in message:
        return str(message["text"])
    kind = "photo" if "photo" in message else "document"
    caption = message.get("caption")
    return f"[{kind}] {caption}" if caption else f"[{kind}]"


def _rich_text(params: Json, key: str, limit: int) -> tuple[str, list[Json]]:
    """Text or caption as Telegram stores it: HTML parsed to entities, limits checked."""
    value = params.get(key)
    text = "" if value is None else str(value)
    parse_mode = str(params.get("parse_mode") or "").lower()
    if parse_mode == "html":
        text, entities = _parse_html(text)
    else:
        given = params.get("caption_entities" if key == "caption" else "entities")
        entities = given if isinstance(given, list) else []
    if key == "text" and not text.strip():
        raise bad_request("message text is empty")
    if _utf16_len(text) > limit:
        raise bad_request("message is too long" if key == "text" else "message caption is too long")
    return text, entities


_HTML_TOKEN = re.compile(r"<[^<>]*>?|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^>]*)?>")
_HTML_TAG_NAME = re.compile(r"^</?([^\s/>]*)")
_HTML_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _parse_html(source: str) -> tuple[str, list[Json]]:
    """Telegram's HTML parse mode: the plain text and its entities (UTF-16 offsets)."""

    def fail(problem: str, at: int) -> ApiError:
        offset = len(source[:at].encode())
        return bad_request(f"can't parse entities: {problem} at byte offset {offset}")

    out: list[str] = []
    position = 0  # in UTF-16 code units
    stack: list[tuple[str, int, str]] = []  # open tags: (name, start, attributes)
    entities: list[Json] = []
    last = 0
    for match in _HTML_TOKEN.finditer(source):
        text = source[last : match.start()]
        out.append(text)
        position += _utf16_len(text)
        last = match.end()
        token = match.group()
        if token.startswith("&"):
            name = token[1:-1]
            if name.startswith("#"):
                code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
                piece = chr(code) if code < 0x110000 else token
            else:
                piece = _HTML_NAMED.get(name, token)
            out.append(piece)
            position += _utf16_len(piece)
            continue
        tag = _HTML_TAG.fullmatch(token)
        name = (tag.group(2) if tag else _HTML_TAG_NAME.findall(token)[0]).lower()
        attributes = (tag.group(3) or "") if tag else ""
        if tag is None or name not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{name}"', match.start())
        if name == "span" and not tag.group(1) and "tg-spoiler" not in attributes:
            raise fail('Unsupported start tag "span"', match.start())
        if tag.group(1):  # end tag
            if not stack or stack[-1][0] != name:
                raise fail("Unexpected end tag", match.start())
            _, start, open_attributes = stack.pop()
            if position > start:
                entities.append(_html_entity(name, start, position - start, open_attributes))
        else:
            stack.append((name, position, attributes))
    out.append(source[last:])
    if stack:
        name = stack[-1][0]
        raise bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{name}\""
        )
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _html_entity(name: str, offset: int, length: int, attributes: str) -> Json:
    entity: Json = {"type": _HTML_ENTITY_TYPES[name], "offset": offset, "length": length}

    def attribute(attr: str) -> str:
        found = re.search(rf"{attr}\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", attributes)
        return (
            html.unescape(next((g for g in found.groups() if g is not None), "")) if found else ""
        )

    if name == "a":
        entity["url"] = attribute("href")
    elif name == "blockquote" and "expandable" in attributes:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attribute("emoji-id")
    return entity
