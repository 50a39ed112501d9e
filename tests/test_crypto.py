import stat

import pytest
from cryptography.fernet import Fernet

from bot.config import SettingsError
from bot.storage.crypto import SecretBox, SecretKeyError, load_key, open_box
from bot.storage.sqlite import prepare_data_dir
from tests.alerting_fixtures import add


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


async def test_a_new_database_gets_a_generated_key_owner_only_and_reused(engine, tmp_path, caplog):
    prepare_data_dir(tmp_path / "data")
    box = await open_box(engine, load_key(None, tmp_path / "data"), tmp_path / "data")
    path = tmp_path / "data" / "secret.key"
    key = path.read_bytes()
    assert box.decrypt(SecretBox(key).encrypt("pw")) == "pw"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert "generated" in caplog.text and key.decode() not in caplog.text
    caplog.clear()
    assert load_key(None, tmp_path / "data") == key
    assert "readable" not in caplog.text


async def test_the_key_the_accounts_were_stored_with_opens_them(sessionmaker, engine, tmp_path):
    key = Fernet.generate_key()
    await add(sessionmaker, SecretBox(key), -1, "shop", password="hunter2")
    box = await open_box(engine, key, tmp_path)
    assert box.decrypt(SecretBox(key).encrypt("pw")) == "pw"
    assert not (tmp_path / "secret.key").exists()


async def test_one_unreadable_secret_first_does_not_refuse_the_right_key(
    sessionmaker, engine, tmp_path
):
    """The first account's secret written under another key (by hand, a partial restore):
    the start goes on with the key that reads the others; that account alone can't be
    checked."""
    key = Fernet.generate_key()
    await add(sessionmaker, SecretBox(Fernet.generate_key()), -1, "odd", password="x")
    await add(sessionmaker, SecretBox(key), -2, "shop", password="hunter2")
    box = await open_box(engine, key, tmp_path)
    assert box.decrypt(SecretBox(key).encrypt("pw")) == "pw"


@pytest.mark.parametrize("key", ["changed", "lost"])
async def test_a_key_that_cannot_decrypt_the_stored_accounts_refuses_the_start(
    sessionmaker, engine, tmp_path, key
):
    stored_with = SecretBox(Fernet.generate_key())
    for chat_id, login in [(-1, "shop"), (-2, "other")]:
        await add(sessionmaker, stored_with, chat_id, login, password="hunter2")
    with pytest.raises(SettingsError) as caught:
        await open_box(engine, Fernet.generate_key() if key == "changed" else None, tmp_path)
    message = str(caught.value)
    assert message.startswith("SECRET_KEY: ") and "2 account(s)" in message
    assert "restore" in message and "hunter2" not in message
    assert not (tmp_path / "secret.key").exists(), "no new key beside a database in use"


def test_key_file_readable_by_others_is_reported_once(tmp_path, caplog):
    key = Fernet.generate_key()
    path = tmp_path / "secret.key"
    path.write_bytes(key)
    path.chmod(0o644)
    assert load_key(None, tmp_path) == key
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
        load_key(None, tmp_path)
    message = str(caught.value)
    assert str(path) in message and "SECRET_KEY" not in message
    assert (
        "cannot be read" if damage == "unreadable" else "restore it from your backup"
    ) in message


def test_configured_key_wins(tmp_path):
    key = Fernet.generate_key()
    assert load_key(key.decode(), tmp_path) == key
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
