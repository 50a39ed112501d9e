"""What the SMSC client raises: `SmscError` and its family, one class for each way a balance
request fails that the bot treats apart. Messages are plain English, without secrets."""

from __future__ import annotations


class SmscError(Exception):
    """Base of every error from the SMSC client; the message is plain English, without secrets."""


class SmscUnavailable(SmscError):
    """No answer: a network error, a timeout or HTTP 5xx (the backup hosts are asked only when
    the site could not be connected to)."""


class SmscProtocolError(SmscError):
    """An answer that is not a balance reply (HTML, empty, non-JSON, no "balance", a bad number).

    Never read as a zero balance: that would be a false low-balance alert.
    """


# Characters of SMSC's error description kept. Its own are a few words; a long one (a bug, a
# proxy's page) took /status past Telegram's limit, and `check`'s line and the logs with it.
DESCRIPTION_LIMIT = 200


class SmscApiError(SmscError):
    """SMSC answered with an error code; subclasses name the codes the bot acts on."""

    def __init__(self, code: int, description: str, message: str | None = None) -> None:
        if len(description) > DESCRIPTION_LIMIT:
            description = description[: DESCRIPTION_LIMIT - 1] + "…"
        # `message` replaces the default text when the bot itself refuses (see bot.smsc.refusals).
        super().__init__(message or f"SMSC error {code}: {description}")
        self.code = code
        self.description = description


class SmscBadRequest(SmscApiError):
    """Error 1: SMSC found the request's parameters wrong."""


class SmscAuthError(SmscApiError):
    """Error 2: wrong login, password or API key, or the bot's IP is not in the allow-list.

    Five of these within 30 minutes get the bot's IP blocked (error 4).
    """


class SmscIpBlocked(SmscApiError):
    """Error 4: SMSC has blocked the bot's IP address for a while."""


class SmscRateLimited(SmscApiError):
    """Error 9: over ten balance requests a minute, or too many at once, for this login."""
