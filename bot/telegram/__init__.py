"""Everything aiogram: handlers, filters, middlewares, command menus, i18n, the Bot API
session, the outbox's sender, and the words and buttons of alerts and digests."""
