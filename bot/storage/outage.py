"""Whether a failure means the database could not be reached at all (stopped, restarting, its
socket gone, the connection cut), as opposed to a statement it refused (a bug, bad data): the
first is an outage, to say in one line and to try again once the server is back, the second a
bug, worth its traceback."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError

from bot.storage.engine import StatementTimeout

# SQLSTATEs of a server that is not there to answer: class 08 (connection exception: refused,
# lost, "connection does not exist"), a server shutting down or starting up (57P01
# admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), or taking no more
# connections (53300 too_many_connections: max_connections, or the role's limit, reached by
# the replicas' pools or anything else on the server).
_GONE_CLASS = "08"
_GONE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# Where the database's own socket errors are raised. An OSError from elsewhere in a handler (a
# file, say) is no outage of the database.
_DRIVERS = ("asyncpg", "sqlalchemy", "aiosqlite")


def unreachable(error: BaseException) -> bool:
    """True when `error` says the database could not be reached or dropped the connection.
    Not for a statement cut by the engine's bound (StatementTimeout): it ran, perhaps halfway."""
    if isinstance(error, StatementTimeout):
        return False
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:  # SQLAlchemy's dialect judged it a disconnect
            return True
        state = getattr(error.orig, "sqlstate", None) or ""
        return state.startswith(_GONE_CLASS) or state in _GONE_STATES
    # Connecting fails with the socket's own error, which SQLAlchemy passes on unwrapped:
    # ConnectionRefusedError, FileNotFoundError for a unix socket, a name not resolved.
    return isinstance(error, OSError) and _raised_in_driver(error.__traceback__)


def _raised_in_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.partition(".")[0] in _DRIVERS:
            return True
        tb = tb.tb_next
    return False
