# aiogram as `python -m bot` imports it (bot.app), its models built when first used, so the
# tests in this process meet the same models the bot does.
from bot.telegram.lazy_models import import_aiogram

import_aiogram()
