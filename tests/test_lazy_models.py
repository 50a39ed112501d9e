"""aiogram imported as the bot imports it (bot.telegram.lazy_models): every model, aiogram's
and the bot's own made of them, still builds when first used, from any model that asks first,
and the running bot holds less memory than a bare `import aiogram`."""

import subprocess
import sys
from pathlib import Path

from bench.proc import sample
from tests.e2e_helpers import say

# In a fresh interpreter: this process's models are already built by earlier tests.
EVERY_MODEL_BUILDS = """
import sys
from bot.telegram.lazy_models import import_aiogram
import_aiogram()
import aiogram.methods, aiogram.webhook.aiohttp_server, bot.factory, bot.telegram.sender
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from aiogram.types import Message
from pydantic import BaseModel

def first_uses():
    assert not Message.__pydantic_complete__, "built at import"
    # A method's answer first: Message is built inside Response[Message], not on its own.
    chat = {"id": 1, "type": "group"}
    reply = {"message_id": 6, "date": 0, "chat": chat}
    answer = {"message_id": 7, "date": 0, "chat": chat, "reply_to_message": reply}
    answer = Response[Message].model_validate({"ok": True, "result": answer})
    assert answer.result.reply_to_message.message_id == 6
    button = {"text": "a", "url": "https://a.b"}
    SendMessage(chat_id=1, text="x", reply_markup={"inline_keyboard": [[button]]})

def unbuilt():  # a function: pydantic looks a few frames up for names when it builds
    for name, module in list(sys.modules.items()):
        for model in list(vars(module).values()):
            if (name.partition(".")[0] not in ("aiogram", "bot") or not isinstance(model, type)
                    or not issubclass(model, BaseModel) or model.__module__ != name
                    or model.__pydantic_generic_metadata__["parameters"]):
                continue
            try:
                model.__pydantic_validator__.validate_python
                model.__pydantic_serializer__.to_python
            except Exception as error:
                yield f"{name}.{model.__name__}: {error}"
            if not model.__pydantic_complete__:
                yield f"{name}.{model.__name__}: not built"

first_uses()
print("\\n".join(unbuilt()) or "ok")
"""


def run(code: str) -> str:
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_aiogram_model_builds_when_first_used():
    assert run(EVERY_MODEL_BUILDS) == "ok"


def test_the_running_bot_holds_less_than_a_bare_aiogram(bot_process, fake_smsc, telegram):
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00", currency="RUB")
    bot = bot_process.start()
    say(telegram, 501, "/add shop s3cret! 1000")
    _, reply = say(telegram, 501, "/balance")
    assert "1,500.00 RUB" in reply["text"]
    bare = int(
        run("import os, aiogram; from bench.proc import sample; print(sample(os.getpid()).rss)")
    )
    # ≈ 110 MB of pydantic-core validators, for models the bot never meets, left unbuilt.
    assert sample(bot.process.pid).rss < bare - 20 * 2**20
