"""LOG_FORMAT=json: one JSON object a line, through python-json-logger.

python-json-logger is a formatter of the standard library's logging, so every logger (ours,
aiogram's, SQLAlchemy's) and the masking of secrets (bot.logs rewrites each record as it is
made; fields passed with `extra=` come later and are masked here) work unchanged; structlog
would have meant its own logger at every call.
The bot's lines say what they are about as `key=value` (`chat_id=42 kind=low`): those
become fields of their own too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from bot import logs

# A value ends before the punctuation that follows it in a sentence: `update_id=1: ...` and
# `error=X; retrying` say 1 and X.
FIELD = re.compile(r"(?<![\w.=])([a-z][a-z0-9_]*)=([^\s=]*[^\s=:;,])")
RESERVED = frozenset({"time", "level", "logger", "message", "exc_info", "stack_info"})


class JsonLogFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601 in UTC
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        # `extra=` fields are set on the record after the masking record factory made it.
        for key, value in log_data.items():
            if isinstance(value, str):
                log_data[key] = logs.mask(value)
        for key, value in FIELD.findall(record.getMessage()):
            if key not in RESERVED:
                log_data.setdefault(key, int(value) if re.fullmatch(r"-?\d+", value) else value)
