"""Why a balance check failed, in the few kinds people and the alert rules care about."""

from __future__ import annotations

import enum

from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.refusals import AuthChecksPaused, SecretUnreadable


class CheckError(enum.StrEnum):
    """Why a check failed, as stored in Account.last_error and worded for people in texts."""

    AUTH = "auth"  # wrong login/password, or IP not in the account's allow-list
    IP_BLOCKED = "ip_blocked"
    RATE_LIMITED = "rate_limited"
    AUTH_PAUSED = "auth_paused"  # the bot holds back new credentials to protect its IP
    UNAVAILABLE = "unavailable"
    PROTOCOL = "protocol"
    SECRET = "secret"  # the stored password or API key does not decrypt: not asked at all


def check_error(error: SmscError) -> CheckError:
    # Order matters: guard refusals subclass the SMSC errors they stand for.
    kinds: list[tuple[type[SmscError], CheckError]] = [
        (SmscAuthError, CheckError.AUTH),
        (SmscIpBlocked, CheckError.IP_BLOCKED),
        (SmscRateLimited, CheckError.RATE_LIMITED),
        (AuthChecksPaused, CheckError.AUTH_PAUSED),
        (SmscUnavailable, CheckError.UNAVAILABLE),
        (SecretUnreadable, CheckError.SECRET),
    ]
    return next((kind for cls, kind in kinds if isinstance(error, cls)), CheckError.PROTOCOL)
