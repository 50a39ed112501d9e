"""Through outages of Telegram and SMSC, at DEBUG, the whole log holds none of the secrets the
bot knows, and no traceback."""

import asyncio
import urllib.parse
from decimal import Decimal

from bot.logs import MASK
from bot.storage.crypto import SecretBox
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from bot.storage.models import Account, Chat
from bot.storage.sqlite import create_database_file
from tests.bot_process import TOKEN
from tests.fake_smsc import FAULTS

CHAT = 300
PASSWORD = "pa$$ w0rd:secret/+"
WRONG_PASSWORD = "not-the-password-42"
API_KEY = "apikey-0123456789abcdef"


async def seed(url: str, box: SecretBox, site: str) -> None:
    """Three accounts checked every second: right and wrong passwords, and an API key."""
    create_database_file(url)
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine)() as session:
            session.add(Chat(id=CHAT, type="private", language="en"))
            for name, login, secret in [
                ("shop", "shop", PASSWORD),
                ("typo", "typo", WRONG_PASSWORD),
                ("keyed", None, API_KEY),
            ]:
                session.add(
                    Account(
                        chat_id=CHAT,
                        name=name,
                        site=site,
                        login=login,
                        secret=box.encrypt(secret),
                        check_interval=1,
                        threshold=Decimal(10**6),  # low: alerts go out through the faults
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


def test_no_secret_in_the_log_through_every_fault(bot_process, telegram, fake_smsc, tmp_path):
    fake_smsc.add_account("shop", PASSWORD, balance="100.00")
    fake_smsc.add_account("typo", "the-real-one", balance="5.00")
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    secret_key = bot_process.env["SECRET_KEY"]
    asyncio.run(seed(url, SecretBox(secret_key), fake_smsc.url))
    bot_process.env |= {"LOG_LEVEL": "DEBUG", "CHECK_INTERVAL_SECONDS": "1"}
    telegram.fail("getUpdates", status=0, body="drop", delay=0.2)  # a long poll broken mid-way
    telegram.fail("getUpdates", status=0, body="redirect")  # an error quoting the token's URL
    telegram.fail("getUpdates", status=502, body="html", times=2)
    telegram.fail("sendMessage", status=502, body="html", times=2)
    bot_process.start()
    for fault in FAULTS:
        fake_smsc.fault = fault
        seen = len(fake_smsc.requests)
        telegram.wait_for(lambda seen=seen: len(fake_smsc.requests) > seen, timeout=30)
    fake_smsc.fault = None
    telegram.wait_for(lambda: telegram.sent(CHAT), timeout=60)
    telegram.wait_for(lambda: len(telegram.calls_of("getUpdates")) >= 5, timeout=60)
    assert bot_process.stop() == 0
    log = bot_process.log()
    assert "DEBUG" in log and "Failed to fetch updates" in log, log
    assert f"bot{MASK}/getUpdates" in log, log  # the token was there to leak, and was masked
    for secret in (TOKEN, secret_key, PASSWORD, WRONG_PASSWORD, API_KEY):
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            assert form not in log, f"{secret[:4]}… in the log"
    assert "Traceback" not in log, log
