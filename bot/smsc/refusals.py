"""What the guard (bot.smsc.guard) answers instead of asking SMSC, and last what the bot does
for an account whose secret it cannot read: errors of the client's hierarchy (bot.smsc.errors),
most of them a subclass of the very error SMSC would have answered (a paused login is an
`SmscRateLimited`, a paused site an `SmscIpBlocked`), so callers handle SMSC's answer and the
guard's alike and tell them apart by class where it matters."""

from __future__ import annotations

import math
from datetime import datetime

from bot.smsc.errors import SmscAuthError, SmscError, SmscIpBlocked, SmscRateLimited


class CredentialsRejected(SmscAuthError):
    """SMSC refused these exact credentials before; none is sent again until they change."""

    def __init__(self) -> None:
        super().__init__(
            2, "rejected before", "SMSC rejected these credentials; not retried until they change"
        )


class AuthChecksPaused(SmscError):
    """Too many authorisation errors at this site lately; never-verified credentials must wait.

    Checking them could be the error that gets the bot's IP blocked. `until` is the UTC time
    they may be checked again.
    """

    reason = "too many rejected credentials at this SMSC site lately"

    def __init__(self, retry_after: float, until: datetime) -> None:
        super().__init__(
            f"{self.reason}; new credentials can be checked in {math.ceil(retry_after)} s"
        )
        self.retry_after = retry_after
        self.until = until


class AskerPaused(AuthChecksPaused):
    """The one asking already had never-verified credentials rejected at this site lately."""

    reason = "credentials of this asker were rejected at this SMSC site lately"


class SiteAuthCapped(AuthChecksPaused):
    """SMSC refused several credentials of any kind at this site lately (the bot's IP may have
    changed and accounts have allow-lists): every check there waits, known good ones too."""

    reason = "SMSC refused several logins at this site lately"

    def __init__(self, retry_after: float, until: datetime) -> None:
        SmscError.__init__(self, f"{self.reason}; checks there wait {math.ceil(retry_after)} s")
        self.retry_after = retry_after
        self.until = until


class SitePaused(SmscIpBlocked):
    """The site answered error 4 (IP blocked) recently; no request goes there for a while."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            4,
            "ip blocked earlier",
            f"SMSC blocked the bot's IP; requests paused for {math.ceil(retry_after)} s",
        )
        self.retry_after = retry_after


class LoginPaused(SmscRateLimited):
    """The login's requests for this minute are used up, or SMSC answered error 9 lately.

    Raised only when there is no last known balance to serve instead.
    """

    what = "balance requests for this login paused"

    def __init__(self, retry_after: float) -> None:
        super().__init__(9, "rate limited", f"{self.what} for {math.ceil(retry_after)} s")
        self.retry_after = retry_after


class GuardUnavailable(LoginPaused):
    """The guard's shared state (Redis) cannot be reached, so nothing is sent to SMSC: without
    it the fleet's limits cannot be kept. Temporary, like a paused login, and told apart from
    SMSC's own answers by its text only."""

    what = "the bot cannot coordinate its SMSC requests right now; balance requests paused"


class SecretUnreadable(SmscError):
    """The account's stored password or API key does not decrypt with the bot's key (a row
    written by hand, a database partly restored): nothing can be sent for it. Raised by the
    bot's side (bot.alerting.accounts.decrypted), not the guard; the message holds no secret."""

    def __init__(self) -> None:
        super().__init__("the stored password or API key does not decrypt with SECRET_KEY")
