"""The guard's state without Redis, kept in a file of the data folder: the bot's (BOT_FILE)
and `python -m bot check`'s (FILE_NAME; bot.cli). The guard's memory (bot.smsc.windows) dies
with its process: a check is a process of its own, and the bot restarts (a setting changed, an
upgrade, a crash), so mistyped passwords tried across them would reach SMSC's fifth refused
login in 30 minutes, and the IP block that stops the bot's checks of every chat. So what must
outlive a process is kept: SMSC's refusals of the last 30 minutes (the site's count, who asked,
and the credentials refused, not sent again meanwhile) and a site's pause after error 4.
Nothing more: a login's minute forgotten costs at worst a paused login (error 9), never a block.

The file is written whole to a temporary file and renamed over the old one (a process cut short
leaves the last one whole), readable by its owner only. Credentials are in it as an scrypt of
their fingerprint under the file's salt: a mistyped password is often near the right one, and
a plain hash could be tried against a word list. Checks run one at a time (a lock on the
folder), so none writes over another's refusal; the bot is one process (bot.storage.instance)
with a file of its own. Times are kept as wall-clock time, for the next process (maybe after a
reboot); in memory they are the monotonic clock's, so a step of the wall clock moves no window.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.config import SettingsError
from bot.smsc.client import Credentials
from bot.smsc.guard import SMSC_IP_BLOCK
from bot.smsc.state import AUTH_WINDOW
from bot.smsc.windows import MemoryGuardState

log = logging.getLogger(__name__)

# The longest pause kept: SMSC's IP block and the guard's minute after it (bot.smsc.guard).
LONGEST_PAUSE = SMSC_IP_BLOCK + 60

FILE_NAME = "check-guard.json"
BOT_FILE = "guard-state.json"


@contextlib.contextmanager
def kept_state(folder: Path) -> Iterator[KeptGuardState]:
    """The state kept in `folder` (which must exist), held by this process until the end."""
    # The folder, not the file, is locked: the file is replaced at each write, and a lock on
    # the one replaced would let a waiting check read it after it is gone.
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another check takes seconds at most
        yield KeptGuardState(folder / FILE_NAME, theirs=folder / BOT_FILE)
    finally:
        os.close(fd)


# A refusal kept: its site, the scrypt of its credentials, when (wall clock), who asked.
Refusal = tuple[str, str, float, list[str]]


class KeptGuardState(MemoryGuardState):
    """`MemoryGuardState` that reads and writes SMSC's refusals and IP blocks in `path`.

    `theirs`: the other program's file (the bot's for a check, a check's for the bot), whose
    refusals and pauses count here too, as they stood at the start (never written back; one
    damaged or unreadable is one warning, not this process's stop). `unwritten`: told why the
    file could not be written, where the process goes on with what it holds in memory (the
    bot: a full disk must not stop its checks); without, that raises `SettingsError` (a check
    then stops, saying so)."""

    def __init__(
        self,
        path: Path,
        *,
        theirs: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        unwritten: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(clock, auth_window=AUTH_WINDOW)
        self._path = path
        self._wall = wall
        self._unwritten = unwritten
        self._tags: dict[str, str] = {}  # by fingerprint
        self._salt, self._refusals, self._pauses = _read(path)
        self._forget()
        refusals, pauses = list(self._refusals), list(self._pauses.items())
        if theirs is not None:
            try:
                _salt, their_refusals, their_pauses = _read(theirs)
            except SettingsError as error:
                log.warning("%s; its refusals are not counted", error)
            else:
                refusals += their_refusals
                pauses += their_pauses.items()
        now = self._wall()
        # A time written ahead of now was written by a clock set ahead (a host's clock on local
        # time until NTP stepped it back): taken as now, and a pause as SMSC's longest, not as
        # hours of no checks.
        refusals = [(site, tag, min(at, now), askers) for site, tag, at, askers in refusals]
        # In time order: a window forgets its oldest first.
        for site, _tag, at, askers in sorted(refusals, key=lambda refusal: refusal[2]):
            if now - at < AUTH_WINDOW:
                self._site(site).add_auth_failure(tuple(askers), self._here(at))
        for site, until in pauses:
            kept = self._site(site)
            until = min(until, now + LONGEST_PAUSE)
            kept.paused_until = max(kept.paused_until, self._here(until))

    def recall(self, creds: Credentials) -> datetime | None:
        """If SMSC refused `creds` in the last 30 minutes: they are refused here too (the guard
        sends them not), and this is when that refusal leaves SMSC's count."""
        tag = self._tag(creds)
        times = [at for _site, kept, at, _askers in self._refusals if kept == tag]
        if not times:
            return None
        self._refuse(creds)
        return datetime.fromtimestamp(max(times) + AUTH_WINDOW, UTC)

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        await super().rejected(creds, askers)
        # The scrypt takes ≈ 50 ms of CPU: in the bot, not on the loop every chat waits on.
        tag = await asyncio.to_thread(self._tag, creds)
        self._refusals.append((creds.site, tag, self._wall(), list(askers)))
        self._write()

    async def pause_site(self, site: str, seconds: float) -> None:
        await super().pause_site(site, seconds)
        self._pauses[site] = self._wall() + seconds
        self._write()

    def _here(self, wall_time: float) -> float:
        """A wall-clock time as the memory's clock reads it."""
        return self._clock() - (self._wall() - wall_time)

    def _forget(self) -> None:
        """What no longer counts: refusals 30 minutes old, pauses over (a bot runs for months)."""
        now = self._wall()
        self._refusals = [r for r in self._refusals if now - r[2] < AUTH_WINDOW]
        self._pauses = {site: until for site, until in self._pauses.items() if until > now}

    def _tag(self, creds: Credentials) -> str:
        tag = self._tags.get(creds.fingerprint)
        if tag is None:
            secret = creds.fingerprint.encode()
            tag = hashlib.scrypt(secret, salt=self._salt, n=2**14, r=8, p=1, dklen=16).hex()
            self._tags[creds.fingerprint] = tag
        return tag

    def _write(self) -> None:
        self._forget()
        kept = {"salt": self._salt.hex(), "refusals": self._refusals, "pauses": self._pauses}
        partial = None
        try:
            # mkstemp's file is the owner's alone from the start.
            fd, partial = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(kept, file)
            os.replace(partial, self._path)
        except OSError as error:
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
            why = f"{self._path} cannot be written ({error.strerror})"
            if self._unwritten is None:
                raise SettingsError(why) from None
            self._unwritten(why)


def _read(path: Path) -> tuple[bytes, list[Refusal], dict[str, float]]:
    """The salt, refusals and pauses kept in `path`; a new salt and nothing, if it is not
    there."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        refusals = []
        for site, tag, at, *rest in kept["refusals"]:
            askers = rest[0] if rest else []  # who asked was not kept before: nobody
            if not isinstance(askers, list):
                raise ValueError(askers)
            refusals.append((str(site), str(tag), float(at), [str(a) for a in askers]))
        pauses = {str(site): float(until) for site, until in kept["pauses"].items()}
        return bytes.fromhex(kept["salt"]), refusals, pauses
    except FileNotFoundError:
        return secrets.token_bytes(16), [], {}
    except OSError as error:
        raise SettingsError(f"{path} cannot be read ({error.strerror})") from None
    except (ValueError, TypeError, KeyError, AttributeError):
        # Not guessed at: what it held may be the refusals that keep SMSC's block away.
        raise SettingsError(
            f"{path} is damaged: delete it 30 minutes after the last failed check"
        ) from None
