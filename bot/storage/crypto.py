"""Encryption of SMSC passwords and API keys at rest (Fernet)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import logs
from bot.config import SettingsError

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class SecretKeyError(Exception):
    """SECRET_KEY is not a Fernet key, or stored secrets were encrypted with another key."""


class SecretBox:
    """Encrypts and decrypts credentials; holds the key, never shows it."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretKeyError("SECRET_KEY is invalid: not a Fernet key") from None
        # A key of its own for hashing, so that hashes reveal nothing about the Fernet key.
        self._hash_key = hashlib.sha256(b"credentials-key:" + _as_bytes(key)).digest()

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def keyed_hash(self, *parts: str | None) -> str:
        """Equal for equal parts; without the key, useless for guessing them."""
        message = "\0".join(part or "" for part in parts).encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def decrypt(self, token: bytes) -> str:
        try:
            plaintext = self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretKeyError("a stored secret does not decrypt: SECRET_KEY changed?") from None
        logs.remember(plaintext)
        return plaintext


def _as_bytes(key: bytes | str) -> bytes:
    return key.encode() if isinstance(key, str) else key


def load_key(configured: str | None, data_dir: Path) -> bytes | None:
    """The configured key, else the one in `data_dir`'s key file; None when there is neither
    (see open_box: a key is made only for a database with no secret in it)."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        return None
    if stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "key_file=%s is readable by other users: anyone who can read it with the "
            "database can read the SMSC passwords; chmod 600 it",
            path,
        )
    try:
        key = path.read_bytes().strip()
    except OSError as error:
        raise SettingsError(
            f"{path} cannot be read ({error.strerror}): give the bot's user access to it"
        ) from None
    logs.remember(key.decode(errors="replace"))
    try:
        Fernet(key)
    except ValueError:  # damaged or emptied: told here, not blamed on SECRET_KEY
        raise SettingsError(
            f"{path} is not a valid key (damaged or empty): restore it from your backup; "
            "without it the stored SMSC passwords and API keys cannot be read"
        ) from None
    return key


SECRETS_TRIED = 5  # at start, by open_box


async def open_box(engine: AsyncEngine, key: bytes | None, data_dir: Path) -> SecretBox:
    """The box of `key` (load_key's), tried on the first stored secrets: a start whose key was
    lost or changed is refused here, rather than every check failing after it. A few rows read
    (this runs at every start), the key taken if it decrypts any: one unreadable row (written
    by hand, a partial restore) is that account's trouble alone, told to its chat by its
    checks. A database with no secret yet gets a key made into `data_dir` when there is none.
    SettingsError saying what to restore, and no key written, when the key is missing or
    decrypts none of them."""
    # Here, not above: bot.app imports this module before it reads the settings, and the ORM
    # would delay telling a bad one.
    from bot.storage.models import Account

    async with engine.connect() as connection:
        tried = select(Account.secret).order_by(Account.id).limit(SECRETS_TRIED)
        secrets = (await connection.scalars(tried)).all()
        if not secrets:
            return SecretBox(key or create_key(data_dir))
        if key is not None:
            box = SecretBox(key)
            for secret in secrets:
                with contextlib.suppress(SecretKeyError):
                    box.decrypt(secret)
                    return box
        stored = await connection.scalar(select(func.count(Account.id)))
    path = data_dir / KEY_FILE_NAME
    if key is None:
        raise SettingsError(
            f"SECRET_KEY: unset, and {path} is missing, but the database holds the passwords "
            f"and API keys of {stored} account(s); restore {path} (or SECRET_KEY) from the "
            "backup made with the database: a new key cannot decrypt them"
        )
    raise SettingsError(
        f"SECRET_KEY: the key does not decrypt the passwords and API keys stored for {stored} "
        f"account(s) ({path} lost or replaced, or SECRET_KEY changed); restore the key the "
        "database was written with"
    )


def create_key(data_dir: Path) -> bytes:
    """A new key, written into `data_dir` (which must exist)."""
    key = Fernet.generate_key()
    logs.remember(key.decode())
    # O_EXCL with mode 0o600: the key is never readable by others, not even for a moment.
    fd = os.open(data_dir / KEY_FILE_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key)
    log.warning(
        "SECRET_KEY unset: generated key_file=%s; back it up with the database",
        data_dir / KEY_FILE_NAME,
    )
    return key
