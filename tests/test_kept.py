"""What `python -m bot check` keeps between its runs without Redis (bot.smsc.kept)."""

import stat

import pytest

from bot.config import SettingsError
from bot.smsc.client import Credentials
from bot.smsc.guard import BalanceGuard
from bot.smsc.kept import FILE_NAME, kept_state
from bot.smsc.refusals import CredentialsRejected, SitePaused

SITE = "https://smsc.kz"


class Unused:
    async def fetch_balance(self, creds: Credentials):
        raise AssertionError("nothing may be sent")


async def test_an_ip_block_holds_for_the_next_run(tmp_path):
    with kept_state(tmp_path) as state:
        await state.pause_site(SITE, 1860.0)
    with kept_state(tmp_path) as state:
        guard = BalanceGuard(Unused(), state=state)
        with pytest.raises(SitePaused):
            await guard.balance(Credentials(SITE, "shop", "right"))
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600


async def test_a_refusal_counts_for_the_site_and_its_credentials_only(tmp_path):
    refused = Credentials(SITE, "shop", "typo")
    with kept_state(tmp_path) as state:
        await state.rejected(refused, ())
    with kept_state(tmp_path) as state:
        assert state.recall(Credentials(SITE, "shop", "right")) is None
        assert state.recall(refused) is not None
        with pytest.raises(CredentialsRejected):
            await BalanceGuard(Unused(), state=state).balance(refused)
    assert b"typo" not in (tmp_path / FILE_NAME).read_bytes()


def test_a_damaged_file_is_not_taken_for_an_empty_one(tmp_path):
    (tmp_path / FILE_NAME).write_text("{")
    with pytest.raises(SettingsError, match="is damaged"), kept_state(tmp_path):
        pass
