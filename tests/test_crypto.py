import stat

import pytest
from cryptography.fernet import Fernet

from bot.config import SettingsError
from bot.storage.crypto import SecretBox, SecretKeyError, load_or_create_key
from bot.storage.sqlite import prepare_data_dir


def test_round_trip_and_ciphertext_hides_secret():
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt("hunter2")
    assert b"hunter2" not in token
    assert box.decrypt(token) == "hunter2"


def test_other_key_cannot_decrypt_and_says_so_without_secret():
    token = SecretBox(Fernet.generate_key()).encrypt("hunter2")
    with pytest.raises(SecretKeyError) as caught:
        SecretBox(Fernet.generate_key()).decrypt(token)
    assert "hunter2" not in str(caught.value)


def test_invalid_key_is_named():
    with pytest.raises(SecretKeyError, match="SECRET_KEY"):
        SecretBox("short")


def test_generated_key_is_owner_only_and_reused(tmp_path, caplog):
    prepare_data_dir(tmp_path / "data")
    key = load_or_create_key(None, tmp_path / "data")
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert "generated" in caplog.text and key.decode() not in caplog.text
    caplog.clear()
    assert load_or_create_key(None, tmp_path / "data") == key
    assert "readable" not in caplog.text


def test_key_file_readable_by_others_is_reported_once(tmp_path, caplog):
    key = Fernet.generate_key()
    path = tmp_path / "secret.key"
    path.write_bytes(key)
    path.chmod(0o644)
    assert load_or_create_key(None, tmp_path) == key
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "readable by other users" in warning.getMessage() and "chmod 600" in warning.getMessage()
    assert key.decode() not in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "empty", "unreadable"])
def test_damaged_key_file_is_named_with_the_fix(tmp_path, damage):
    path = tmp_path / "secret.key"
    if damage == "unreadable":
        path.mkdir()  # read_bytes fails with an OSError, as for a file the bot may not read
    else:
        path.write_text("not a key at all" if damage == "garbage" else "")
        path.chmod(0o600)
    with pytest.raises(SettingsError) as caught:
        load_or_create_key(None, tmp_path)
    message = str(caught.value)
    assert str(path) in message and "SECRET_KEY" not in message
    assert (
        "cannot be read" if damage == "unreadable" else "restore it from your backup"
    ) in message


def test_configured_key_wins(tmp_path):
    key = Fernet.generate_key()
    assert load_or_create_key(key.decode(), tmp_path) == key
    assert not (tmp_path / "secret.key").exists()


def test_repr_hides_key():
    key = Fernet.generate_key()
    assert key.decode() not in repr(SecretBox(key))


def test_keyed_hash_groups_equal_credentials_and_depends_on_key():
    box, other = SecretBox(Fernet.generate_key()), SecretBox(Fernet.generate_key())
    a = box.keyed_hash("https://smsc.ru", "shop", "pw")
    assert a == box.keyed_hash("https://smsc.ru", "shop", "pw")
    assert a != box.keyed_hash("https://smsc.ru", "shop", "pw2")
    assert a != other.keyed_hash("https://smsc.ru", "shop", "pw")
    assert "pw" not in a
