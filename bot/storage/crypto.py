"""Encryption of SMSC passwords and API keys at rest (Fernet)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

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


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the one generated into `data_dir` (which must exist) on the
    first start."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE_NAME
    if path.exists():
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
    key = Fernet.generate_key()
    logs.remember(key.decode())
    # O_EXCL with mode 0o600: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key)
    log.warning("SECRET_KEY unset: generated key_file=%s; back it up with the database", path)
    return key
