"""What the bot and `python -m bot check` keep between their runs without Redis
(bot.smsc.kept)."""

import stat
from decimal import Decimal

import pytest

from bot.config import SettingsError
from bot.smsc.client import Balance, Credentials
from bot.smsc.guard import BalanceGuard
from bot.smsc.kept import BOT_FILE, FILE_NAME, KeptGuardState, kept_state
from bot.smsc.refusals import AskerPaused, AuthChecksPaused, CredentialsRejected, SitePaused

SITE = "https://smsc.kz"


class Unused:
    async def fetch_balance(self, creds: Credentials):
        raise AssertionError("nothing may be sent")


class Fetched:
    async def fetch_balance(self, creds: Credentials) -> Balance:
        return Balance(Decimal(5), Decimal(0), "KZT")


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


class Clocks:
    """The monotonic clock and the wall clock, moved by hand."""

    def __init__(self) -> None:
        self.mono, self.wall = 100.0, 1_800_000_000.0

    def state(self, path, **options) -> KeptGuardState:
        return KeptGuardState(path, clock=lambda: self.mono, wall=lambda: self.wall, **options)


async def test_the_bots_refusals_and_who_asked_hold_across_a_restart(tmp_path):
    """Mistyped passwords in /add, the bot restarted (a setting changed), more of them: SMSC's
    count of 30 minutes lives on, and so must the bot's, or it reaches SMSC's fifth."""
    clocks, path = Clocks(), tmp_path / BOT_FILE
    before = clocks.state(path)
    for user in range(3):
        await before.rejected(Credentials(SITE, f"typo{user}", "x"), (f"user:{user}",))
    clocks.mono = 5.0  # a reboot: the monotonic clock starts again
    clocks.wall += 600
    guard = BalanceGuard(Unused(), state=clocks.state(path))
    with pytest.raises(AskerPaused):  # the first user's own refusal
        await guard.balance(Credentials(SITE, "new0", "x"), askers=("user:0",))
    with pytest.raises(AuthChecksPaused) as paused:  # the site's three, for anyone's new ones
        await guard.balance(Credentials(SITE, "new9", "x"), askers=("user:9",))
    assert 1190 <= paused.value.retry_after <= 1200  # 30 minutes from the first refusal
    clocks.wall += 1200  # past them: the file forgets them at the next start
    after = clocks.state(path)
    assert (await BalanceGuard(Fetched(), state=after).balance(Credentials(SITE, "a", "b"))).fresh


async def test_a_step_of_the_wall_clock_moves_no_window(tmp_path):
    clocks = Clocks()
    state = clocks.state(tmp_path / BOT_FILE)
    guard = BalanceGuard(Fetched(), state=state)
    for user in range(3):
        await state.rejected(Credentials(SITE, f"typo{user}", "x"), (f"user:{user}",))
    clocks.wall -= 3600  # NTP set the clock an hour back
    clocks.mono += 1800  # and 30 minutes went by
    assert (await guard.balance(Credentials(SITE, "new", "x"), askers=("user:9",))).fresh


async def test_the_bot_goes_on_when_its_file_cannot_be_written(tmp_path):
    told = []
    state = Clocks().state(tmp_path / "gone" / BOT_FILE, unwritten=told.append)
    refused = Credentials(SITE, "shop", "typo")
    await state.rejected(refused, ("user:1",))
    assert len(told) == 1 and "cannot be written" in told[0]
    with pytest.raises(CredentialsRejected):  # held in memory all the same
        await BalanceGuard(Unused(), state=state).balance(refused)


async def test_a_check_counts_the_bots_refusals_and_the_bot_a_checks(tmp_path):
    """Both keep their own file, and each counts the other's: the bot's three mistyped /add
    passwords and a check's two more would be SMSC's fifth."""
    bot = KeptGuardState(tmp_path / BOT_FILE)
    for user in range(3):
        await bot.rejected(Credentials(SITE, f"typo{user}", "x"), (f"user:{user}",))
    with kept_state(tmp_path) as state, pytest.raises(AuthChecksPaused):
        await BalanceGuard(Unused(), state=state).balance(Credentials(SITE, "other", "x"))
    (tmp_path / BOT_FILE).unlink()
    with kept_state(tmp_path) as state:
        for attempt in range(3):
            await state.rejected(Credentials(SITE, f"check{attempt}", "x"), ())
    restarted = KeptGuardState(tmp_path / BOT_FILE, theirs=tmp_path / FILE_NAME)
    with pytest.raises(AuthChecksPaused):
        await BalanceGuard(Unused(), state=restarted).balance(Credentials(SITE, "new", "x"))
    assert not (tmp_path / BOT_FILE).exists()  # theirs counted, not copied


async def test_the_other_programs_damaged_file_is_a_warning_not_a_stop(tmp_path, caplog):
    (tmp_path / FILE_NAME).write_text("{")
    state = KeptGuardState(tmp_path / BOT_FILE, theirs=tmp_path / FILE_NAME)
    assert (await BalanceGuard(Fetched(), state=state).balance(Credentials(SITE, "a", "b"))).fresh
    assert "check-guard.json is damaged" in caplog.text and "not counted" in caplog.text


async def test_times_written_by_a_clock_set_ahead_hold_no_longer_than_smscs_own(tmp_path):
    """A host whose clock kept local time (3 h ahead) until NTP stepped it back: SMSC's IP
    block written then held every check of the site for 3.4 hours after a restart."""
    clocks, path = Clocks(), tmp_path / BOT_FILE
    clocks.wall += 3 * 3600
    before = clocks.state(path)
    await before.pause_site("https://smsc.ru", 1860.0)
    await before.rejected(Credentials(SITE, "typo", "x"), ("user:1",))
    clocks.wall -= 3 * 3600 - 600  # stepped back; restarted 10 minutes later
    guard = BalanceGuard(Unused(), state=clocks.state(path))
    with pytest.raises(SitePaused) as paused:
        await guard.balance(Credentials("https://smsc.ru", "shop", "right"), known_good=True)
    assert paused.value.retry_after <= 1860  # SMSC's block, at the longest, from now
    with pytest.raises(AskerPaused) as asker:
        await guard.balance(Credentials(SITE, "new", "x"), askers=("user:1",))
    assert asker.value.retry_after <= 1800
